"""The data map: every place cdlm keeps personal data, generated from the live models,
purposes catalog, retention policies and masking rules (never a hand-kept document).

Each entry names the field, its fideslang data category, whose data it is, whether it is
encrypted at rest, which roles read it in clear, the purposes that use its category, and the
retention that governs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cdlm.consent import service as consent
from cdlm.core.personal_data import CLEAR_ROLES, PersonalData
from cdlm.core.roles import Role
from cdlm.core.vocabulary import covers
from cdlm.customers.attributes import ATTRIBUTES
from cdlm.quality.fields import DATA_CATEGORIES, PROFILE_FIELDS, profile_path
from cdlm.retention import policies as retention


class DataSubjectCategory(StrEnum):
    """Whose personal data it is."""

    CUSTOMER = "customer"
    REQUESTER = "requester"
    EMPLOYEE = "employee"


@dataclass(frozen=True)
class Place:
    """Where a kind of personal data is kept (before purposes and retention are added).

    ``field`` is the place's key (personal reads name it); :func:`api_path` gives the path
    the API shows for it."""

    field: str
    table: str
    column: str
    data_category: str
    data_subject: DataSubjectCategory
    encrypted: bool
    clear_roles: frozenset[Role]
    retention_categories: tuple[str, ...]
    note: str = ""

    @property
    def owned_as(self) -> str:
        """The data category owners and stewards are assigned at for this place."""
        return ownership_category(self.data_category)


@dataclass(frozen=True)
class Entry:
    """One line of the data map."""

    place: Place
    purposes: list[str]
    retention: list[str]


_SUPPORT = CLEAR_ROLES[PersonalData.EMAIL]
_ADMIN = frozenset({Role.ADMIN})
_OVERSIGHT = frozenset({Role.ADMIN, Role.PRIVACY_OFFICER})
_STEWARDS = frozenset({Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD})
_CUSTOMER_DATA = ("customers.inactive",)
#: Who reads analysis attributes: every staff role (they are coarse categories and scores).
_ANALYSTS = frozenset(Role) - {Role.INGEST}


def places() -> list[Place]:
    """Every place personal data is kept, from the models and the masking policy."""
    found = [
        Place(
            f"customer.profile.{name}",
            "customers",
            "profile_sealed",
            DATA_CATEGORIES[name],
            DataSubjectCategory.CUSTOMER,
            True,
            CLEAR_ROLES[kind],
            _CUSTOMER_DATA,
        )
        for name, kind in PROFILE_FIELDS.items()
    ]
    found += [
        Place(
            f"customer.identities.{kind}",
            "identities",
            "value_sealed",
            category,
            DataSubjectCategory.CUSTOMER,
            True,
            CLEAR_ROLES[PersonalData.IDENTIFIER],
            _CUSTOMER_DATA,
            f"{words}; matched through an HMAC-SHA256 blind index",
        )
        for kind, category, words in (
            ("email", "user.contact.email", "email addresses"),
            ("phone", "user.contact.phone_number", "phone numbers"),
            ("external_id", "user.unique_id", "ids in source systems"),
        )
    ]
    found += [
        Place(
            f"customer.analytics.{attribute.api_path}",
            "customer_attributes",
            attribute.column,
            attribute.category,
            DataSubjectCategory.CUSTOMER,
            False,
            _ANALYSTS,
            _CUSTOMER_DATA,
            f"derived in clear for analysis from {attribute.derived_from}; deleted with the "
            "customer",
        )
        for attribute in ATTRIBUTES
    ]
    found += [
        Place(
            "customer.events.properties",
            "events",
            "properties_sealed",
            "user.behavior",
            DataSubjectCategory.CUSTOMER,
            True,
            CLEAR_ROLES[PersonalData.FREE_TEXT],
            ("events", "events.*", *_CUSTOMER_DATA),
        ),
        Place(
            "customer.events.amount",
            "events",
            "amount",
            "user.behavior.purchase_history",
            DataSubjectCategory.CUSTOMER,
            False,
            frozenset(Role) - {Role.INGEST},
            ("events", "events.*", *_CUSTOMER_DATA),
            "pseudonymous: linked to a customer id only",
        ),
        *(
            Place(
                f"customer.events.{column}",
                "events",
                column,
                "user.behavior",
                DataSubjectCategory.CUSTOMER,
                False,
                frozenset(Role) - {Role.INGEST},
                ("events", "events.*", *_CUSTOMER_DATA),
                f"feedback events: {words}, kept in clear for analysis; pseudonymous: linked "
                "to a customer id only",
            )
            for column, words in (
                ("sentiment", "VADER compound sentiment of the sealed text (-1 to 1)"),
                ("nps", "the Net Promoter answer (0-10)"),
                ("csat", "the satisfaction answer (1-5)"),
            )
        ),
        Place(
            "customer.sourceRecords.received",
            "source_records",
            "payload_sealed",
            "user",
            DataSubjectCategory.CUSTOMER,
            True,
            _SUPPORT,
            ("source_records", *_CUSTOMER_DATA),
            "each source's record as received",
        ),
        Place(
            "customer.quality.invalidValues.value",
            "invalid_values",
            "value_sealed",
            "user",
            DataSubjectCategory.CUSTOMER,
            True,
            CLEAR_ROLES[PersonalData.FREE_TEXT],
            _CUSTOMER_DATA,
            "values refused by validation",
        ),
        Place(
            "consent.evidence",
            "consent_entries",
            "evidence_sealed",
            "user.device.ip_address",
            DataSubjectCategory.CUSTOMER,
            True,
            frozenset(),
            (),
            "user agent and a keyed digest of the IP address; the ledger is append-only and "
            "kept as proof of consent; erasure makes it unreadable",
        ),
        Place(
            "dataSubjectRequest.subject",
            "dsr_requests",
            "subject_sealed",
            "user.contact",
            DataSubjectCategory.REQUESTER,
            True,
            _OVERSIGHT,
            ("dsr.requests",),
        ),
        Place(
            "dataSubjectRequest.export",
            "dsr_exports",
            "content_sealed",
            "user",
            DataSubjectCategory.REQUESTER,
            True,
            frozenset(),
            ("dsr.exports",),
            "only the requester fetches it, with a short-lived link",
        ),
        Place(
            "segmentExport.file",
            "segment_exports",
            "content_sealed",
            "user",
            DataSubjectCategory.CUSTOMER,
            True,
            _OVERSIGHT,
            (),
            "a recipient flow: a segment's members exported for one purpose (only those it may "
            "process, only the fields its data categories cover), sealed under the export's key "
            "and fetched once by an admin or privacy officer through a short-lived link",
        ),
        Place(
            "customer.events.externalId",
            "events",
            "external_id",
            "user.unique_id",
            DataSubjectCategory.CUSTOMER,
            False,
            frozenset(Role) - {Role.INGEST},
            ("events", "events.*", *_CUSTOMER_DATA),
            "the source system's id of the event",
        ),
        Place(
            "customer.events.itemId",
            "events",
            "item_id",
            "user.behavior.purchase_history",
            DataSubjectCategory.CUSTOMER,
            False,
            frozenset(Role) - {Role.INGEST},
            ("events", "events.*", *_CUSTOMER_DATA),
            "the product or content id read from the properties at ingestion; names an item, "
            "not a person, and is pseudonymous only beside the customer id; the item-to-item "
            "model built from it keeps no customer id",
        ),
        Place(
            "customer.identities.blindIndex",
            "identities",
            "blind_index",
            "user.unique_id.pseudonymous",
            DataSubjectCategory.CUSTOMER,
            False,
            frozenset(),
            _CUSTOMER_DATA,
            "keyed HMAC-SHA256 of the normalized identifier; never shown",
        ),
        Place(
            "suppression.blindIndex",
            "suppressed_identifiers",
            "blind_index",
            "user.unique_id.pseudonymous",
            DataSubjectCategory.CUSTOMER,
            False,
            frozenset(),
            (),
            "identifiers of erased people, so imports do not re-create them; never shown",
        ),
        Place(
            "erasureRegister.blindIndex",
            "erasure_register_pending",
            "identifiers",
            "user.unique_id.pseudonymous",
            DataSubjectCategory.CUSTOMER,
            False,
            frozenset(),
            (),
            "the erased person's customer id and identifier blind indexes, also written to the "
            "erasure register outside the database (CDLM_ERASURE_REGISTER_DIR) so a restored "
            "backup is erased again; never shown",
        ),
        Place(
            "dataSubjectRequest.details",
            "dsr_requests",
            "details_sealed",
            "user",
            DataSubjectCategory.REQUESTER,
            True,
            frozenset(),
            ("dsr.requests",),
            "corrections, purposes and notes the requester gave",
        ),
        *(
            Place(
                f"dataSubjectRequest.{field}",
                table,
                column,
                "user.content.private",
                DataSubjectCategory.REQUESTER,
                True,
                _OVERSIGHT,
                ("dsr.requests",),
                "what staff wrote about the request, under the request's key: destroyed with it",
            )
            for field, table, column in (
                ("reason", "dsr_requests", "staff_reason_sealed"),
                ("extensionReason", "dsr_requests", "extension_reason_sealed"),
                ("timeline.note", "dsr_request_events", "note_sealed"),
            )
        ),
        *(
            Place(
                field,
                table,
                column,
                "user.content.private",
                DataSubjectCategory.CUSTOMER,
                True,
                _STEWARDS,
                (),
                "what staff wrote about a merge or a candidate pair, under the profile's key: "
                "shredded with it",
            )
            for field, table, column in (
                ("customerMerge.reason", "merges", "reason_sealed"),
                ("customerMerge.unmergeReason", "merges", "unmerge_reason_sealed"),
                ("matchCandidate.note", "match_candidates", "note_sealed"),
            )
        ),
        *(
            Place(
                f"matchCandidate.{side}Digest",
                "match_candidates",
                f"{side}_digest",
                "user.unique_id.pseudonymous",
                DataSubjectCategory.CUSTOMER,
                False,
                frozenset(),
                (),
                "keyed digest of the values matching compared, to notice a change; deleted "
                "with the person",
            )
            for side in ("left", "right")
        ),
        Place(
            "dataSubjectRequest.subjectIndex",
            "dsr_requests",
            "subject_index",
            "user.unique_id.pseudonymous",
            DataSubjectCategory.REQUESTER,
            False,
            frozenset(),
            ("dsr.requests",),
            "keyed digest of the requester's identifier, for duplicates",
        ),
        Place(
            "notification.payload",
            "notification_outbox",
            "payload_sealed",
            "user.contact",
            DataSubjectCategory.REQUESTER,
            True,
            frozenset(),
            ("notifications",),
            "recipient and text until delivered, then emptied",
        ),
        Place(
            "archive.records",
            "archive store",
            "JSONL lines",
            "user",
            DataSubjectCategory.CUSTOMER,
            True,
            frozenset(),
            (),
            "records archived by the retention sweep, sealed under each customer's key",
        ),
        Place(
            "legalHold.reason",
            "legal_holds",
            "reason",
            "user.content.private",
            DataSubjectCategory.CUSTOMER,
            False,
            _OVERSIGHT,
            (),
            "free text written by staff: keep personal details out of it",
        ),
        Place(
            "auditEntry.actorId",
            "audit_entries",
            "actor_id",
            "user.unique_id.pseudonymous",
            DataSubjectCategory.EMPLOYEE,
            False,
            _OVERSIGHT,
            (),
            "who did what: ids only; append-only",
        ),
        Place(
            "staffUser.email",
            "staff_users",
            "email",
            "user.contact.email",
            DataSubjectCategory.EMPLOYEE,
            False,
            _ADMIN,
            (),
            "in clear: sign-in looks it up",
        ),
        Place(
            "staffUser.displayName",
            "staff_users",
            "display_name",
            "user.name",
            DataSubjectCategory.EMPLOYEE,
            False,
            _ADMIN,
            (),
        ),
    ]
    return found


def ownership_category(data_category: str) -> str:
    """The data category ``data_category`` is owned at: its fideslang key cut to the second
    level (``user.contact.address.city`` -> ``user.contact``; ``user`` stays ``user``).

    Owners are assigned per kind of data (contact details, names, demographics, behaviour,
    identifiers, staff-written content, device data, whole records), which is how a privacy
    officer divides accountability; the leaves (city, postal code, first name...) are too
    fine to own one by one and the map adds new ones as fields are added."""
    return ".".join(data_category.split(".")[:2])


def ownership_categories() -> list[str]:
    """Every category of the data map owners and stewards are assigned at, sorted."""
    return sorted({place.owned_as for place in places()})


_IDENTITY_VALUES = tuple(f"customer.identities.{k}" for k in ("email", "phone", "external_id"))


def api_path(field: str) -> str:
    """The API's camelCase path of a place's ``field``: a profile field's path below the
    customer (``customer.profile.postal_code`` -> ``customer.profile.address.postalCode``), an
    identifier's value (``customer.identities.value``, whatever its kind); other places are
    named that way already."""
    prefix = "customer.profile."
    if field.startswith(prefix):
        return "customer." + profile_path(field.removeprefix(prefix))
    if field in _IDENTITY_VALUES:
        return "customer.identities.value"
    return field


def _retention(place: Place, policies: list[tuple[str, bool, str]]) -> list[str]:
    governing = [
        words
        for category, _, words in policies
        if category in place.retention_categories
        or ("events.*" in place.retention_categories and category.startswith("events."))
    ]
    return governing or ["no policy: kept until erased or disposed of by hand"]


async def data_map() -> list[Entry]:
    """The data map as the live configuration makes it."""
    purposes = await consent.all_purposes()
    policies = await retention.summaries()
    return [
        Entry(
            place,
            sorted(
                p.code
                for p in purposes
                if place.data_subject is DataSubjectCategory.CUSTOMER
                and any(covers(c, place.data_category) for c in p.data_categories)
            ),
            _retention(place, policies),
        )
        for place in places()
    ]

"""Records of processing activities (GDPR Art. 30), generated from the live configuration:
the controller, each purpose with its lawful basis, data and subjects, recipients, transfers,
erasure time limits and the security measures in force. As typed records (the API), as JSON or
rendered as Markdown (the ``cdlm ropa`` command).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from cdlm.analytics.segments import export as segment_exports
from cdlm.auth import training
from cdlm.auth.training import RoleCoverage
from cdlm.config import Settings
from cdlm.consent import service as consent
from cdlm.core import clock
from cdlm.core.vocabulary import LawfulBasis
from cdlm.governance import stewardship
from cdlm.governance.datamap import DataSubjectCategory, data_map
from cdlm.retention import policies as retention
from cdlm.retention.categories import spec_for

#: What cdlm itself does with personal data, whatever purposes are configured.
BUILT_IN_ACTIVITIES: list[dict[str, Any]] = [
    {
        "purpose": "cdlm.customer_records",
        "name": "Keeping customer records: acquisition, identity resolution, data quality",
        "description": "Taking in customer data from sources, resolving each person to one "
        "profile and keeping it accurate (GDPR Art. 5(1)(d)).",
        "lawful_basis": "contract",
        "data_use": "essential.service",
        "data_categories": ["user.name", "user.contact", "user.demographic", "user.unique_id"],
        "data_subjects": ["customer"],
        "recipients": ["none outside the controller and its processors"],
    },
    {
        "purpose": "cdlm.data_subject_requests",
        "name": "Answering data subject requests",
        "description": "Verifying requesters and carrying out access, rectification, erasure, "
        "restriction, objection and opt-out requests (GDPR Art. 12-22, CCPA).",
        "lawful_basis": "legal_obligation",
        "data_use": "essential.service",
        "data_categories": ["user.contact", "user"],
        "data_subjects": ["requester", "customer"],
        "recipients": ["the requester"],
    },
    {
        "purpose": "cdlm.security_and_accountability",
        "name": "Staff accounts, access control and the audit trail",
        "description": "Signing staff in, limiting what each role sees, recording who did what.",
        "lawful_basis": "legal_obligation",
        "data_use": "essential.service.security",
        "data_categories": ["user.contact.email", "user.name", "user.unique_id.pseudonymous"],
        "data_subjects": ["employee"],
        "recipients": ["none outside the controller and its processors"],
    },
]


def _security(settings: Settings) -> list[str]:
    keys = (
        "AWS KMS (key " + settings.kms_key_id + ")"
        if settings.kms_key_id
        else "a local master key file"
    )
    measures = [
        f"Personal data encrypted at rest with AES-256-GCM under a data key per customer, "
        f"wrapped by {keys}; ciphertext bound to its customer and field.",
        "Erasure destroys the customer's data key (crypto-shredding), so copies in backups "
        "and archives become unreadable.",
        "Lookups and matching through HMAC-SHA256 blind indexes, never clear values.",
        "Passwords, API-key secrets, verification codes and download tokens stored as argon2id "
        "hashes.",
        "Role-based access, denied by default; personal fields masked for roles not cleared "
        "for them.",
        "Every change and every read of personal data recorded in a hash-chained, append-only "
        "audit trail.",
        "No personal data in logs or error messages; requests rate-limited.",
    ]
    if settings.database is not None and settings.database.ssl:
        measures.append(f"Database connections use TLS (sslmode={settings.database.ssl}).")
    return measures


@dataclass(frozen=True)
class Controller:
    """Who decides why and how the personal data is processed."""

    name: str
    contact: str | None
    privacy_policy: str | None


@dataclass(frozen=True)
class ProcessingActivity:
    """One purpose of processing, with its lawful basis, data, subjects and recipients."""

    purpose: str
    name: str
    description: str
    lawful_basis: LawfulBasis
    data_use: str
    data_categories: list[str]
    data_subjects: list[DataSubjectCategory]
    recipients: list[str]


@dataclass(frozen=True)
class ErasureTimeLimit:
    """When one category of data is erased (an active retention policy)."""

    category: str
    rule: str
    what: str


@dataclass(frozen=True)
class CategoryOwnership:
    """Who owns and who stewards one data category (ids of staff users); ``unowned`` flags a
    category nobody, or only a deactivated staff user, owns."""

    category: str
    owner_id: uuid.UUID | None
    steward_id: uuid.UUID | None
    assigned_at: datetime | None
    unowned: bool


@dataclass(frozen=True)
class RecordsOfProcessing:
    """The records of processing activities (GDPR Art. 30) of the installation."""

    generated_at: datetime
    controller: Controller
    processing_activities: list[ProcessingActivity]
    categories_of_data_subjects: list[DataSubjectCategory]
    categories_of_personal_data: list[str]
    processors: list[str]
    transfers_to_third_countries: str
    erasure_time_limits: list[ErasureTimeLimit]
    security_measures: list[str]
    data_ownership: list[CategoryOwnership]
    unowned_categories: list[str]
    training_coverage: list[RoleCoverage]


def _built_in(activity: dict[str, Any]) -> ProcessingActivity:
    return ProcessingActivity(
        purpose=activity["purpose"],
        name=activity["name"],
        description=activity["description"],
        lawful_basis=LawfulBasis(activity["lawful_basis"]),
        data_use=activity["data_use"],
        data_categories=list(activity["data_categories"]),
        data_subjects=[DataSubjectCategory(s) for s in activity["data_subjects"]],
        recipients=list(activity["recipients"]),
    )


def _exported(flow: segment_exports.RecipientFlow | None) -> list[str]:
    """The segment exports made for a purpose, as a line of its recipients."""
    if flow is None:
        return []
    return [
        f"segment exports: {flow.exports} files with {flow.members_exported} customers' "
        f"{', '.join(flow.fields)}, the last on {flow.last_at:%Y-%m-%d}"
    ]


async def processing_records(settings: Settings) -> RecordsOfProcessing:
    """The records of processing, from the live configuration."""
    purposes = await consent.all_purposes()
    policies = await retention.summaries()
    entries = await data_map()
    flows = await segment_exports.recipient_flows()
    ownership = [
        CategoryOwnership(
            owned.category,
            owned.row.owner_id if owned.row else None,
            owned.row.steward_id if owned.row else None,
            owned.row.assigned_at if owned.row else None,
            owned.unowned,
        )
        for owned in await stewardship.ownership_by_categories(
            sorted({e.place.owned_as for e in entries})
        )
    ]
    return RecordsOfProcessing(
        generated_at=clock.now(),
        controller=Controller(
            name=settings.controller_name,
            contact=settings.controller_email,
            privacy_policy=settings.policy_url,
        ),
        processing_activities=[_built_in(activity) for activity in BUILT_IN_ACTIVITIES]
        + [
            ProcessingActivity(
                purpose=p.code,
                name=p.name,
                description=p.description,
                lawful_basis=p.lawful_basis,
                data_use=p.data_use,
                data_categories=list(p.data_categories),
                data_subjects=[DataSubjectCategory.CUSTOMER],
                recipients=(
                    list(p.recipients)
                    or (
                        ["third parties to which data is sold or shared (not recorded)"]
                        if p.sale_or_sharing
                        else ["none outside the controller and its processors"]
                    )
                )
                + _exported(flows.get(p.code)),
            )
            for p in purposes
        ],
        categories_of_data_subjects=sorted({e.place.data_subject for e in entries}),
        categories_of_personal_data=sorted({e.place.data_category for e in entries}),
        processors=(
            ["Amazon Web Services: hosting, key management and archive storage"]
            if settings.kms_key_id or settings.archive_bucket
            else []
        ),
        transfers_to_third_countries="None declared in cdlm's configuration.",
        erasure_time_limits=[
            ErasureTimeLimit(
                category=category,
                rule=words,
                what=spec.description if (spec := spec_for(category)) else "",
            )
            for category, active, words in policies
            if active
        ],
        security_measures=_security(settings),
        data_ownership=ownership,
        unowned_categories=[o.category for o in ownership if o.unowned],
        training_coverage=await training.coverage(settings.require_training, clock.now()),
    )


def as_json(records: RecordsOfProcessing) -> dict[str, Any]:
    """The records as JSON-ready data (snake_case keys, as `cdlm ropa --format json` prints)."""
    found: dict[str, Any] = json.loads(json.dumps(asdict(records), default=_plain))
    found["training_coverage"] = [c.as_json() for c in records.training_coverage]
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


async def records_of_processing(settings: Settings) -> dict[str, Any]:
    """The records of processing as JSON-ready data."""
    return as_json(await processing_records(settings))


def to_markdown(records: dict[str, Any]) -> str:
    """The records of processing as a Markdown document."""
    controller = records["controller"]
    lines = [
        "# Records of processing activities (GDPR Art. 30)",
        "",
        f"Generated {records['generated_at']} from the live configuration.",
        "",
        "## Controller",
        "",
        f"- Name: {controller['name']}",
        f"- Contact: {controller['contact'] or 'not set (CDLM_CONTROLLER_EMAIL)'}",
        f"- Privacy policy: {controller['privacy_policy'] or 'not set (CDLM_POLICY_URL)'}",
        "",
        "## Processing activities",
        "",
        "| purpose | lawful basis | data use | data categories | recipients |",
        "|---|---|---|---|---|",
    ]
    for activity in records["processing_activities"]:
        lines.append(
            f"| {activity['name']} (`{activity['purpose']}`) | {activity['lawful_basis']} | "
            f"{activity['data_use']} | {', '.join(activity['data_categories']) or 'none'} | "
            f"{'; '.join(activity['recipients'])} |"
        )
    if not records["processing_activities"]:
        lines.append("| none declared | | | | |")
    lines += [
        "",
        "## Data subjects and personal data",
        "",
        "- Data subjects: " + ", ".join(records["categories_of_data_subjects"]),
        "- Personal data: " + ", ".join(records["categories_of_personal_data"]),
        "- Processors: " + ("; ".join(records["processors"]) or "none"),
        f"- Transfers to third countries: {records['transfers_to_third_countries']}",
        "",
        "## Erasure time limits",
        "",
    ]
    limits = records["erasure_time_limits"]
    lines += [f"- {limit['rule']}: {limit['what']}" for limit in limits] or [
        "- No retention policy is declared: data is kept until erased."
    ]
    lines += ["", "## Security measures", ""]
    lines += [f"- {measure}" for measure in records["security_measures"]]
    lines += [
        "",
        "## Data owners and stewards",
        "",
        "| data category | owner (staff user id) | steward (staff user id) |",
        "|---|---|---|",
    ]
    for owned in records["data_ownership"]:
        lines.append(
            f"| `{owned['category']}` | {owned['owner_id'] or 'none'}"
            f"{' **UNOWNED**' if owned['unowned'] else ''} | {owned['steward_id'] or 'none'} |"
        )
    unowned = records["unowned_categories"]
    lines += [
        "",
        f"Categories without an owner: {', '.join(unowned)}."
        if unowned
        else "Every category has an owner.",
        "",
        "## Staff privacy training",
        "",
        "| role | active staff users | with current training | share | training required |",
        "|---|---|---|---|---|",
    ]
    for role in records["training_coverage"]:
        share = "-" if role["share"] is None else f"{role['share']:.0%}"
        lines.append(
            f"| {role['role']} | {role['staff_users']} | {role['trained']} | {share} | "
            f"{'yes' if role['required'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"

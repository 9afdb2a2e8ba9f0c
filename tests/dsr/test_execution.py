"""Carrying requests out: access and portability exports, rectification, restriction,
objection, opt-out, and erasure by crypto-shredding (with holds, suppression, resumption)."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from tortoise.connection import get_connection

from cdlm.auth.settings import AuthSettings
from cdlm.config import Settings
from cdlm.consent import service as consent
from cdlm.consent.models import ConsentEntry, Decision, Mechanism, Method
from cdlm.core import clock
from cdlm.core.errors import ErrorCode, ValidationFailed
from cdlm.core.principal import SYSTEM
from cdlm.core.vocabulary import LawfulBasis, SourceKind
from cdlm.customers.events import EventIngest, store_events
from cdlm.customers.models import Customer, Event, SourceRecord
from cdlm.dsr import erasure, execution
from cdlm.dsr.models import AccessExport, DataSubjectRequest, ExecutionStep, RequestEvent
from cdlm.dsr.notifier import LogNotifier
from cdlm.dsr.workflow import Status
from cdlm.identity.models import Identity, Suppression
from cdlm.retention import service as retention
from cdlm.vault.keys import provider_from_settings
from cdlm.vault.service import MissingKey, Vault
from tests.conftest import GraphQLClient
from tests.consent.test_consent import make_purpose
from tests.dsr.support import GET, approved, change, execute, export_link, inbox, key, request_gid
from tests.factories import gid, make_customer, source
from tests.support.raw_dump import every_stored_value

PERSONAL = [
    "ines.quartermaine@example.com",
    "ines.quartermaine",
    "+447911123987",
    "7911123987",
    "Ines",
    "Quartermaine",
    "1980-02-29",
    "17 Foxglove Lane",
    "Little Whinging",
    "GU1 4AB",
    "iq-loyalty-31337",
    "Prefers oat milk",
    "Quartermaine-Hollow",
]


@pytest.fixture(autouse=True)
def notifications(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cdlm.notifications")


async def _person(vault: Vault) -> uuid.UUID:
    """A customer with everything: identities, events, sources, a refused value, consent."""
    created = await make_customer(
        vault,
        email="Ines.Quartermaine@example.com",
        phone="+44 7911 123987",
        given_name="Ines",
        family_name="Quartermaine",
        birth_date="1980-02-29",
        address_line1="17 Foxglove Lane",
        city="Little Whinging",
        postal_code="GU1 4AB",
        external_ids=["loyalty:iq-loyalty-31337"],
    )
    customer_id = created.customer_id
    await make_customer(
        vault,
        email="ines.quartermaine@example.com",
        country="Quartermaine-Hollow",  # refused, kept sealed
        origin=source("web", SourceKind.WEB_FORM, basis=LawfulBasis.CONSENT),
    )
    await store_events(
        vault,
        [
            EventIngest(
                type="purchase",
                occurred_at=datetime(2026, 3, 3, tzinfo=UTC),
                source_system="shop",
                customer_id=customer_id,
                amount=Decimal("12.50"),
                currency="EUR",
                properties={"basket": "oat milk", "note": "Prefers oat milk"},
            ),
            EventIngest(
                type="support.ticket",
                occurred_at=datetime(2026, 3, 4, tzinfo=UTC),
                source_system="helpdesk",
                customer_id=customer_id,
                properties={"from": "ines.quartermaine@example.com"},
            ),
        ],
    )
    await make_purpose("newsletter")
    await consent.record(
        SYSTEM,
        vault,
        consent.ConsentRecording(
            customer_id,
            [consent.Choice("newsletter", Decision.GRANTED, 1)],
            consent.Capture(Method.FORM, user_agent="Ines's browser", ip_address="203.0.113.9"),
        ),
    )
    return customer_id


# ------------------------------------------------------------------------------ access


async def test_access_answers_with_everything_held_through_a_short_lived_link(
    gql: GraphQLClient,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    vault: Vault,
    caplog: pytest.LogCaptureFixture,
    settings: Settings,
) -> None:
    customer_id = await _person(vault)
    request_id = await approved(gql, admin_headers, "ACCESS", "ines.quartermaine@example.com")
    done = await execute(gql, admin_headers, request_id)
    assert done["request"]["status"] == "COMPLETED"
    assert done["request"]["publicStatus"] == "FULFILLED"
    progress = done["request"]["progress"]
    assert progress["stepsDone"] == ["COLLECT", "SEND_LINK"]
    assert progress["collect"]["dataFound"] is True
    assert progress["collect"]["sizeBytes"] > 0
    assert progress["sendLink"]["sent"] is True
    assert progress["restrict"] is None  # not a step of an access request
    stored = await AccessExport.get(request_id=key(request_id))
    assert b"oat milk" not in bytes(stored.content_sealed)  # sealed at rest

    link = export_link(caplog)
    response = await client.get(link)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert "attachment" in response.headers["content-disposition"]
    answer = response.json()
    assert answer["format"] == "cdlm-subject-access/1"
    assert answer["data"]["customer_id"] == str(customer_id)
    assert answer["data"]["profile"]["given_name"] == "Ines"
    assert {i["value"] for i in answer["data"]["identities"]} >= {
        "ines.quartermaine@example.com",
        "+447911123987",
    }
    assert [e["type"] for e in answer["data"]["events"]] == ["purchase", "support.ticket"]
    assert answer["data"]["events"][0]["properties"]["note"] == "Prefers oat milk"
    assert len(answer["data"]["source_records"]) == 2
    assert answer["data"]["refused_values"][0]["value"] == "Quartermaine-Hollow"
    assert answer["consents"][0]["purpose"] == "newsletter"
    assert answer["requests"][0]["id"] == str(key(request_id))  # the copy keeps database ids
    assert {"purposes", "recipients", "retention", "automated_decisions"} <= set(
        answer["processing"]
    )
    assert hashlib_of(response.content) == stored.sha256

    # Wrong, malformed and expired tokens all get the same 404.
    assert (await client.get(link[:-3] + "abc")).status_code == 404
    assert (await client.get("/exports/nonsense")).status_code == 404
    with clock.travel(timedelta(seconds=settings.export_download_ttl + 1)):
        assert (await client.get(link)).status_code == 404
    downloads = await RequestEvent.filter(
        request_id=key(request_id), kind="export_downloaded"
    ).count()
    assert downloads == 1


def hashlib_of(content: bytes) -> str:
    import hashlib

    return hashlib.sha256(content).hexdigest()


async def test_a_link_works_a_few_times_only(
    gql: GraphQLClient,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    vault: Vault,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _person(vault)
    request_id = await approved(gql, admin_headers, "ACCESS", "ines.quartermaine@example.com")
    await execute(gql, admin_headers, request_id)
    link = export_link(caplog)
    statuses = [(await client.get(link)).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [404]


async def test_portability_keeps_what_the_person_provided_under_consent_or_contract(
    gql: GraphQLClient,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    vault: Vault,
    caplog: pytest.LogCaptureFixture,
) -> None:
    customer_id = await _person(vault)
    await make_customer(
        vault,
        email="ines.quartermaine@example.com",
        origin=source("bureau", SourceKind.THIRD_PARTY, basis=LawfulBasis.LEGITIMATE_INTERESTS),
    )
    assert await SourceRecord.filter(customer_id=customer_id).count() == 3
    request_id = await approved(gql, admin_headers, "PORTABILITY", "ines.quartermaine@example.com")
    await execute(gql, admin_headers, request_id)
    answer = (await client.get(export_link(caplog))).json()
    assert answer["format"] == "cdlm-portability/1"
    assert [r["source_system"] for r in answer["data"]["source_records"]] == ["crm", "web"]
    assert "processing" not in answer
    assert "refused_values" not in answer["data"]


async def test_access_for_someone_unknown_says_no_data_is_held(
    gql: GraphQLClient,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    request_id = await approved(gql, admin_headers, "ACCESS", "nobody@example.org")
    done = await execute(gql, admin_headers, request_id)
    assert done["request"]["status"] == "COMPLETED"
    answer = (await client.get(export_link(caplog))).json()
    assert answer["data_found"] is False
    assert answer["data"] is None


# --------------------------------------------------------------- other rights


async def test_rectification_applies_the_corrections_with_lineage(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    customer_id = await _person(vault)
    request_id = await approved(
        gql,
        admin_headers,
        "RECTIFICATION",
        "ines.quartermaine@example.com",
        corrections={"familyName": "Quartermain", "address": {"city": "Godric's Hollow"}},
    )
    done = await execute(gql, admin_headers, request_id)
    assert done["request"]["status"] == "COMPLETED"
    # The fields corrected, as the API spells them below Customer.profile.
    assert done["request"]["progress"]["rectify"] == {
        "dataFound": True,
        "fields": ["address.city", "familyName"],
    }
    customer = await Customer.get(id=customer_id)
    data_key = await vault.customer_key(customer_id)
    profile = vault.open(data_key, customer_id, "profile", customer.profile_sealed)
    assert profile["family_name"] == "Quartermain"
    assert profile["city"] == "Godric's Hollow"
    assert customer.lineage["family_name"]["source_system"] == "cdlm-staff"


async def test_restriction_stops_every_processing_check(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    customer_id = await _person(vault)
    assert await consent.may_process(customer_id, "newsletter") is True
    request_id = await approved(gql, admin_headers, "RESTRICTION", "ines.quartermaine@example.com")
    await execute(gql, admin_headers, request_id)
    assert (await Customer.get(id=customer_id)).restricted_at is not None
    assert await consent.may_process(customer_id, "newsletter") is False


async def test_the_customer_is_matched_again_when_the_request_runs(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    unknown = await approved(gql, admin_headers, "RESTRICTION", "nobody@example.org")
    done = await execute(gql, admin_headers, unknown)
    assert done["request"]["status"] == "COMPLETED"
    assert done["request"]["progress"]["stepsDone"] == ["RESTRICT"]
    assert done["request"]["progress"]["restrict"] == {"dataFound": False, "newlyRestricted": False}
    later = await approved(gql, admin_headers, "OBJECTION", "later@example.org")
    customer_id = (await make_customer(vault, email="later@example.org")).customer_id
    done = await execute(gql, admin_headers, later)
    assert done["request"]["customerId"] == gid("Customer", customer_id)
    assert done["request"]["status"] == "COMPLETED"


async def test_a_request_put_on_hold_while_it_runs_stops_at_the_next_step(
    gql: GraphQLClient,
    admin_headers: dict[str, str],
    vault: Vault,
    auth: AuthSettings,
    settings: Settings,
) -> None:
    customer_id = await _person(vault)
    request_id = key(await approved(gql, admin_headers, "ERASURE", "ines.quartermaine@example.com"))
    run = execution.Run(SYSTEM, vault, auth, settings, request_id)
    await DataSubjectRequest.filter(id=request_id).update(status=Status.ON_HOLD)

    async def destroy(_: DataSubjectRequest) -> dict[str, Any]:
        raise AssertionError("a held request must not do any work")

    with pytest.raises(execution.Stopped):
        await execution.step(run, ExecutionStep.SHRED, destroy)
    assert await vault.customer_keys([customer_id])


async def test_objection_and_opt_out_write_consent_ledger_entries(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    customer_id = await _person(vault)
    await make_purpose(
        "partners", Mechanism.OPT_OUT, data_use="third_party_sharing", sale_or_sharing=True
    )
    await make_purpose(
        "service-mail", Mechanism.NOTICE_ONLY, data_use="essential.service.notifications"
    )
    objection = await approved(gql, admin_headers, "OBJECTION", "ines.quartermaine@example.com")
    await execute(gql, admin_headers, objection)
    assert await consent.may_process(customer_id, "newsletter") is False
    assert await consent.may_process(customer_id, "service-mail") is True  # contract, not Art. 21
    # A general objection covers selling and sharing too.
    assert await consent.may_process(customer_id, "partners") is False
    methods = [
        e.method for e in await ConsentEntry.filter(customer_id=customer_id).order_by("sequence")
    ]
    assert methods == [Method.FORM, Method.REQUEST, Method.REQUEST]
    # The request's progress names the ledger entries it wrote by global id.
    recorded = (await gql(GET, {"id": objection}, admin_headers))["data"]["dataSubjectRequest"]
    written = await ConsentEntry.filter(customer_id=customer_id, method=Method.REQUEST)
    assert recorded["progress"]["recordConsent"]["dataFound"] is True
    assert set(recorded["progress"]["recordConsent"]["consentEntryIds"]) == {
        gid("ConsentEntry", entry.id) for entry in written
    }
    # An opt-out of sale after it has nothing left to opt out of.
    opt_out = await approved(gql, admin_headers, "OPT_OUT_OF_SALE", "ines.quartermaine@example.com")
    done = await execute(gql, admin_headers, opt_out)
    assert done["request"]["status"] == "COMPLETED"
    assert await ConsentEntry.filter(customer_id=customer_id).count() == len(methods)
    assert (await consent.verify_ledger()).ok


# ----------------------------------------------------------------------------- erasure


async def test_erasure_leaves_no_trace_and_no_readable_leftover(
    gql: GraphQLClient,
    admin_headers: dict[str, str],
    vault: Vault,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    customer_id = await _person(vault)
    earlier = await approved(gql, admin_headers, "ACCESS", "ines.quartermaine@example.com")
    await execute(gql, admin_headers, earlier)
    before = await every_stored_value(get_connection("default"))
    assert "Ines" not in before  # all sealed already
    copy = await Customer.get(id=customer_id)
    sealed_profile = bytes(copy.profile_sealed)

    request_id = await approved(gql, admin_headers, "ERASURE", "ines.quartermaine@example.com")
    done = await execute(gql, admin_headers, request_id)
    request = done["request"]
    assert request["status"] == "COMPLETED"
    assert request["subject"] is None  # the requester's details went with the request key

    everything = await every_stored_value(get_connection("default"))
    # Exact case for short values ("ines" is in "business"), any case for the longer ones.
    assert [v for v in PERSONAL if v in everything] == []
    longer = [v for v in PERSONAL if len(v) > 6]
    assert [v for v in longer if v.lower() in everything.lower()] == []
    for model in (Customer, Identity, Event, SourceRecord):
        assert (
            await model.filter(
                **{"id" if model is Customer else "customer_id": customer_id}
            ).count()
            == 0
        )
    assert await AccessExport.filter(request_id=key(earlier)).count() == 0

    # The key is gone everywhere: a fresh vault (another process) cannot open old ciphertext.
    fresh = Vault(provider_from_settings(settings))
    assert await fresh.customer_keys([customer_id]) == {}
    with pytest.raises(MissingKey):
        await fresh.customer_key(customer_id)
    assert sealed_profile  # the copy taken before is all that is left, and it is unreadable

    certificate = request["certificate"]
    assert certificate["requestId"] == request_id
    assert certificate["customerId"] == gid("Customer", customer_id)
    assert certificate["dataFound"] is True
    assert certificate["erased"]["identities"] == 3
    assert certificate["erased"]["events"] == [
        {"type": "purchase", "count": 1},
        {"type": "support.ticket", "count": 1},
    ]
    assert {"givenName", "email", "address.city"} <= set(certificate["erased"]["profileFields"])
    assert certificate["erased"]["sourceRecords"] == 2
    assert certificate["erased"]["earlierAccessExports"] == 1
    assert certificate["keysDestroyed"]["customerKey"] is True
    assert {r["category"] for r in certificate["retained"]} == {"consent_ledger", "audit_trail"}
    [trail] = [r for r in certificate["retained"] if r["category"] == "audit_trail"]
    assert (trail["count"], trail["legalHoldId"], trail["until"]) == (None, None, None)
    assert certificate["erasedLater"] == []
    digest = hashlib.sha256(certificate["canonicalJson"].encode()).hexdigest()
    assert certificate["sha256"] == digest
    assert (
        json.loads(certificate["canonicalJson"])["certificate_id"] == (certificate["certificateId"])
    )
    progress = request["progress"]
    assert progress["stepsDone"] == ["PLAN", "RETAIN", "SUPPRESS", "SHRED", "DELETE"]
    assert progress["plan"]["held"]["identities"] == 3
    assert progress["suppress"]["identifiersSuppressed"] == 3
    assert progress["shred"] == {
        "customerKey": True,
        "earlierAccessExports": 1,
        "earlierRequestKeys": 1,
    }
    assert progress["delete"]["customerDeleted"] is True
    assert progress["delete"]["sourceRecords"] == 2
    assert [t for t, _, _ in inbox(caplog)][-1] == "request_completed"


async def test_an_erased_person_is_not_recreated_by_the_next_import(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    await _person(vault)
    request_id = await approved(gql, admin_headers, "ERASURE", "ines.quartermaine@example.com")
    await execute(gql, admin_headers, request_id)
    assert await Suppression.all().count() == 3  # email, phone, loyalty id (the email once)
    for identifiers in (
        {"email": "INES.QUARTERMAINE@example.com"},
        {"phone": "+44 7911 123987", "email": "new.address@example.com"},
    ):
        with pytest.raises(ValidationFailed) as refused:
            await make_customer(vault, **identifiers)
        assert refused.value.code is ErrorCode.SUPPRESSED
    with pytest.raises(ValidationFailed):
        await make_customer(vault, external_ids=["loyalty:iq-loyalty-31337"])
    assert await Customer.all().count() == 0
    await make_customer(vault, email="someone.else@example.com")
    assert await Customer.all().count() == 1


async def test_a_hold_on_the_customer_puts_the_erasure_on_hold(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    customer_id = await _person(vault)
    hold = await retention.place_hold(SYSTEM, reason="Litigation L-2026-7", customer_id=customer_id)
    request_id = await approved(gql, admin_headers, "ERASURE", "ines.quartermaine@example.com")
    held = await execute(gql, admin_headers, request_id)
    assert held["request"]["status"] == "ON_HOLD"
    assert held["request"]["reason"] == f"legal hold {gid('LegalHold', hold.id)}"
    assert held["request"]["progress"]["legalHoldId"] == gid("LegalHold", hold.id)
    assert await Customer.exists(id=customer_id)
    assert await vault.customer_keys([customer_id])
    await retention.release_hold(SYSTEM, hold.id)
    await change(gql, admin_headers, request_id, "APPROVED")
    done = await execute(gql, admin_headers, request_id)
    assert done["request"]["status"] == "COMPLETED"
    assert not await Customer.exists(id=customer_id)


async def test_a_category_hold_keeps_those_rows_readable_and_restricted(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    customer_id = await _person(vault)
    hold = await retention.place_hold(
        SYSTEM, reason="Tax records, 10 years", category="events.purchase"
    )
    request_id = await approved(gql, admin_headers, "ERASURE", "ines.quartermaine@example.com")
    done = await execute(gql, admin_headers, request_id)
    certificate = done["request"]["certificate"]
    assert certificate["erased"]["events"] == [{"type": "support.ticket", "count": 1}]
    [kept] = [r for r in certificate["retained"] if r["category"] == "events.purchase"]
    assert kept == {
        "category": "events.purchase",
        "count": 1,
        "reason": "Tax records, 10 years",
        "legalHoldId": gid("LegalHold", hold.id),
        "until": None,
    }
    assert certificate["retainedDataIsRestricted"] is True
    assert done["request"]["progress"]["plan"]["retained"] == [kept]
    assert done["request"]["progress"]["retain"]["rowsResealed"] >= 1
    tombstone = await Customer.get(id=customer_id)
    assert tombstone.erased_at is not None
    assert tombstone.restricted_at is not None
    assert tombstone.present_fields == []
    [purchase] = await Event.filter(customer_id=customer_id)
    assert purchase.amount == Decimal("12.50")
    owner = erasure.rights.retention_owner(customer_id)
    kept_key = await vault.customer_key(owner)
    assert (
        vault.open(kept_key, owner, "event-properties", purchase.properties_sealed)["basket"]
        == "oat milk"
    )
    assert await vault.customer_keys([customer_id]) == {}
    assert await consent.may_process(customer_id, "newsletter") is False


async def test_an_interrupted_erasure_resumes_where_it_stopped(
    gql: GraphQLClient,
    admin_headers: dict[str, str],
    vault: Vault,
    auth: AuthSettings,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    customer_id = await _person(vault)
    request_id = key(await approved(gql, admin_headers, "ERASURE", "ines.quartermaine@example.com"))
    real_delete = erasure.rights.erase
    calls = {"delete": 0}

    async def crash_after_deleting(customer: uuid.UUID, keep: Any) -> dict[str, int]:
        calls["delete"] += 1
        await real_delete(customer, keep)
        raise ConnectionResetError("the database went away")

    monkeypatch.setattr(erasure.rights, "erase", crash_after_deleting)
    with pytest.raises(ConnectionResetError):
        await execution.execute(SYSTEM, vault, auth, settings, LogNotifier(), request_id)
    failed = await DataSubjectRequest.get(id=request_id)
    assert failed.status is Status.FAILED
    assert set(failed.progress["steps"]) == {"plan", "retain", "suppress", "shred"}
    # The crashed step rolled back: the rows are still there, but their key is gone.
    assert await Customer.exists(id=customer_id)
    assert await vault.customer_keys([customer_id]) == {}

    monkeypatch.setattr(erasure.rights, "erase", real_delete)
    resumed = await execution.execute(SYSTEM, vault, auth, settings, LogNotifier(), request_id)
    assert resumed.status is Status.COMPLETED
    assert not await Customer.exists(id=customer_id)
    steps = [
        e.note
        for e in await RequestEvent.filter(request_id=request_id, kind="step_done").order_by("id")
    ]
    assert steps == ["plan", "retain", "suppress", "shred", "delete"]  # each once
    assert resumed.certificate is not None
    assert resumed.certificate["erased"]["identities"] == 3  # counted before the crash
    assert await Suppression.all().count() == 3
    statuses = [
        e.to_status
        for e in await RequestEvent.filter(request_id=request_id, kind="status_changed").order_by(
            "id"
        )
    ]
    assert statuses[-4:] == [
        Status.IN_PROGRESS,
        Status.FAILED,
        Status.IN_PROGRESS,
        Status.COMPLETED,
    ]


async def test_only_approved_or_failed_requests_run(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    from tests.dsr.support import file_request

    filed = await file_request(gql, admin_headers, "ERASURE")
    refused = await execute(gql, admin_headers, filed["request"]["id"])
    assert refused["code"] == "INVALID_STATE"
    unknown = await execute(gql, admin_headers, request_gid(uuid.uuid4()))
    assert (unknown["code"], unknown["field"]) == ("NOT_FOUND", "input.id")
    for wrong in ("nope", str(uuid.uuid4()), gid("Customer", uuid.uuid4())):
        malformed = await execute(gql, admin_headers, wrong)
        assert (malformed["__typename"], malformed["code"], malformed["field"]) == (
            "ValidationError",
            "INVALID_ID",
            "input.id",
        )
    request = (await gql(GET, {"id": filed["request"]["id"]}, admin_headers))["data"]
    assert request["dataSubjectRequest"]["status"] == "VERIFIED"


async def test_restricted_customers_leave_lists_and_aggregates(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    customer_id = await _person(vault)
    other = (await make_customer(vault, email="other@example.com")).customer_id
    request_id = await approved(gql, admin_headers, "RESTRICTION", "ines.quartermaine@example.com")
    await execute(gql, admin_headers, request_id)
    query = """
    query($all: Boolean!, $id: ID!) {
      customers(filter: {includeRestricted: $all}) { nodes { id restrictedAt } }
      dataQualityReport { customers }
      consentOptInRates { purposeCode granted customers }
      customer(id: $id) { restrictedAt }
    }
    """
    customer = gid("Customer", customer_id)
    answer = (await gql(query, {"all": False, "id": customer}, admin_headers))["data"]
    assert [n["id"] for n in answer["customers"]["nodes"]] == [gid("Customer", other)]
    assert answer["dataQualityReport"]["customers"] == 1
    assert answer["consentOptInRates"] == [
        {"purposeCode": "newsletter", "granted": 0, "customers": 1}
    ]
    assert answer["customer"]["restrictedAt"] is not None  # support still sees the record
    everyone = (await gql(query, {"all": True, "id": customer}, admin_headers))["data"][
        "customers"
    ]["nodes"]
    assert {n["id"] for n in everyone} == {customer, gid("Customer", other)}


async def test_erasure_keeps_held_copies_and_ignores_holds_on_other_categories(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    await _person(vault)
    earlier = await approved(gql, admin_headers, "ACCESS", "ines.quartermaine@example.com")
    await execute(gql, admin_headers, earlier)
    await retention.place_hold(SYSTEM, reason="Regulator inquiry", category="dsr.exports")
    await retention.place_hold(SYSTEM, reason="Audit", category="customers.inactive")
    request_id = await approved(gql, admin_headers, "ERASURE", "ines.quartermaine@example.com")
    done = await execute(gql, admin_headers, request_id)
    certificate = done["request"]["certificate"]
    kept = {r["category"]: r for r in certificate["retained"]}
    assert set(kept) == {"dsr.exports", "consent_ledger", "audit_trail"}
    assert kept["dsr.exports"]["count"] == 1
    assert certificate["erased"]["earlierAccessExports"] == 0
    assert certificate["erased"]["sourceRecords"] == 2  # not kept by an unrelated hold
    assert await AccessExport.filter(request_id=key(earlier)).count() == 1


async def test_a_new_link_can_be_sent_while_the_copy_exists(
    gql: GraphQLClient,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    vault: Vault,
    caplog: pytest.LogCaptureFixture,
) -> None:
    resend = """
    mutation($id: ID!) {
      resendDataSubjectRequestExportLink(input: {id: $id}) {
        __typename ... on UserError { code field }
      }
    }
    """
    await _person(vault)
    request_id = await approved(gql, admin_headers, "ACCESS", "ines.quartermaine@example.com")
    early = await gql(resend, {"id": request_id}, admin_headers)
    assert early["data"]["resendDataSubjectRequestExportLink"]["code"] == "INVALID_STATE"
    await execute(gql, admin_headers, request_id)
    first = export_link(caplog)
    again = await gql(resend, {"id": request_id}, admin_headers)
    assert again["data"]["resendDataSubjectRequestExportLink"]["__typename"] == (
        "DataSubjectRequestExportLinkResent"
    )
    second = export_link(caplog)
    assert second != first
    assert (await client.get(first)).status_code == 404  # the old link stopped working
    assert (await client.get(second)).status_code == 200
    await AccessExport.filter(request_id=key(request_id)).delete()
    gone = await gql(resend, {"id": request_id}, admin_headers)
    assert gone["data"]["resendDataSubjectRequestExportLink"]["code"] == "NOT_FOUND"

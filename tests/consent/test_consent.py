"""Consent: purposes and notices, the ledger, defaults, point-in-time answers, GPC, receipts."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from tortoise.connection import get_connection
from tortoise.exceptions import OperationalError

from cdlm.auth.settings import AuthSettings
from cdlm.consent import service
from cdlm.consent.models import ConsentEntry, Decision, Mechanism, Method, Purpose
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.core.vocabulary import LawfulBasis
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key, make_customer
from tests.support.sql_counter import StatementRecorder

CREATE = """
mutation($input: CreatePurposeInput!) {
  createPurpose(input: $input) {
    __typename
    ... on PurposeSaved { purpose { id code currentVersion notices { version text } } }
    ... on UserError { message code field }
    ... on ValidationError { issues { field code } }
  }
}
"""
RESULT = """
  __typename
  ... on ConsentRecorded { entries { id purposeCode decision method } customerId replayed }
  ... on UserError { message code field }
  ... on ValidationError { issues { field code } }
"""
GRANT = (
    "mutation($input: GrantConsentInput!, $key: String) "
    f"{{ grantConsent(input: $input, idempotencyKey: $key) {{ {RESULT} }} }}"
)
WITHDRAW = (
    "mutation($input: WithdrawConsentInput!, $key: String) "
    f"{{ withdrawConsent(input: $input, idempotencyKey: $key) {{ {RESULT} }} }}"
)
PREFERENCES = (
    "mutation($input: SetConsentPreferencesInput!, $key: String) "
    f"{{ setConsentPreferences(input: $input, idempotencyKey: $key) {{ {RESULT} }} }}"
)
GPC = (
    "mutation($input: RecordGlobalPrivacyControlInput!, $key: String) "
    f"{{ recordGlobalPrivacyControl(input: $input, idempotencyKey: $key) {{ {RESULT} }} }}"
)
CONSENTS = (
    "query($id: ID!) { customer(id: $id) "
    "{ consents { purposeCode permitted decision byDefault noticeVersion } } }"
)


async def make_purpose(
    code: str,
    mechanism: Mechanism = Mechanism.OPT_IN,
    *,
    data_use: str = "marketing.communications.email",
    sale_or_sharing: bool = False,
) -> Purpose:
    return await service.create_purpose(
        SYSTEM,
        service.PurposeDefinition(
            code=code,
            name=code.title(),
            description=f"About {code}.",
            lawful_basis={
                Mechanism.OPT_IN: LawfulBasis.CONSENT,
                Mechanism.OPT_OUT: LawfulBasis.LEGITIMATE_INTERESTS,
                Mechanism.NOTICE_ONLY: LawfulBasis.CONTRACT,
            }[mechanism],
            mechanism=mechanism,
            data_use=data_use,
            data_categories=["user.contact.email"],
            sale_or_sharing=sale_or_sharing,
            notice_text=f"We use your email for {code}.",
            recipients=["Partner networks"] if sale_or_sharing else [],
        ),
    )


@pytest.fixture
async def officer(auth: AuthSettings) -> dict[str, str]:
    return bearer(await make_api_key(auth, Role.PRIVACY_OFFICER))


@pytest.fixture
async def frontend(auth: AuthSettings) -> dict[str, str]:
    return bearer(await make_api_key(auth, Role.INGEST))


def consent(customer_id: uuid.UUID, code: str, version: int = 1, **extra: Any) -> dict[str, Any]:
    """A GrantConsentInput."""
    return {
        "customerId": gid("Customer", customer_id),
        "purposeCode": code,
        "noticeVersion": version,
        **extra,
    }


def withdrawal(customer_id: uuid.UUID, code: str, **extra: Any) -> dict[str, Any]:
    """A WithdrawConsentInput."""
    return {"customerId": gid("Customer", customer_id), "purposeCode": code, **extra}


async def test_purposes_are_validated_against_the_taxonomy(
    gql: GraphQLClient, officer: dict[str, str]
) -> None:
    good = {
        "code": "newsletter",
        "name": "Newsletter",
        "description": "Monthly news.",
        "lawfulBasis": "CONSENT",
        "mechanism": "OPT_IN",
        "dataUse": "marketing.communications.email",
        "dataCategories": ["user.contact.email", "user.name"],
        "noticeText": "We send news.",
    }
    created = (await gql(CREATE, {"input": good}, headers=officer))["data"]["createPurpose"]
    assert created["__typename"] == "PurposeSaved"
    assert created["purpose"]["notices"] == [{"version": 1, "text": "We send news."}]
    again = (await gql(CREATE, {"input": good}, headers=officer))["data"]["createPurpose"]
    assert again["__typename"] == "ConflictError"
    bad = {
        **good,
        "code": "Bad Code",
        "dataUse": "marketing.mind_reading",
        "dataCategories": ["user.soul"],
        "noticeText": " ",
        "lawfulBasis": "CONTRACT",
    }
    refused = (await gql(CREATE, {"input": bad}, headers=officer))["data"]["createPurpose"]
    assert [i["field"] for i in refused["issues"]] == [
        "input.code",
        "input.dataUse",
        "input.dataCategories.0",
        "input.noticeText",
        "input.mechanism",
    ]
    assert await Purpose.all().count() == 1


async def test_a_new_notice_text_is_a_new_version_and_old_ones_stay(
    gql: GraphQLClient, officer: dict[str, str]
) -> None:
    purpose = await make_purpose("offers")
    update = """
    mutation($input: UpdatePurposeInput!) {
      updatePurpose(input: $input) { ... on PurposeSaved { purpose { currentVersion
        notices { version text } } } ... on UserError { code } }
    }"""
    same = await gql(
        update,
        {"input": {"id": gid("Purpose", purpose.id), "noticeText": purpose_text(purpose)}},
        headers=officer,
    )
    assert same["data"]["updatePurpose"]["purpose"]["currentVersion"] == 1
    changed = await gql(
        update,
        {"input": {"id": gid("Purpose", purpose.id), "noticeText": "New words."}},
        headers=officer,
    )
    saved = changed["data"]["updatePurpose"]["purpose"]
    assert saved["currentVersion"] == 2
    assert [n["version"] for n in saved["notices"]] == [1, 2]
    missing = await gql(
        update, {"input": {"id": gid("Purpose", uuid.uuid4()), "name": "x"}}, headers=officer
    )
    assert missing["data"]["updatePurpose"]["code"] == "NOT_FOUND"


def purpose_text(purpose: Purpose) -> str:
    return f"We use your email for {purpose.code}."


async def test_defaults_grants_and_withdrawals(
    gql: GraphQLClient, vault: Vault, frontend: dict[str, str], auth: AuthSettings
) -> None:
    await make_purpose("newsletter", Mechanism.OPT_IN)
    await make_purpose("service-updates", Mechanism.OPT_OUT)
    await make_purpose("billing", Mechanism.NOTICE_ONLY, data_use="essential.service")
    customer = (await make_customer(vault, email="c@example.com")).customer_id
    agent = bearer(await make_api_key(auth, Role.AGENT))

    async def statuses() -> dict[str, tuple[bool, bool]]:
        body = await gql(CONSENTS, {"id": gid("Customer", customer)}, headers=agent)
        return {
            c["purposeCode"]: (c["permitted"], c["byDefault"])
            for c in body["data"]["customer"]["consents"]
        }

    assert await statuses() == {
        "billing": (True, True),
        "newsletter": (False, True),
        "service-updates": (True, True),
    }
    granted = (await gql(GRANT, {"input": consent(customer, "newsletter")}, headers=frontend))[
        "data"
    ]
    assert granted["grantConsent"]["__typename"] == "ConsentRecorded"
    await gql(WITHDRAW, {"input": withdrawal(customer, "service-updates")}, headers=frontend)
    assert await statuses() == {
        "billing": (True, True),
        "newsletter": (True, False),
        "service-updates": (False, False),
    }
    assert await service.may_process(customer, "newsletter")
    assert not await service.may_process(customer, "service-updates")
    assert not await service.may_process(customer, "no-such-purpose")
    assert service.most_restrictive([True, False]) is False


async def test_refusals_write_nothing(
    gql: GraphQLClient, vault: Vault, frontend: dict[str, str]
) -> None:
    purpose = await make_purpose("newsletter")
    await service.update_purpose(
        SYSTEM, service.PurposeChange(purpose.id, notice_text="Version two.")
    )
    customer = (await make_customer(vault, email="r@example.com")).customer_id
    cases = [
        (consent(customer, "newsletter", 1), "STALE_NOTICE_VERSION", "input.noticeVersion"),
        (consent(customer, "newsletter", 3), "VALIDATION", "input.noticeVersion"),
        (consent(customer, "unknown-purpose", 1), "NOT_FOUND", "input.purposeCode"),
        (consent(uuid.uuid4(), "newsletter", 2), "NOT_FOUND", "input.customerId"),
        (
            consent(customer, "newsletter", 2, channel="Bad Channel"),
            "INVALID_FORMAT",
            "input.channel",
        ),
    ]
    for data, code, field in cases:
        body = await gql(GRANT, {"input": data}, headers=frontend)
        refused = body["data"]["grantConsent"]
        assert (refused["code"], refused["field"]) == (code, field), (data, body)
    # A grant names the notice shown: without one the document itself is refused.
    unnamed = await gql(
        GRANT,
        {"input": consent(customer, "newsletter") | {"noticeVersion": None}},
        headers=frontend,
    )
    assert unnamed["errors"]
    assert unnamed.get("data") is None
    assert await ConsentEntry.all().count() == 0


async def test_preferences_are_all_or_nothing(
    gql: GraphQLClient, vault: Vault, frontend: dict[str, str]
) -> None:
    await make_purpose("newsletter")
    await make_purpose("offers")
    customer = (await make_customer(vault, email="p@example.com")).customer_id
    failing: dict[str, Any] = {
        "customerId": gid("Customer", customer),
        "preferences": [
            {"purposeCode": "newsletter", "granted": True, "noticeVersion": 1},
            {"purposeCode": "missing", "granted": False},
        ],
    }
    body = await gql(PREFERENCES, {"input": failing}, headers=frontend)
    refused = body["data"]["setConsentPreferences"]
    assert (refused["code"], refused["field"]) == ("NOT_FOUND", "input.preferences.1.purposeCode")
    assert await ConsentEntry.all().count() == 0
    failing["preferences"][1]["purposeCode"] = "offers"
    body = await gql(PREFERENCES, {"input": failing}, headers=frontend)
    entries = body["data"]["setConsentPreferences"]["entries"]
    assert [(e["purposeCode"], e["decision"]) for e in entries] == [
        ("newsletter", "GRANTED"),
        ("offers", "DENIED"),
    ]
    decisions = {e.purpose.code: e.decision for e in await service.history(customer)}
    assert decisions == {"newsletter": Decision.GRANTED, "offers": Decision.DENIED}


async def test_consent_at_a_point_in_time(vault: Vault) -> None:
    await make_purpose("newsletter")
    customer = (await make_customer(vault, email="t@example.com")).customer_id
    start = datetime(2026, 3, 1, tzinfo=UTC)
    with clock.frozen_at(start):
        await service.record(
            SYSTEM,
            vault,
            service.ConsentRecording(
                customer,
                [service.Choice("newsletter", Decision.GRANTED, 1)],
                service.Capture(Method.FORM),
            ),
        )
    with clock.frozen_at(start + timedelta(days=10)):
        await service.record(
            SYSTEM,
            vault,
            service.ConsentRecording(
                customer,
                [service.Choice("newsletter", Decision.WITHDRAWN)],
                service.Capture(Method.FORM),
            ),
        )
    assert not await service.may_process(customer, "newsletter", start - timedelta(days=1))
    assert await service.may_process(customer, "newsletter", start + timedelta(days=5))
    assert not await service.may_process(customer, "newsletter", start + timedelta(days=11))


async def test_gpc_opts_out_of_sale_sharing_and_advertising_only(
    gql: GraphQLClient, vault: Vault, frontend: dict[str, str]
) -> None:
    await make_purpose("ads", Mechanism.OPT_OUT, data_use="marketing.advertising.first_party")
    await make_purpose(
        "partners", Mechanism.OPT_IN, data_use="third_party_sharing", sale_or_sharing=True
    )
    await make_purpose("newsletter")
    customer = (await make_customer(vault, email="g@example.com")).customer_id
    await gql(GRANT, {"input": consent(customer, "partners")}, headers=frontend)
    body = await gql(
        GPC,
        {"input": {"customerId": gid("Customer", customer), "evidence": {"userAgent": "B/1"}}},
        headers=frontend,
    )
    recorded = body["data"]["recordGlobalPrivacyControl"]
    assert {(e["purposeCode"], e["decision"], e["method"]) for e in recorded["entries"]} == {
        ("ads", "DENIED", "GPC"),
        ("partners", "WITHDRAWN", "GPC"),
    }
    assert recorded["customerId"] == gid("Customer", customer)
    entries = {e.purpose.code: e for e in await service.history(customer) if e.method is Method.GPC}
    assert {code: e.decision for code, e in entries.items()} == {
        "ads": Decision.DENIED,
        "partners": Decision.WITHDRAWN,
    }
    assert not await service.may_process(customer, "ads")
    assert not await service.may_process(customer, "partners")


async def test_receipt_in_kantara_shape(
    gql: GraphQLClient, vault: Vault, frontend: dict[str, str], officer: dict[str, str]
) -> None:
    await make_purpose("newsletter")
    await make_purpose("offers")
    customer = (await make_customer(vault, email="k@example.com")).customer_id
    await gql(GRANT, {"input": consent(customer, "newsletter", method="FORM")}, headers=frontend)
    body = await gql(
        "query($id: ID!) { consentReceipt(customerId: $id) }",
        {"id": gid("Customer", customer)},
        headers=officer,
    )
    receipt = body["data"]["consentReceipt"]
    for key in (
        "version",
        "jurisdiction",
        "consentTimestamp",
        "collectionMethod",
        "consentReceiptID",
        "language",
        "piiPrincipalId",
        "piiControllers",
        "policyUrl",
        "services",
        "sensitive",
        "spiCat",
    ):
        assert key in receipt
    assert receipt["collectionMethod"] == "form"
    purposes = receipt["services"][0]["purposes"]
    assert [p["purpose"] for p in purposes] == ["Newsletter"]
    assert purposes[0]["consentType"] == "EXPLICIT"
    assert purposes[0]["piiCategory"] == ["user.contact.email"]


async def test_ledger_chain_tamper_detection_and_append_only(
    vault: Vault, owner: asyncpg.Connection
) -> None:
    await make_purpose("newsletter")
    customer = (await make_customer(vault, email="l@example.com")).customer_id
    for decision in (Decision.GRANTED, Decision.WITHDRAWN, Decision.GRANTED):
        await service.record(
            SYSTEM,
            vault,
            service.ConsentRecording(
                customer, [service.Choice("newsletter", decision, 1)], service.Capture(Method.API)
            ),
        )
    assert (await service.verify_ledger()).ok
    with pytest.raises(OperationalError, match="permission denied"):  # the application role
        await get_connection("default").execute_script(
            "UPDATE consent_entries SET decision = 'granted'"
        )
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):  # the owner
        await owner.execute("UPDATE consent_entries SET decision = 'granted'")
    second = (await ConsentEntry.all().order_by("sequence"))[1]
    await owner.execute("ALTER TABLE consent_entries DISABLE TRIGGER consent_entries_append_only")
    try:
        await owner.execute(
            f"UPDATE consent_entries SET decision = 'granted' WHERE sequence = {second.sequence}"
        )
    finally:
        await owner.execute(
            "ALTER TABLE consent_entries ENABLE TRIGGER consent_entries_append_only"
        )
    report = await service.verify_ledger()
    assert not report.ok
    assert report.first_broken_sequence == second.sequence
    assert report.entries_checked == 1


async def test_concurrent_grants_and_withdrawals_lose_nothing(vault: Vault) -> None:
    await make_purpose("newsletter")
    customer = (await make_customer(vault, email="race@example.com")).customer_id
    decisions = [Decision.GRANTED if n % 2 else Decision.WITHDRAWN for n in range(30)]
    await asyncio.gather(
        *(
            service.record(
                SYSTEM,
                vault,
                service.ConsentRecording(
                    customer, [service.Choice("newsletter", d, 1)], service.Capture(Method.API)
                ),
            )
            for d in decisions
        )
    )
    assert await ConsentEntry.filter(customer_id=customer).count() == 30
    report = await service.verify_ledger()
    assert report.ok
    assert report.entries_checked == 30


async def test_idempotent_grant_and_sealed_evidence(
    gql: GraphQLClient, vault: Vault, frontend: dict[str, str]
) -> None:
    await make_purpose("newsletter")
    customer = (await make_customer(vault, email="e@example.com")).customer_id
    data = consent(
        customer,
        "newsletter",
        evidence={"userAgent": "SecretBrowser/9", "ipAddress": "198.51.100.23"},
    )
    first = (await gql(GRANT, {"input": data, "key": "k-1"}, headers=frontend))["data"][
        "grantConsent"
    ]
    again = (await gql(GRANT, {"input": data, "key": "k-1"}, headers=frontend))["data"][
        "grantConsent"
    ]
    assert again == {**first, "replayed": True}
    assert await ConsentEntry.all().count() == 1
    raw = await get_connection("default").execute_query_dict("SELECT * FROM consent_entries")
    dump = str(raw)
    assert "SecretBrowser" not in dump
    assert "198.51.100.23" not in dump


async def test_consents_on_a_page_cost_the_same_sql_for_1_or_50_customers(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings, sql: StatementRecorder
) -> None:
    await make_purpose("newsletter")
    await make_purpose("offers")
    for number in range(50):
        customer = (await make_customer(vault, email=f"s{number}@example.com")).customer_id
        await service.record(
            SYSTEM,
            vault,
            service.ConsentRecording(
                customer,
                [service.Choice("newsletter", Decision.GRANTED, 1)],
                service.Capture(Method.IMPORT),
            ),
        )
    headers = bearer(await make_api_key(auth, Role.ADMIN))
    await gql("{ viewer { role } }", headers=headers)
    query = (
        "query($n: Int) { customers(first: $n) { nodes { consents { purposeCode permitted } } } }"
    )
    counts = {}
    for size in (1, 50):
        with sql.recording():
            body = await gql(query, {"n": size}, headers=headers)
        assert len(body["data"]["customers"]["nodes"]) == size
        counts[size] = sql.count
    assert counts[1] == counts[50], counts
    rates = await gql(
        "{ consentOptInRates { purposeCode granted customers rate } }", headers=headers
    )
    assert {r["purposeCode"]: r["rate"] for r in rates["data"]["consentOptInRates"]} == {
        "newsletter": 1.0,
        "offers": 0.0,
    }


async def test_history_point_in_time_and_ledger_queries(
    gql: GraphQLClient, vault: Vault, frontend: dict[str, str], officer: dict[str, str]
) -> None:
    await make_purpose("newsletter")
    customer = (await make_customer(vault, email="q@example.com")).customer_id
    await gql(GRANT, {"input": consent(customer, "newsletter", method="FORM")}, headers=frontend)
    await gql(WITHDRAW, {"input": withdrawal(customer, "newsletter")}, headers=frontend)
    history = await gql(
        "query($id: ID!) { consentHistory(customerId: $id) "
        "{ nodes { purposeCode decision method } } }",
        {"id": gid("Customer", customer)},
        headers=officer,
    )
    assert history["data"]["consentHistory"]["nodes"] == [
        {"purposeCode": "newsletter", "decision": "GRANTED", "method": "FORM"},
        {"purposeCode": "newsletter", "decision": "WITHDRAWN", "method": "API"},
    ]
    at = await gql(
        'query($id: ID!, $at: DateTime!) { consentAt(customerId: $id, purposeCode: "newsletter", '
        "at: $at) { permitted byDefault } }",
        {"id": gid("Customer", customer), "at": "2000-01-01T00:00:00+00:00"},
        headers=officer,
    )
    assert at["data"]["consentAt"] == {"permitted": False, "byDefault": True}
    ledger = await gql("{ verifyConsentLedger { ok entriesChecked } }", headers=officer)
    assert ledger["data"]["verifyConsentLedger"] == {"ok": True, "entriesChecked": 2}

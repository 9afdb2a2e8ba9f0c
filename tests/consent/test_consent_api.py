"""The consent API as frontends use it: purposes and ledger entries as nodes, connections both
ways with totalCount, references to traverse, each mutation's errors on their paths, and the
update rule (omitted keeps, null clears what can be empty)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from tortoise.connection import get_connection

from cdlm.auth.settings import AuthSettings
from cdlm.consent import service
from cdlm.consent.models import ConsentEntry, Decision, Mechanism, Method, Purpose
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.consent.test_consent import (
    CREATE,
    GPC,
    GRANT,
    PREFERENCES,
    WITHDRAW,
    consent,
    make_purpose,
    withdrawal,
)
from tests.factories import bearer, gid, make_api_key, make_customer
from tests.support.audit import read_records
from tests.support.sql_counter import StatementRecorder

NODE = """
query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Purpose { code mechanism }
    ... on ConsentEntry { decision purposeCode customerId }
  }
}
"""
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"
PURPOSES = """
query($first: Int, $after: String, $last: Int, $before: String, $filter: PurposeFilter) {
  purposes(first: $first, after: $after, last: $last, before: $before, filter: $filter) {
    totalCount
    nodes { code }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
HISTORY = """
query($id: ID!, $first: Int, $after: String, $last: Int, $before: String,
      $filter: ConsentHistoryFilter) {
  consentHistory(customerId: $id, first: $first, after: $after, last: $last, before: $before,
                 filter: $filter) {
    totalCount
    nodes { id sequence decision purposeCode }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
UPDATE = """
mutation($input: UpdatePurposeInput!) {
  updatePurpose(input: $input) {
    __typename
    ... on PurposeSaved { purpose { name description dataCategories recipients currentVersion } }
    ... on UserError { code field }
    ... on ValidationError { issues { field code } }
  }
}
"""


@pytest.fixture
async def officer(auth: AuthSettings) -> dict[str, str]:
    return bearer(await make_api_key(auth, Role.PRIVACY_OFFICER))


@pytest.fixture
async def frontend(auth: AuthSettings) -> dict[str, str]:
    return bearer(await make_api_key(auth, Role.INGEST))


async def _record(vault: Vault, customer: uuid.UUID, code: str, decision: Decision) -> None:
    version = 1 if decision is Decision.GRANTED else None
    await service.record(
        SYSTEM,
        vault,
        service.ConsentRecording(
            customer, [service.Choice(code, decision, version)], service.Capture(Method.API)
        ),
    )


# ---------------------------------------------------------------------------- nodes


async def test_purposes_and_entries_are_nodes_with_the_roles_of_their_queries(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings, officer: dict[str, str]
) -> None:
    purpose = await make_purpose("newsletter")
    customer = (await make_customer(vault, email="node@example.com")).customer_id
    await _record(vault, customer, "newsletter", Decision.GRANTED)
    entry = await ConsentEntry.get(customer_id=customer)
    analyst = bearer(await make_api_key(auth, Role.ANALYST))
    frontend = bearer(await make_api_key(auth, Role.INGEST))

    # Purposes are for every role, as `purposes` is.
    for headers in (analyst, frontend):
        body = await gql(NODE, {"id": gid("Purpose", purpose.id)}, headers)
        assert body["data"]["node"] == {
            "__typename": "Purpose",
            "id": gid("Purpose", purpose.id),
            "code": "newsletter",
            "mechanism": "OPT_IN",
        }
    # A ledger entry is a customer's decision: for the roles of `consentHistory`, audited.
    body = await gql(NODE, {"id": gid("ConsentEntry", entry.id)}, officer)
    assert body["data"]["node"] == {
        "__typename": "ConsentEntry",
        "id": gid("ConsentEntry", entry.id),
        "decision": "GRANTED",
        "purposeCode": "newsletter",
        "customerId": gid("Customer", customer),
    }
    assert len(await read_records("consent.read", customer)) == 1
    for headers in (analyst, frontend):
        refused = await gql(NODE, {"id": gid("ConsentEntry", entry.id)}, headers)
        assert [e["extensions"]["code"] for e in refused["errors"]] == ["FORBIDDEN"]

    both = await gql(
        NODES,
        {
            "ids": [
                gid("ConsentEntry", entry.id),
                gid("Purpose", uuid.uuid4()),
                gid("Purpose", purpose.id),
            ]
        },
        officer,
    )
    assert [n and n["__typename"] for n in both["data"]["nodes"]] == [
        "ConsentEntry",
        None,
        "Purpose",
    ]
    unknown = await gql(NODE, {"id": gid("ConsentEntry", uuid.uuid4())}, officer)
    assert unknown == {"data": {"node": None}}
    malformed = await gql(NODE, {"id": str(purpose.id)}, officer)
    assert [e["extensions"]["code"] for e in malformed["errors"]] == ["INVALID_ID"]


# ---------------------------------------------------------------------- connections


async def test_purposes_page_both_ways_with_a_filter_and_a_count(
    gql: GraphQLClient, officer: dict[str, str]
) -> None:
    for code in ("alpha", "bravo", "charlie", "delta", "echo"):
        await make_purpose(code)
    await make_purpose("zulu", Mechanism.OPT_OUT)

    first = (await gql(PURPOSES, {"first": 2}, officer))["data"]["purposes"]
    assert first["totalCount"] == 6
    assert [p["code"] for p in first["nodes"]] == ["alpha", "bravo"]
    assert (first["pageInfo"]["hasNextPage"], first["pageInfo"]["hasPreviousPage"]) == (
        True,
        False,
    )
    last = (await gql(PURPOSES, {"last": 2}, officer))["data"]["purposes"]
    assert [p["code"] for p in last["nodes"]] == ["echo", "zulu"]
    assert (last["pageInfo"]["hasNextPage"], last["pageInfo"]["hasPreviousPage"]) == (
        False,
        True,
    )
    before = (await gql(PURPOSES, {"last": 2, "before": last["pageInfo"]["startCursor"]}, officer))[
        "data"
    ]["purposes"]
    assert [p["code"] for p in before["nodes"]] == ["charlie", "delta"]
    assert before["pageInfo"]["hasNextPage"] is True

    opt_out = (await gql(PURPOSES, {"filter": {"mechanism": "OPT_OUT"}}, officer))["data"]
    assert opt_out["purposes"]["totalCount"] == 1
    assert [p["code"] for p in opt_out["purposes"]["nodes"]] == ["zulu"]
    chosen = await gql(PURPOSES, {"filter": {"codes": ["echo", "alpha", "nope"]}}, officer)
    assert [p["code"] for p in chosen["data"]["purposes"]["nodes"]] == ["alpha", "echo"]


async def test_consent_history_pages_both_ways_and_filters(
    gql: GraphQLClient, vault: Vault, officer: dict[str, str]
) -> None:
    await make_purpose("newsletter")
    await make_purpose("offers")
    customer = (await make_customer(vault, email="h@example.com")).customer_id
    other = (await make_customer(vault, email="o@example.com")).customer_id
    for decision in (Decision.GRANTED, Decision.WITHDRAWN, Decision.GRANTED):
        await _record(vault, customer, "newsletter", decision)
    await _record(vault, customer, "offers", Decision.DENIED)
    await _record(vault, other, "offers", Decision.GRANTED)
    cid = gid("Customer", customer)

    page = (await gql(HISTORY, {"id": cid, "first": 3}, officer))["data"]["consentHistory"]
    assert page["totalCount"] == 4
    assert [(n["purposeCode"], n["decision"]) for n in page["nodes"]] == [
        ("newsletter", "GRANTED"),
        ("newsletter", "WITHDRAWN"),
        ("newsletter", "GRANTED"),
    ]
    rest = await gql(HISTORY, {"id": cid, "after": page["pageInfo"]["endCursor"]}, officer)
    assert [n["purposeCode"] for n in rest["data"]["consentHistory"]["nodes"]] == ["offers"]
    back = (await gql(HISTORY, {"id": cid, "last": 2}, officer))["data"]["consentHistory"]
    assert [n["decision"] for n in back["nodes"]] == ["GRANTED", "DENIED"]
    assert back["pageInfo"]["hasPreviousPage"] is True
    sequences = [n["sequence"] for n in page["nodes"]]
    assert sequences == sorted(sequences)

    filtered = await gql(
        HISTORY,
        {"id": cid, "filter": {"purposeCode": "newsletter", "decision": "GRANTED"}},
        officer,
    )
    assert filtered["data"]["consentHistory"]["totalCount"] == 2
    unknown = await gql(HISTORY, {"id": cid, "filter": {"purposeCode": "nope"}}, officer)
    assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in unknown["errors"]] == [
        ("NOT_FOUND", "filter.purposeCode")
    ]
    wrong_kind = await gql(HISTORY, {"id": gid("Purpose", customer)}, officer)
    assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in wrong_kind["errors"]] == [
        ("INVALID_ID", "customerId")
    ]


# ---------------------------------------------------------------------- references


async def test_entries_and_statuses_lead_to_their_purpose_and_customer(
    gql: GraphQLClient, vault: Vault, officer: dict[str, str]
) -> None:
    await make_purpose("newsletter")
    customer = (await make_customer(vault, email="ref@example.com", given_name="Ref")).customer_id
    await _record(vault, customer, "newsletter", Decision.GRANTED)
    body = await gql(
        """query($id: ID!) { consentHistory(customerId: $id) { nodes {
             purpose { id code currentVersion }
             customer { id profile { givenName } consents { purpose { code } permitted } }
           } } }""",
        {"id": gid("Customer", customer)},
        officer,
    )
    [entry] = body["data"]["consentHistory"]["nodes"]
    purpose = await Purpose.get(code="newsletter")
    assert entry["purpose"] == {
        "id": gid("Purpose", purpose.id),
        "code": "newsletter",
        "currentVersion": 1,
    }
    assert entry["customer"] == {
        "id": gid("Customer", customer),
        "profile": {"givenName": "Ref"},
        "consents": [{"purpose": {"code": "newsletter"}, "permitted": True}],
    }
    rates = await gql("{ consentOptInRates { purpose { code } rate } }", None, officer)
    assert rates["data"]["consentOptInRates"] == [{"purpose": {"code": "newsletter"}, "rate": 1.0}]


async def test_a_recorded_decision_returns_the_entries_and_the_customers_consents(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings, frontend: dict[str, str]
) -> None:
    await make_purpose("newsletter")
    await make_purpose("updates", Mechanism.OPT_OUT)
    customer = (await make_customer(vault, email="pay@example.com")).customer_id
    agent = bearer(await make_api_key(auth, Role.AGENT))
    payload = """
    mutation($input: GrantConsentInput!) { grantConsent(input: $input) {
      ... on ConsentRecorded {
        entries { id decision noticeVersion purpose { code } }
        customer { id }
        consents { purposeCode permitted byDefault decision }
      }
    } }"""
    body = await gql(payload, {"input": consent(customer, "newsletter")}, agent)
    recorded = body["data"]["grantConsent"]
    [entry] = recorded["entries"]
    stored = await ConsentEntry.get(customer_id=customer)
    assert entry == {
        "id": gid("ConsentEntry", stored.id),
        "decision": "GRANTED",
        "noticeVersion": 1,
        "purpose": {"code": "newsletter"},
    }
    assert recorded["customer"] == {"id": gid("Customer", customer)}
    assert recorded["consents"] == [
        {"purposeCode": "newsletter", "permitted": True, "byDefault": False, "decision": "GRANTED"},
        {"purposeCode": "updates", "permitted": True, "byDefault": True, "decision": None},
    ]
    assert len(await read_records("consent.read", customer)) == 1
    # A frontend's ingest key records decisions but reads neither customers nor their consents.
    body = await gql(payload, {"input": consent(customer, "newsletter")}, frontend)
    assert {tuple(e["path"][1:]) for e in body["errors"]} == {("customer",), ("consents",)}
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}
    assert await ConsentEntry.filter(customer_id=customer).count() == 2


async def test_a_decision_for_a_merged_profile_goes_to_its_survivor(
    gql: GraphQLClient, vault: Vault, frontend: dict[str, str]
) -> None:
    await make_purpose("newsletter")
    survivor = (await make_customer(vault, email="s@example.com")).customer_id
    merged = (await make_customer(vault, email="m@example.com")).customer_id
    await get_connection("default").execute_query(
        "UPDATE customers SET merged_into_id = $1 WHERE id = $2", [survivor, merged]
    )
    body = await gql(WITHDRAW, {"input": withdrawal(merged, "newsletter")}, frontend)
    assert body["data"]["withdrawConsent"]["customerId"] == gid("Customer", survivor)
    assert await ConsentEntry.filter(customer_id=survivor).count() == 1


# ------------------------------------------------------------------- failure modes


async def test_each_recording_mutation_returns_its_errors_on_their_paths(
    gql: GraphQLClient, vault: Vault, frontend: dict[str, str]
) -> None:
    await make_purpose("newsletter")
    customer = (await make_customer(vault, email="f@example.com")).customer_id
    nobody = gid("Customer", uuid.uuid4())
    future = (clock.now() + timedelta(days=1)).isoformat()

    async def refused(
        document: str, name: str, input: dict[str, Any], key: str | None = None
    ) -> tuple[str, str, str]:
        body = await gql(document, {"input": input, "key": key}, frontend)
        result: dict[str, Any] = body["data"][name]
        return result["__typename"], result["code"], result["field"]

    grant = consent(customer, "newsletter")
    grants = [
        (
            grant | {"customerId": gid("Purpose", customer)},
            "ValidationError",
            "INVALID_ID",
            "input.customerId",
        ),
        (grant | {"method": "GPC"}, "ValidationError", "VALIDATION", "input.method"),
        (grant | {"decidedAt": future}, "ValidationError", "IMPLAUSIBLE", "input.decidedAt"),
        (grant | {"customerId": nobody}, "NotFoundError", "NOT_FOUND", "input.customerId"),
        (grant | {"noticeVersion": 2}, "ValidationError", "VALIDATION", "input.noticeVersion"),
    ]
    for given, *expected in grants:
        assert await refused(GRANT, "grantConsent", given) == tuple(expected), given
    first = await gql(GRANT, {"input": grant, "key": "k"}, frontend)
    assert first["data"]["grantConsent"]["__typename"] == "ConsentRecorded"
    assert await refused(GRANT, "grantConsent", grant | {"channel": "app"}, "k") == (
        "ConflictError",
        "IDEMPOTENCY_MISMATCH",
        "idempotencyKey",
    )

    earlier = (clock.now() - timedelta(hours=1)).isoformat()
    withdrawals = [
        (
            withdrawal(customer, "newsletter", decidedAt=earlier),
            "ConflictError",
            "CONFLICT",
            "input.decidedAt",
        ),
        (withdrawal(customer, "nope"), "NotFoundError", "NOT_FOUND", "input.purposeCode"),
        (
            withdrawal(customer, "newsletter", evidence={"userAgent": "u" * 513}),
            "ValidationError",
            "TOO_LONG",
            "input.evidence.userAgent",
        ),
    ]
    for given, *expected in withdrawals:
        assert await refused(WITHDRAW, "withdrawConsent", given) == tuple(expected), given

    def preferences(*items: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"customerId": gid("Customer", customer), "preferences": list(items), **extra}

    yes = {"purposeCode": "newsletter", "granted": True, "noticeVersion": 1}
    no = {"purposeCode": "newsletter", "granted": False}
    stale = yes | {"noticeVersion": None}
    choices = [
        (preferences(), "ValidationError", "REQUIRED", "input.preferences"),
        (preferences(no, yes), "ValidationError", "CONFLICT", "input.preferences.1.purposeCode"),
        (
            preferences(stale),
            "PolicyViolationError",
            "STALE_NOTICE_VERSION",
            "input.preferences.0.noticeVersion",
        ),
        (preferences(yes, method="MERGE"), "ValidationError", "VALIDATION", "input.method"),
    ]
    for given, *expected in choices:
        assert await refused(PREFERENCES, "setConsentPreferences", given) == tuple(expected)

    signals = [
        ({"customerId": nobody}, "NotFoundError", "NOT_FOUND", "input.customerId"),
        ({"customerId": "nope"}, "ValidationError", "INVALID_ID", "input.customerId"),
        (
            {"customerId": gid("Customer", customer), "channel": "Web Site"},
            "ValidationError",
            "INVALID_FORMAT",
            "input.channel",
        ),
    ]
    for given, *expected in signals:
        assert await refused(GPC, "recordGlobalPrivacyControl", given) == tuple(expected)
    assert await ConsentEntry.all().count() == 1


async def test_a_notice_only_purpose_has_no_consent_to_grant(
    gql: GraphQLClient, vault: Vault, frontend: dict[str, str]
) -> None:
    await make_purpose("billing", Mechanism.NOTICE_ONLY, data_use="essential.service")
    customer = (await make_customer(vault, email="b@example.com")).customer_id
    body = await gql(GRANT, {"input": consent(customer, "billing")}, frontend)
    refused = body["data"]["grantConsent"]
    assert (refused["__typename"], refused["code"], refused["field"]) == (
        "PolicyViolationError",
        "POLICY_VIOLATION",
        "input.purposeCode",
    )


async def test_purpose_mutations_return_their_errors(
    gql: GraphQLClient, officer: dict[str, str]
) -> None:
    good = {
        "code": "partners",
        "name": "Partners",
        "description": "Sharing.",
        "lawfulBasis": "CONSENT",
        "mechanism": "OPT_IN",
        "dataUse": "third_party_sharing",
        "dataCategories": ["user.contact.email", "user.soul"],
        "noticeText": "We share.",
        "saleOrSharing": True,
        "recipients": ["Ads Ltd", ""],
    }
    body = await gql(CREATE, {"input": good}, officer)
    assert body["data"]["createPurpose"]["issues"] == [
        {"field": "input.dataCategories.1", "code": "UNKNOWN_CODE"},
        {"field": "input.recipients.1", "code": "REQUIRED"},
    ]
    good["dataCategories"], good["recipients"] = ["user.contact.email"], ["Ads Ltd"]
    assert (await gql(CREATE, {"input": good}, officer))["data"]["createPurpose"]["__typename"] == (
        "PurposeSaved"
    )
    assert (await gql(CREATE, {"input": good}, officer))["data"]["createPurpose"]["code"] == (
        "CONFLICT"
    )
    for given, expected in (
        ({"id": "x"}, ("ValidationError", "INVALID_ID", "input.id")),
        ({"id": gid("Customer", uuid.uuid4())}, ("ValidationError", "INVALID_ID", "input.id")),
        ({"id": gid("Purpose", uuid.uuid4())}, ("NotFoundError", "NOT_FOUND", "input.id")),
    ):
        result = (await gql(UPDATE, {"input": given}, officer))["data"]["updatePurpose"]
        assert (result["__typename"], result["code"], result["field"]) == expected


# ------------------------------------------------------------------ the update rule


async def test_updating_a_purpose_keeps_what_is_omitted_and_clears_what_is_null(
    gql: GraphQLClient, officer: dict[str, str]
) -> None:
    purpose = await make_purpose("partners", Mechanism.OPT_IN, sale_or_sharing=True)
    quiet = await make_purpose("newsletter")
    pid = gid("Purpose", purpose.id)

    kept = (await gql(UPDATE, {"input": {"id": pid, "name": "Our partners"}}, officer))["data"]
    assert kept["updatePurpose"]["purpose"] == {
        "name": "Our partners",
        "description": "About partners.",
        "dataCategories": ["user.contact.email"],
        "recipients": ["Partner networks"],
        "currentVersion": 1,
    }
    cleared = await gql(
        UPDATE, {"input": {"id": pid, "description": None, "dataCategories": None}}, officer
    )
    assert cleared["data"]["updatePurpose"]["purpose"] == {
        "name": "Our partners",
        "description": "",
        "dataCategories": [],
        "recipients": ["Partner networks"],
        "currentVersion": 1,
    }
    # What cannot be empty refuses null, each on its path, and nothing changes.
    refused = await gql(
        UPDATE,
        {"input": {"id": pid, "name": None, "noticeText": None, "description": "x"}},
        officer,
    )
    assert refused["data"]["updatePurpose"]["issues"] == [
        {"field": "input.name", "code": "REQUIRED"},
        {"field": "input.noticeText", "code": "REQUIRED"},
    ]
    # A purpose that shares data keeps its recipients; one that does not may drop them.
    shared = await gql(UPDATE, {"input": {"id": pid, "recipients": None}}, officer)
    assert shared["data"]["updatePurpose"]["issues"] == [
        {"field": "input.recipients", "code": "REQUIRED"}
    ]
    after = await Purpose.get(id=purpose.id)
    assert (after.name, after.description, after.recipients) == (
        "Our partners",
        "",
        ["Partner networks"],
    )
    await service.update_purpose(SYSTEM, service.PurposeChange(quiet.id, recipients=["Mail house"]))
    emptied = await gql(
        UPDATE, {"input": {"id": gid("Purpose", quiet.id), "recipients": None}}, officer
    )
    assert emptied["data"]["updatePurpose"]["purpose"]["recipients"] == []


async def test_the_ledger_check_names_the_first_broken_entry(
    gql: GraphQLClient, vault: Vault, officer: dict[str, str], owner: asyncpg.Connection
) -> None:
    await make_purpose("newsletter")
    customer = (await make_customer(vault, email="chain@example.com")).customer_id
    for decision in (Decision.GRANTED, Decision.WITHDRAWN):
        await _record(vault, customer, "newsletter", decision)
    report = (
        "{ verifyConsentLedger { ok entriesChecked firstBrokenSequence firstBrokenId problem "
        "pendingEntries } }"
    )
    intact = (await gql(report, None, officer))["data"]["verifyConsentLedger"]
    assert intact == {
        "ok": True,
        "entriesChecked": 2,
        "firstBrokenSequence": None,
        "firstBrokenId": None,
        "problem": None,
        "pendingEntries": 0,
    }
    second = (await ConsentEntry.all().order_by("sequence"))[1]
    # What only the tables' owner could do (the application role may not).
    await owner.execute("ALTER TABLE consent_entries DISABLE TRIGGER consent_entries_append_only")
    try:
        await owner.execute(
            f"UPDATE consent_entries SET channel = 'app' WHERE sequence = {second.sequence}"
        )
    finally:
        await owner.execute(
            "ALTER TABLE consent_entries ENABLE TRIGGER consent_entries_append_only"
        )
    broken = (await gql(report, None, officer))["data"]["verifyConsentLedger"]
    assert broken == {
        "ok": False,
        "entriesChecked": 1,
        "firstBrokenSequence": second.sequence,
        "firstBrokenId": gid("ConsentEntry", second.id),
        "problem": "CONTENT_MISMATCH",
        "pendingEntries": 0,
    }


async def test_history_with_purposes_and_customer_costs_the_same_sql_for_1_or_10(
    gql: GraphQLClient, vault: Vault, officer: dict[str, str], sql: StatementRecorder
) -> None:
    for code in ("newsletter", "offers"):
        await make_purpose(code)
    customer = (await make_customer(vault, email="n1@example.com")).customer_id
    for number in range(10):
        code = "newsletter" if number % 2 else "offers"
        await _record(vault, customer, code, Decision.GRANTED if number < 2 else Decision.DENIED)
    query = (
        "query($id: ID!, $n: Int) { consentHistory(customerId: $id, first: $n) { totalCount "
        "nodes { purpose { code notices { version } } customer { id } } } }"
    )
    await gql("{ viewer { role } }", None, officer)
    counts = {}
    for size in (1, 10):
        with sql.recording():
            body = await gql(query, {"id": gid("Customer", customer), "n": size}, officer)
        assert len(body["data"]["consentHistory"]["nodes"]) == size
        counts[size] = sql.count
    assert counts[1] == counts[10], counts

"""Compiled plans answer exactly as ordinary execution does, in few statements.

Each document is sent twice: the first answer comes from ordinary execution (which then
compiles the document), the second from its plan; the two must be identical.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from cdlm.auth.settings import AuthSettings
from cdlm.consent import service as consent
from cdlm.consent.models import Decision
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.customers.events import EventIngest, ingest_events
from cdlm.graphql import plans
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.consent.test_consent import make_purpose
from tests.factories import bearer, gid, make_api_key, make_customer
from tests.support.sql_counter import StatementRecorder

PROFILE = (
    "profile { givenName familyName email phone birthDate "
    "address { line1 line2 city region postalCode country } }"
)
CONSENTS = (
    "consents { purposeCode permitted restricted decision byDefault noticeVersion decidedAt }"
)
EVENTS = "events(first: 3) { nodes { id type occurredAt amount currency properties } }"
C360 = (
    f"query($id: ID!) {{ customer(id: $id) {{ id lifecycleStage {PROFILE} "
    f"identities {{ kind namespace value }} {CONSENTS} {EVENTS} }} }}"
)
LIST = f"{{ customers(first: 50) {{ nodes {{ id {PROFILE} {CONSENTS} }} }} }}"

#: Name, document, variables (the first customer's id is added as ``id``), and the roles the
#: document is refused to (ordinary execution answers with errors, and no plan is made).
DOCUMENTS: list[tuple[str, str, dict[str, Any] | None, set[Role]]] = [
    ("360", C360, None, {Role.ANALYST}),  # analysts do not see consents
    ("list", LIST, None, {Role.ANALYST, Role.AGENT}),  # agents do not list customers
    (
        "aliases, fragments and typename",
        "query($id: ID!, $n: Int!) { a: customer(id: $id) { ...Who b: events(first: $n) "
        "{ pageInfo { hasNextPage hasPreviousPage startCursor endCursor } "
        "edges { cursor node { __typename id type } } } } "
        "b: customer(id: $id) { __typename quality { score completeness stored: storedScore } "
        "lineage { field sourceSystem sourceKind trust } } } "
        "fragment Who on Customer { id profile { email birthDate } ... on Customer "
        "{ profile { givenName } } }",
        {"n": 2},
        set(),
    ),
    (
        "filtered list with events by type",
        'query { customers(first: 5, filter: {sourceSystem: "crm"}) { pageInfo { hasNextPage } '
        'edges { node { id events(first: 2, filter: {type: "purchase"}) '
        "{ nodes { type properties } } } } } }",
        None,
        {Role.AGENT},
    ),
    (
        "events paged backwards, filtered by time from variables",
        "query($id: ID!, $f: EventFilter, $n: Int) { customer(id: $id) { id "
        "events(filter: $f, last: $n) { pageInfo { hasNextPage hasPreviousPage startCursor } "
        "nodes { id type occurredAt properties } } "
        "oldest: events(last: 1) { nodes { id occurredAt } } } }",
        {"f": {"occurredFrom": (clock.now() - timedelta(days=30)).isoformat()}, "n": 3},
        set(),
    ),
    (
        "customers paged backwards",
        "query { customers(last: 2) { pageInfo { hasNextPage hasPreviousPage } "
        "nodes { id lifecycleStage sourceSystems } } }",
        None,
        {Role.AGENT},
    ),
    (
        "lookup by identifier",
        'query { customerByIdentifier(kind: EMAIL, value: "ada0@example.com") '
        "{ id identities { kind value } lineage { field sourceKind } } }",
        None,
        {Role.ANALYST},  # a lookup by email re-identifies: not for analysts
    ),
]


@pytest.fixture
async def people(vault: Vault) -> list[uuid.UUID]:
    for code in ("newsletter", "analytics"):
        await make_purpose(code)
    ids = []
    for n in range(3):
        made = await make_customer(
            vault,
            given_name=f"Ada{n}",
            family_name="Lovelace",
            email=f"ada{n}@example.com",
            birth_date="1990-02-03",
            address_line1="1 High Street",
            city="Leeds",
            postal_code="LS1 1AA",
            country="GB",
            external_ids=[f"crm:{n}"],
        )
        ids.append(made.customer_id)
        await consent.record(
            SYSTEM,
            vault,
            consent.ConsentRecording(
                made.customer_id,
                [consent.Choice("newsletter", Decision.GRANTED, 1)],
                consent.Capture(consent.Method.FORM),
            ),
        )
        start = clock.now() - timedelta(days=5)
        await ingest_events(
            SYSTEM,
            vault,
            [
                EventIngest(
                    type="purchase" if k % 2 else "visit",
                    occurred_at=start + timedelta(hours=k),
                    source_system="shop",
                    customer_id=made.customer_id,
                    properties={"k": k},
                    external_id=f"{made.customer_id}-{k}",
                )
                for k in range(5)
            ],
        )
    return ids


def _has_content(data: Any) -> bool:
    """Whether an answer holds anything beyond nulls and empty lists (a plan compared with an
    empty answer would prove little)."""
    if isinstance(data, dict):
        return any(_has_content(v) for v in data.values())
    if isinstance(data, list):
        return any(_has_content(v) for v in data)
    return data is not None


def _without_request_ids(body: dict[str, Any]) -> dict[str, Any]:
    for error in body.get("errors", []):
        error.get("extensions", {}).pop("requestId", None)
    return body


def _variables(given: dict[str, Any] | None, people: list[uuid.UUID]) -> dict[str, Any]:
    return {"id": gid("Customer", people[0]), **(given or {})}


@pytest.mark.parametrize("role", [Role.ADMIN, Role.AGENT, Role.ANALYST])
async def test_a_plan_answers_exactly_as_ordinary_execution(
    gql: GraphQLClient,
    auth: AuthSettings,
    people: list[uuid.UUID],
    role: Role,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answered: list[str] = []
    run = plans.Planner.run

    async def spy(self: plans.Planner, plan: plans.Plan, *args: Any) -> dict[str, Any]:
        data = await run(self, plan, *args)
        answered.append("plan")
        return data

    monkeypatch.setattr(plans.Planner, "run", spy)
    headers = bearer(await make_api_key(auth, role))
    for name, document, given, refused_to in DOCUMENTS:
        # A document text of its own for this test, so the first answer is ordinary here.
        text = f"{document} # {uuid.uuid4()}"
        variables = _variables(given, people)
        first = _without_request_ids(await gql(text, variables, headers))
        # Each document is valid: only a role it is refused to gets errors (and then the
        # ordinary executor answers again, unplanned).
        refused = role in refused_to
        assert ("errors" in first) is refused, (name, first.get("errors"))
        codes = {error["extensions"]["code"] for error in first.get("errors", [])}
        assert codes <= {"FORBIDDEN"}, first["errors"]
        if not refused:
            assert _has_content(first["data"]), name
        before = len(answered)
        second = _without_request_ids(await gql(text, variables, headers))
        assert second == first, name
        planned = len(answered) > before
        assert planned is not refused, (name, first.get("errors"))


async def test_the_360_and_a_page_of_50_take_at_most_3_statements_with_authentication(
    gql: GraphQLClient,
    auth: AuthSettings,
    vault: Vault,
    people: list[uuid.UUID],
    sql: StatementRecorder,
) -> None:
    for n in range(47):
        await make_customer(vault, email=f"more{n}@example.com", given_name="M")
    headers = bearer(await make_api_key(auth, Role.ADMIN))
    for document in (C360, LIST):
        counts = []
        for _ in range(3):  # ordinary, then planned twice (the key is known by then)
            with sql.recording():
                body = await gql(document, {"id": gid("Customer", people[0])}, headers)
            assert "errors" not in body
            counts.append(sql.count)
        assert counts[-1] <= 3, (document, sql.statements)
        assert not any("pg_advisory" in s for s in sql.statements)  # no lock on a read
        assert not any("RESET ALL" in s or "unlock_all" in s for s in sql.statements)


async def test_a_plan_abandoned_midway_is_answered_and_audited_once(
    gql: GraphQLClient, auth: AuthSettings, people: list[uuid.UUID]
) -> None:
    from tests.support.audit import read_records

    headers = bearer(await make_api_key(auth, Role.ADMIN))
    document = f"{C360} # {uuid.uuid4()}"
    await gql(document, {"id": gid("Customer", people[0])}, headers)
    # A bad id: the plan's root resolver refuses it, the ordinary executor reports it.
    bad = _without_request_ids(await gql(document, {"id": "not-an-id"}, headers))
    fresh = f"{C360} # {uuid.uuid4()}"
    ordinary = _without_request_ids(await gql(fresh, {"id": "not-an-id"}, headers))
    assert bad == ordinary
    assert bad["errors"]
    records = await read_records("customer.read", people[0])
    assert len(records) == 1

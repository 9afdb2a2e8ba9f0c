"""Segments: each kind of condition, groups, consent through the one check, who is never a
member, validation listing every problem, paging cost, roles and node lookup."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from cdlm.analytics.segments import service
from cdlm.auth.settings import AuthSettings
from cdlm.consent import service as consent
from cdlm.consent.models import Decision, Mechanism
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.core.vocabulary import LawfulBasis, LifecycleStage
from cdlm.customers.events import EventIngest, store_events
from cdlm.customers.models import Customer, CustomerAttributes
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key, make_customer
from tests.support.sql_counter import StatementRecorder

PREVIEW = (
    "query($d: SegmentConditionInput!) { segmentPreview(definition: $d) { __typename "
    "... on SegmentSize { matching estimated exact consentChecked } "
    "... on ValidationError { field issues { field code } } } }"
)
CREATE = (
    "mutation($input: CreateSegmentInput!) { createSegment(input: $input) { __typename "
    "... on SegmentSaved { segment { id name description size { estimated } "
    "definition { all { attribute { attribute in } consent { purpose } } } } } "
    "... on UserError { code field } ... on ValidationError { issues { field code } } } }"
)
UPDATE = (
    "mutation($input: UpdateSegmentInput!) { updateSegment(input: $input) { __typename "
    "... on SegmentSaved { segment { name description } } "
    "... on UserError { code field } ... on ValidationError { issues { field code } } } }"
)
MEMBERS = (
    "query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) { segment(id: $id)"
    " { name members(first: $first, after: $after, last: $last, before: $before) "
    "{ nodes { id } pageInfo { hasNextPage hasPreviousPage endCursor startCursor } } } }"
)


@pytest.fixture
async def analyst(auth: AuthSettings) -> dict[str, str]:
    return bearer(await make_api_key(auth, Role.ANALYST))


async def customer(
    vault: Vault, stage: LifecycleStage = LifecycleStage.ACTIVE, **attributes: Any
) -> uuid.UUID:
    made = await make_customer(vault, stage=stage, external_ids=[f"crm:{uuid.uuid4()}"])
    if attributes:
        await CustomerAttributes.update_or_create(
            defaults={"derived_at": clock.now(), **attributes}, customer_id=made.customer_id
        )
    return made.customer_id


async def events(vault: Vault, customer_id: uuid.UUID, *items: tuple[str, int, str | None]) -> None:
    """Events of (type, days ago, amount in EUR or None)."""
    now = clock.now()
    result, _ = await store_events(
        vault,
        [
            EventIngest(
                type=kind,
                occurred_at=now - timedelta(days=days),
                source_system="shop",
                customer_id=customer_id,
                amount=Decimal(amount) if amount else None,
                currency="EUR" if amount else None,
            )
            for kind, days, amount in items
        ],
    )
    assert not result.rejected


async def members(raw: dict[str, Any]) -> set[uuid.UUID]:
    definition = await service.check_definition(raw, "definition")
    page = await service.members(definition, service.MembersPage(100))
    return set(page.ids)


async def test_attribute_score_stage_and_quality_conditions(vault: Vault) -> None:
    de = await customer(vault, country="DE", churn_risk=0.8, rfm_recency=5)
    fr = await customer(vault, LifecycleStage.LEAD, country="FR", churn_risk=0.2, rfm_recency=1)
    bare = await customer(vault, LifecycleStage.CHURNED)
    country = {"attribute": {"attribute": "attributes.country", "equals": "DE"}}
    assert await members(country) == {de}
    assert await members(
        {"attribute": {"attribute": "attributes.country", "in": ["DE", "FR"]}}
    ) == {de, fr}
    assert await members({"score": {"attribute": "churnRisk", "atLeast": 0.5}}) == {de}
    assert await members({"score": {"attribute": "rfm.r", "in": [1, 2]}}) == {fr}
    assert await members({"lifecycleStage": {"in": ["lead", "churned"]}}) == {fr, bare}
    await Customer.filter(id=bare).update(quality_score=0.9)
    assert await members({"qualityScore": {"atLeast": 0.85}}) == {bare}
    # NOT holds for a customer without the attribute.
    assert await members({"not": country}) == {fr, bare}


async def test_event_conditions(vault: Vault) -> None:
    recent = await customer(vault)
    old = await customer(vault)
    none = await customer(vault)
    await events(vault, recent, ("purchase", 3, "40.00"), ("purchase", 10, "70.00"))
    await events(vault, old, ("purchase", 200, "500.00"), ("visit", 1, None))
    did = {"event": {"type": "purchase", "withinDays": 30}}
    assert await members(did) == {recent}
    assert await members({"event": {"type": "purchase", "withinDays": 30, "did": False}}) == {
        old,
        none,
    }
    assert await members({"eventCount": {"type": "purchase", "withinDays": 365, "atLeast": 2}}) == {
        recent
    }
    assert await members({"eventCount": {"type": "purchase", "withinDays": 365, "atMost": 1}}) == {
        old,
        none,
    }
    amount = {"type": "purchase", "withinDays": 365, "currency": "EUR"}
    assert await members({"eventAmount": {**amount, "atLeast": "100"}}) == {recent, old}
    assert await members({"eventAmount": {**amount, "atLeast": "100", "atMost": "200"}}) == {recent}
    assert await members({"eventAmount": {**amount, "currency": "USD", "atMost": "0"}}) == {
        recent,
        old,
        none,
    }


async def test_groups(vault: Vault) -> None:
    a = await customer(vault, country="DE", age_band="25-34")
    b = await customer(vault, country="DE", age_band="35-44")
    c = await customer(vault, country="FR", age_band="25-34")
    de = {"attribute": {"attribute": "attributes.country", "equals": "DE"}}
    young = {"attribute": {"attribute": "attributes.ageBand", "equals": "25-34"}}
    assert await members({"all": [de, young]}) == {a}
    assert await members({"any": [de, young]}) == {a, b, c}
    assert await members({"all": [de, {"not": young}]}) == {b}
    assert await members({"not": {"any": [de, young]}}) == set()


async def _purpose(code: str) -> None:
    await consent.create_purpose(
        SYSTEM,
        consent.PurposeDefinition(
            code=code,
            name=code.title(),
            description="Newsletters.",
            lawful_basis=LawfulBasis.CONSENT,
            mechanism=Mechanism.OPT_IN,
            data_use="marketing.communications.email",
            data_categories=["user.contact.email"],
            sale_or_sharing=False,
            notice_text="We send newsletters.",
        ),
    )


async def _decide(vault: Vault, customer_id: uuid.UUID, code: str, decision: Decision) -> None:
    await consent.record(
        SYSTEM,
        vault,
        consent.ConsentRecording(
            customer_id,
            [consent.Choice(code, decision, 1 if decision is Decision.GRANTED else None)],
            consent.Capture(consent.Method.API),
        ),
    )


async def test_consent_is_applied_through_the_one_check(
    vault: Vault, gql: GraphQLClient, analyst: dict[str, str]
) -> None:
    await _purpose("newsletter")
    kept = await customer(vault, country="DE")
    withdrawn = await customer(vault, country="DE")
    never = await customer(vault, country="DE")
    for who in (kept, withdrawn):
        await _decide(vault, who, "newsletter", Decision.GRANTED)
    await _decide(vault, withdrawn, "newsletter", Decision.WITHDRAWN)
    definition = {
        "all": [
            {"attribute": {"attribute": "attributes.country", "equals": "DE"}},
            {"consent": {"purpose": "newsletter"}},
        ]
    }
    assert await members(definition) == {kept}
    assert never not in await members(definition)
    body = await gql(PREVIEW, {"d": definition}, analyst)
    assert body["data"]["segmentPreview"] == {
        "__typename": "SegmentSize",
        "matching": 3,
        "estimated": 1,
        "exact": True,
        "consentChecked": 3,
    }


async def test_restricted_erased_and_merged_customers_are_never_members(vault: Vault) -> None:
    live = await customer(vault, country="DE")
    restricted = await customer(vault, country="DE")
    erased = await customer(vault, country="DE")
    merged = await customer(vault, country="DE")
    now = clock.now()
    await Customer.filter(id=restricted).update(restricted_at=now)
    await Customer.filter(id=erased).update(erased_at=now)
    await Customer.filter(id=merged).update(merged_into_id=live)
    de = {"attribute": {"attribute": "attributes.country", "equals": "DE"}}
    assert await members(de) == {live}
    assert await members({"not": de}) == set()
    size = await service.size(await service.check_definition(de, "definition"))
    assert size.matching == size.estimated == 1


async def test_a_definition_gets_every_problem_on_its_path(
    gql: GraphQLClient, analyst: dict[str, str]
) -> None:
    bad = {
        "all": [
            {"attribute": {"attribute": "attributes.shoeSize", "equals": "44"}},
            {"score": {"attribute": "churnRisk", "atLeast": 0.9, "atMost": 0.1}},
            {"event": {"type": "never.sent", "withinDays": 30}},
            {"eventCount": {"type": "Bad Type", "withinDays": 0, "atLeast": 1}},
            {"consent": {"purpose": "no.such.purpose"}},
            {"any": [{"consent": {"purpose": "no.such.purpose"}}]},
            {},
            {"lifecycleStage": {"in": ["LEAD"]}, "qualityScore": {"atLeast": 0.5}},
            # Consent in a nested `all` cannot be applied after the statement: refused.
            {"all": [{"consent": {"purpose": "no.such.purpose"}}]},
            # An amount finer than a cent matches nothing stored and cannot be sent to SQL.
            {
                "eventAmount": {
                    "type": "purchase",
                    "withinDays": 5,
                    "currency": "EUR",
                    "atLeast": "1E-16384",
                }
            },
        ]
    }
    body = await gql(PREVIEW, {"d": bad}, analyst)
    result = body["data"]["segmentPreview"]
    assert result["__typename"] == "ValidationError"
    found = {(i["field"], i["code"]) for i in result["issues"]}
    assert found == {
        ("definition.all.0.attribute.attribute", "UNKNOWN_CODE"),
        ("definition.all.1.score.atMost", "VALIDATION"),
        ("definition.all.2.event.type", "UNKNOWN_CODE"),
        ("definition.all.3.eventCount.type", "INVALID_FORMAT"),
        ("definition.all.3.eventCount.withinDays", "IMPLAUSIBLE"),
        ("definition.all.4.consent.purpose", "UNKNOWN_CODE"),
        ("definition.all.5.any.0.consent", "VALIDATION"),
        ("definition.all.5.any.0.consent.purpose", "UNKNOWN_CODE"),
        ("definition.all.6", "REQUIRED"),
        ("definition.all.7", "VALIDATION"),
        ("definition.all.8.all.0.consent", "VALIDATION"),
        ("definition.all.8.all.0.consent.purpose", "UNKNOWN_CODE"),
        ("definition.all.9.eventAmount.atLeast", "INVALID_FORMAT"),
    }
    body = await gql(CREATE, {"input": {"name": " ", "definition": {"any": []}}}, analyst)
    issues = {(i["field"], i["code"]) for i in body["data"]["createSegment"]["issues"]}
    assert issues == {("input.name", "REQUIRED"), ("input.definition.any", "REQUIRED")}


async def test_create_update_and_read_a_segment(
    vault: Vault, gql: GraphQLClient, analyst: dict[str, str], sql: StatementRecorder
) -> None:
    await _purpose("newsletter")
    ids = sorted([await customer(vault, country="DE") for _ in range(7)])
    for who in ids:
        await _decide(vault, who, "newsletter", Decision.GRANTED)
    definition = {
        "all": [
            {"attribute": {"attribute": "attributes.country", "in": ["DE"]}},
            {"consent": {"purpose": "newsletter"}},
        ]
    }
    created = await gql(
        CREATE, {"input": {"name": "German readers", "definition": definition}}, analyst
    )
    segment = created["data"]["createSegment"]["segment"]
    assert segment["size"] == {"estimated": 7}
    assert segment["definition"]["all"][1]["consent"] == {"purpose": "newsletter"}
    again = await gql(
        CREATE, {"input": {"name": "German readers", "definition": definition}}, analyst
    )
    assert again["data"]["createSegment"]["code"] == "CONFLICT"

    # Pages both ways, keyset on the customer id.
    page = await gql(MEMBERS, {"id": segment["id"], "first": 3}, analyst)
    first = page["data"]["segment"]["members"]
    assert [n["id"] for n in first["nodes"]] == [gid("Customer", i) for i in ids[:3]]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = await gql(
        MEMBERS,
        {"id": segment["id"], "first": 10, "after": first["pageInfo"]["endCursor"]},
        analyst,
    )
    assert [n["id"] for n in rest["data"]["segment"]["members"]["nodes"]] == [
        gid("Customer", i) for i in ids[3:]
    ]
    back = await gql(MEMBERS, {"id": segment["id"], "last": 2}, analyst)
    assert [n["id"] for n in back["data"]["segment"]["members"]["nodes"]] == [
        gid("Customer", i) for i in ids[-2:]
    ]

    # The statements of a page do not grow with its size.
    counts = []
    for size in (2, 6):
        with sql.recording():
            await gql(MEMBERS, {"id": segment["id"], "first": size}, analyst)
        counts.append(sql.count)
    assert counts[0] == counts[1]

    # Partial update: omitted keeps, null clears the description, null name is refused.
    sid = segment["id"]
    changed = await gql(
        UPDATE, {"input": {"id": sid, "description": "For the newsletter"}}, analyst
    )
    assert changed["data"]["updateSegment"]["segment"] == {
        "name": "German readers",
        "description": "For the newsletter",
    }
    cleared = await gql(UPDATE, {"input": {"id": sid, "description": None}}, analyst)
    assert cleared["data"]["updateSegment"]["segment"]["description"] == ""
    refused = await gql(UPDATE, {"input": {"id": sid, "name": None}}, analyst)
    assert refused["data"]["updateSegment"]["issues"] == [
        {"field": "input.name", "code": "REQUIRED"}
    ]
    missing = await gql(UPDATE, {"input": {"id": gid("Segment", uuid.uuid4())}}, analyst)
    assert missing["data"]["updateSegment"]["code"] == "NOT_FOUND"


async def test_roles_and_node_lookup(
    vault: Vault, gql: GraphQLClient, auth: AuthSettings, analyst: dict[str, str]
) -> None:
    definition = {"lifecycleStage": {"in": ["ACTIVE"]}}
    created = await gql(CREATE, {"input": {"name": "Active", "definition": definition}}, analyst)
    sid = created["data"]["createSegment"]["segment"]["id"]
    steward = bearer(await make_api_key(auth, Role.STEWARD))
    agent = bearer(await make_api_key(auth, Role.AGENT))
    refused = await gql(CREATE, {"input": {"name": "Other", "definition": definition}}, steward)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    node = "query($id: ID!) { node(id: $id) { __typename ... on Segment { name } } }"
    found = await gql(node, {"id": sid}, steward)
    assert found["data"]["node"] == {"__typename": "Segment", "name": "Active"}
    denied = await gql(node, {"id": sid}, agent)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    unknown = await gql(node, {"id": gid("Segment", uuid.uuid4())}, steward)
    assert unknown["data"]["node"] is None
    listed = await gql(
        '{ segments(filter: {nameContains: "act"}, last: 5) { totalCount nodes { name } } }',
        headers=steward,
    )
    assert listed["data"]["segments"] == {"totalCount": 1, "nodes": [{"name": "Active"}]}

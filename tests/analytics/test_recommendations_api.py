"""Customer.recommendations and Customer.nextBestAction: hand-computed scores and their
order, purchased items left out, the cold start, every refusal, the action table, roles,
bad input and the statements of a page."""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest

from cdlm.analytics.models import AnalyticsRun, AnalyticsRunStatus
from cdlm.analytics.recommendations import rules
from cdlm.analytics.recommendations.models import ItemModel, ItemNeighbour, PopularItem
from cdlm.auth.settings import AuthSettings
from cdlm.consent.models import Decision, Mechanism
from cdlm.core import clock
from cdlm.core.roles import Role
from cdlm.customers.models import Customer, CustomerAttributes
from cdlm.vault.service import Vault
from tests.analytics.recommendations_support import NOW, decide, interaction, make_purpose, store
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key, make_customer
from tests.support.sql_counter import StatementRecorder

PERSONALIZED = """
query ($id: ID!, $first: Int) {
  customer(id: $id) {
    recommendations(first: $first) {
      permitted refusal purposeCode reason basis modelBuiltAt
      items { itemId score basis becauseItemId }
    }
    nextBestAction {
      permitted refusal purposeCode action reason scores { score value } item { itemId } scoredAt
    }
  }
}
"""
PAGE = """
query ($n: Int) {
  customers(first: $n) { nodes {
    recommendations { basis items { itemId becauseItemId } }
    nextBestAction { action item { itemId } }
  } }
}
"""
#: y's age before the latest interaction is 10 days: its influence is 0.5^(10/30).
RECENCY = 0.5 ** (10 / 30)


async def _model() -> ItemModel:
    """x -> (y 0.8, z 0.5), y -> (x 0.8, w 0.3); popular: x 9, q 5, z 4."""
    run = await AnalyticsRun.create(
        id=uuid.uuid4(),
        status=AnalyticsRunStatus.FINISHED,
        as_of=NOW,
        started_at=NOW,
        purchase_types=["purchase"],
        currency="EUR",
    )
    for item, neighbour, similarity, rank in (
        ("x", "y", 0.8, 1),
        ("x", "z", 0.5, 2),
        ("y", "x", 0.8, 1),
        ("y", "w", 0.3, 2),
    ):
        await ItemNeighbour.create(
            item_id=item, neighbour_id=neighbour, similarity=similarity, customers=2, rank=rank
        )
    for item, score, rank in (("x", 9.0, 1), ("q", 5.0, 2), ("z", 4.0, 3)):
        await PopularItem.create(item_id=item, score=score, customers=3, rank=rank)
    return await ItemModel.create(
        id=uuid.uuid4(), run=run, as_of=NOW, built_at=NOW, purpose="personalization"
    )


async def _customer(vault: Vault, name: str, decision: Decision | None = Decision.GRANTED) -> Any:
    customer = (await make_customer(vault, email=f"{name}@example.com")).customer_id
    if decision is not None:
        await decide(vault, customer, decision)
    return customer


async def _score(customer: uuid.UUID, **values: Any) -> None:
    if await CustomerAttributes.exists(customer_id=customer):
        await CustomerAttributes.filter(customer_id=customer).update(**values, scored_at=NOW)
    else:
        await CustomerAttributes.create(
            customer_id=customer, derivation={}, scored_at=NOW, **values
        )


async def _ask(
    gql: GraphQLClient, headers: dict[str, str], customer: uuid.UUID, first: int | None = None
) -> dict[str, Any]:
    variables: dict[str, Any] = {"id": gid("Customer", customer)}
    if first is not None:
        variables["first"] = first
    body = await gql(PERSONALIZED, variables, headers)
    assert "errors" not in body, body
    found: dict[str, Any] = body["data"]["customer"]
    return found


@pytest.fixture
async def analyst(auth: AuthSettings) -> dict[str, str]:
    return bearer(await make_api_key(auth, Role.ANALYST))


async def test_recommendations_sum_recency_weighted_similarities_and_skip_bought_items(
    gql: GraphQLClient, vault: Vault, analyst: dict[str, str]
) -> None:
    built = await _model()
    with clock.frozen_at(NOW):
        await make_purpose()
        ada = await _customer(vault, "ada")
        await store(vault, [interaction(ada, "x", days_ago=1), interaction(ada, "y", "view", 11)])
        await _score(
            ada, churn_risk=0.2, p_alive=0.9, rfm_recency=5, rfm_frequency=4, rfm_monetary=3
        )
        found = await _ask(gql, analyst, ada)
    recommended = found["recommendations"]
    assert recommended["permitted"] is True
    assert recommended["refusal"] is None
    assert recommended["purposeCode"] == "personalization"
    assert recommended["basis"] == "ITEM_SIMILARITY"
    assert recommended["modelBuiltAt"] == built.built_at.isoformat()
    # From x (bought, weight 1, the latest): y 0.8, z 0.5 (x -> x is not a neighbour).
    # From y (viewed, weight 0.25, 10 days older): x is bought, w 0.3 x 0.25 x 0.5^(1/3).
    # Then the popular items not bought and not already listed: q (x is bought, z listed).
    items = [
        (i["itemId"], round(i["score"], 9), i["basis"], i["becauseItemId"])
        for i in recommended["items"]
    ]
    assert items == [
        ("y", 0.8, "ITEM_SIMILARITY", "x"),  # viewed, not bought: may come back
        ("z", 0.5, "ITEM_SIMILARITY", "x"),
        ("w", round(0.3 * 0.25 * RECENCY, 9), "ITEM_SIMILARITY", "y"),
        ("q", 5.0, "POPULARITY", None),
    ]
    assert math.isclose(RECENCY, 0.7937005259840998)
    action = found["nextBestAction"]
    assert action["permitted"] is True
    assert action["action"] == "UPSELL"
    assert action["item"] == {"itemId": "y"}
    assert action["reason"] == rules.ACTION_RULES[2].reason
    assert action["scores"] == [
        {"score": "CHURN_RISK", "value": 0.2},
        {"score": "P_ALIVE", "value": 0.9},
        {"score": "RFM_FREQUENCY", "value": 4.0},
    ]
    assert action["scoredAt"] == NOW.isoformat()
    with clock.frozen_at(NOW):
        two = await _ask(gql, analyst, ada, 2)
    assert [i["itemId"] for i in two["recommendations"]["items"]] == ["y", "z"]


async def test_a_cold_start_gets_popular_items_and_says_so(
    gql: GraphQLClient, vault: Vault, analyst: dict[str, str]
) -> None:
    await _model()
    with clock.frozen_at(NOW):
        await make_purpose()
        new = await _customer(vault, "new")
        unknown_items = await _customer(vault, "other")
        await store(
            vault, [interaction(unknown_items, "q"), interaction(unknown_items, "n", "view")]
        )
        cold = await _ask(gql, analyst, new)
        bought_q = await _ask(gql, analyst, unknown_items)
    assert cold["recommendations"]["basis"] == "POPULARITY"
    assert cold["recommendations"]["reason"].startswith("Cold start")
    assert [
        (i["itemId"], i["score"], i["basis"], i["becauseItemId"])
        for i in cold["recommendations"]["items"]
    ] == [
        ("x", 9.0, "POPULARITY", None),
        ("q", 5.0, "POPULARITY", None),
        ("z", 4.0, "POPULARITY", None),
    ]
    assert [i["itemId"] for i in bought_q["recommendations"]["items"]] == ["x", "z"]
    # Never scored: no action, and it says why.
    assert cold["nextBestAction"]["action"] == "NONE"
    assert cold["nextBestAction"]["reason"] == rules.UNSCORED
    assert cold["nextBestAction"]["scores"] == []


async def test_without_a_model_the_answer_says_none_was_built(
    gql: GraphQLClient, vault: Vault, analyst: dict[str, str]
) -> None:
    with clock.frozen_at(NOW):
        await make_purpose()
        ada = await _customer(vault, "ada")
        found = await _ask(gql, analyst, ada)
    assert found["recommendations"]["permitted"] is True
    assert found["recommendations"]["items"] == []
    assert found["recommendations"]["modelBuiltAt"] is None
    assert found["recommendations"]["reason"].startswith("No item model yet")


async def _withdrawn(vault: Vault, customer: uuid.UUID) -> None:
    await decide(vault, customer, Decision.GRANTED)
    await decide(vault, customer, Decision.WITHDRAWN)


@pytest.mark.parametrize(
    ("mechanism", "decision", "restricted", "refusal"),
    [
        (None, None, False, "PURPOSE_UNDEFINED"),
        (Mechanism.OPT_IN, None, False, "NO_CONSENT"),
        (Mechanism.OPT_IN, Decision.DENIED, False, "CONSENT_DENIED"),
        (Mechanism.OPT_IN, Decision.WITHDRAWN, False, "CONSENT_WITHDRAWN"),
        (Mechanism.OPT_OUT, Decision.DENIED, False, "OBJECTED"),
        (Mechanism.OPT_IN, Decision.GRANTED, True, "RESTRICTED"),
    ],
)
async def test_both_say_why_when_the_purpose_does_not_permit(
    gql: GraphQLClient,
    vault: Vault,
    analyst: dict[str, str],
    mechanism: Mechanism | None,
    decision: Decision | None,
    restricted: bool,
    refusal: str,
) -> None:
    await _model()
    with clock.frozen_at(NOW):
        if mechanism is not None:
            await make_purpose(mechanism)
        ada = await _customer(vault, "ada", None)
        await store(vault, [interaction(ada, "x")])
        await _score(ada, churn_risk=0.9, rfm_monetary=5)
        if decision is Decision.WITHDRAWN:
            await _withdrawn(vault, ada)
        elif decision is not None:
            await decide(vault, ada, decision)
        if restricted:
            await Customer.filter(id=ada).update(restricted_at=NOW)
        found = await _ask(gql, analyst, ada)
    reason = rules.REFUSAL_REASONS[rules.Refusal[refusal]]
    assert found["recommendations"] == {
        "permitted": False,
        "refusal": refusal,
        "purposeCode": "personalization",
        "reason": reason,
        "basis": None,
        "modelBuiltAt": None,
        "items": [],
    }
    assert found["nextBestAction"] == {
        "permitted": False,
        "refusal": refusal,
        "purposeCode": "personalization",
        "action": None,
        "reason": reason,
        "scores": [],
        "item": None,
        "scoredAt": None,
    }


async def test_an_opt_out_purpose_permits_until_the_customer_opts_out(
    gql: GraphQLClient, vault: Vault, analyst: dict[str, str]
) -> None:
    await _model()
    with clock.frozen_at(NOW):
        await make_purpose(Mechanism.OPT_OUT)
        ada = await _customer(vault, "ada", None)
        await _score(ada, churn_risk=0.8, rfm_monetary=4, p_alive=0.2)
        found = await _ask(gql, analyst, ada)
    assert found["recommendations"]["permitted"] is True
    assert found["nextBestAction"]["action"] == "WIN_BACK"
    assert found["nextBestAction"]["scores"] == [
        {"score": "CHURN_RISK", "value": 0.8},
        {"score": "RFM_MONETARY", "value": 4.0},
    ]


S = rules.Score


@pytest.mark.pure
@pytest.mark.parametrize(
    ("scores", "has_item", "action", "used"),
    [
        ({S.CHURN_RISK: 0.7, S.RFM_MONETARY: 4}, False, rules.Action.WIN_BACK, 2),
        ({S.CHURN_RISK: 0.69, S.RFM_MONETARY: 4}, False, rules.Action.RETAIN, 2),
        ({S.CHURN_RISK: 0.9, S.RFM_MONETARY: 3}, False, rules.Action.RETAIN, 2),
        ({S.CHURN_RISK: 0.4, S.RFM_MONETARY: 3, S.P_ALIVE: 0.9}, True, rules.Action.RETAIN, 2),
        (
            {S.CHURN_RISK: 0.39, S.P_ALIVE: 0.7, S.RFM_FREQUENCY: 3},
            True,
            rules.Action.UPSELL,
            3,
        ),
        # The same without a recommended item: no upsell, and frequent buyers are not nurtured.
        ({S.CHURN_RISK: 0.39, S.P_ALIVE: 0.7, S.RFM_FREQUENCY: 3}, False, rules.Action.NONE, 6),
        ({S.CHURN_RISK: 0.1, S.P_ALIVE: 0.5, S.RFM_FREQUENCY: 2}, True, rules.Action.NURTURE, 2),
        ({S.CHURN_RISK: 0.9, S.RFM_MONETARY: 2, S.P_ALIVE: 0.1}, True, rules.Action.NONE, 6),
        ({S.RFM_MONETARY: 5}, True, rules.Action.NONE, 6),  # no churn risk: no rule can hold
    ],
)
def test_the_next_best_action_table(
    scores: dict[rules.Score, float], has_item: bool, action: rules.Action, used: int
) -> None:
    decided = rules.next_action(scores, has_item)
    assert decided.action is action
    assert len(decided.scores) == used
    assert all(decided.scores[s] == scores.get(s) for s in decided.scores)
    assert decided.wants_item is (action is rules.Action.UPSELL)


@pytest.mark.pure
def test_never_scored_is_no_action_with_its_reason() -> None:
    assert rules.next_action(None, True) == rules.NextAction(
        rules.Action.NONE, rules.UNSCORED, {}, False
    )
    empty = rules.next_action(dict.fromkeys(rules.Score), True)
    assert (empty.action, empty.reason) == (rules.Action.NONE, rules.UNSCORED)


async def test_roles_as_for_analytics(gql: GraphQLClient, vault: Vault, auth: AuthSettings) -> None:
    with clock.frozen_at(NOW):
        await make_purpose()
        ada = await _customer(vault, "ada")
    variables = {"id": gid("Customer", ada)}
    anonymous = await gql(PERSONALIZED, variables)
    assert [e["extensions"]["code"] for e in anonymous["errors"]] == ["UNAUTHENTICATED"]
    for role in (Role.AGENT, Role.INGEST):
        body = await gql(PERSONALIZED, variables, bearer(await make_api_key(auth, role)))
        assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}, role
    for role in (Role.ANALYST, Role.STEWARD, Role.PRIVACY_OFFICER, Role.ADMIN):
        body = await gql(PERSONALIZED, variables, bearer(await make_api_key(auth, role)))
        assert body["data"]["customer"]["recommendations"]["permitted"] is True, role


@pytest.mark.parametrize("first", [0, 51, -1])
async def test_first_outside_1_to_50_is_refused(
    gql: GraphQLClient, vault: Vault, analyst: dict[str, str], first: int
) -> None:
    with clock.frozen_at(NOW):
        await make_purpose()
        ada = await _customer(vault, "ada")
        body = await gql(PERSONALIZED, {"id": gid("Customer", ada), "first": first}, analyst)
    [error] = body["errors"]
    assert error["path"] == ["customer", "recommendations"]
    assert error["extensions"]["field"] == "first"
    assert "between 1 and 50" in error["message"]


async def test_a_page_of_customers_costs_the_same_statements_as_one(
    gql: GraphQLClient, vault: Vault, analyst: dict[str, str], sql: StatementRecorder
) -> None:
    await _model()
    with clock.frozen_at(NOW):
        await make_purpose()
        people = [await _customer(vault, f"p{n}") for n in range(5)]
        refused = await _customer(vault, "refused", Decision.DENIED)
        for n, person in enumerate(people):
            await store(vault, [interaction(person, "x"), interaction(person, "q", "view", 2)])
            await _score(person, churn_risk=0.1, p_alive=0.9, rfm_frequency=3 + n % 2)
        await gql(PAGE, {"n": 1}, analyst)  # the key's first use is looked up once
        counts = {}
        for size in (2, 6):
            with sql.recording():
                body = await gql(PAGE, {"n": size}, analyst)
            nodes = body["data"]["customers"]["nodes"]
            assert len(nodes) == size, body
            counts[size] = sql.count
    assert counts[2] == counts[6], sql.statements
    by_action = {n["nextBestAction"]["action"] for n in nodes}
    assert by_action == {"UPSELL", None}  # the refused customer gets no action
    assert refused is not None
    upsold = [n for n in nodes if n["nextBestAction"]["action"] == "UPSELL"]
    assert all(n["nextBestAction"]["item"] == {"itemId": "y"} for n in upsold)

"""``feedbackSentiment``: per period and channel, exact counts, averages, NPS and CSAT on a small
fixture; restricted, erased and merged-away customers left out; roles and bad bounds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cdlm.auth.settings import AuthSettings
from cdlm.core.roles import Role
from cdlm.customers.models import Customer, Event
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, make_api_key, make_customer

QUERY = """
query($input: FeedbackSentimentInput!) {
  feedbackSentiment(input: $input) {
    __typename
    ... on ValidationError { message issues { field code message } }
    ... on FeedbackSentiment {
      feedbackTypes
      points {
        periodStart channel feedback scored averageSentiment positive neutral negative
        npsAnswers promoters passives detractors nps csatAnswers csatSatisfied csatShare
        csatAverage
      }
    }
  }
}
"""
MONDAY = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday


async def _event(
    customer: uuid.UUID,
    day: int,
    channel: str = "web",
    type_: str = "review",
    sentiment: float | None = None,
    nps: int | None = None,
    csat: int | None = None,
    hour: int = 10,
) -> None:
    at = MONDAY + timedelta(days=day, hours=hour)
    await Event.create(
        id=uuid.uuid4(),
        customer_id=customer,
        type=type_,
        channel=channel,
        occurred_at=at,
        received_at=at,
        source_system="surveys",
        sentiment=sentiment,
        nps=nps,
        csat=csat,
    )


@pytest.fixture
async def fixture(vault: Vault) -> None:
    a, b, restricted, erased, merged = [
        (await make_customer(vault, email=f"{name}@example.com")).customer_id
        for name in ("a", "b", "restricted", "erased", "merged")
    ]
    # Day 0, web.
    await _event(a, 0, sentiment=0.6, nps=10)
    await _event(a, 0, type_="survey_answer", nps=9, csat=5)
    await _event(b, 0, sentiment=0.05, nps=6, csat=4)  # positive from 0.05
    await _event(b, 0, type_="support_message", sentiment=-0.05)  # negative from -0.05
    await _event(b, 0, type_="social_mention", sentiment=0.0, csat=2)
    # Day 0, store.
    await _event(a, 0, "store", sentiment=-0.7, nps=7)
    # Day 1, web.
    await _event(b, 1, sentiment=0.9, hour=23)
    # Left out: another type, the end bound, and customers that may not be analysed.
    await _event(a, 0, type_="purchase", sentiment=None)
    await _event(a, 2, sentiment=-1.0, hour=0)  # exactly `to`
    for other in (restricted, erased, merged):
        await _event(other, 0, sentiment=1.0, nps=0, csat=1)
    now = datetime.now(UTC)
    await Customer.filter(id=restricted).update(restricted_at=now)
    await Customer.filter(id=erased).update(erased_at=now)
    await Customer.filter(id=merged).update(merged_into_id=a)


def _bounds(**more: Any) -> dict[str, Any]:
    return {
        "from": MONDAY.isoformat(),
        "to": (MONDAY + timedelta(days=2)).isoformat(),
        "interval": "DAY",
        **more,
    }


def _point(start: datetime, channel: str, **values: Any) -> dict[str, Any]:
    empty = {
        "feedback": 0, "scored": 0, "averageSentiment": None, "positive": 0, "neutral": 0,
        "negative": 0, "npsAnswers": 0, "promoters": 0, "passives": 0, "detractors": 0,
        "nps": None, "csatAnswers": 0, "csatSatisfied": 0, "csatShare": None,
        "csatAverage": None,
    }  # fmt: skip
    return {"periodStart": start.isoformat(), "channel": channel, **empty, **values}


DAY0_WEB = _point(
    MONDAY,
    "web",
    feedback=5,
    scored=4,
    averageSentiment=pytest.approx((0.6 + 0.05 - 0.05 + 0.0) / 4),
    positive=2,
    neutral=1,
    negative=1,
    npsAnswers=3,
    promoters=2,
    detractors=1,
    nps=pytest.approx(100 * (2 - 1) / 3),
    csatAnswers=3,
    csatSatisfied=2,
    csatShare=pytest.approx(2 / 3),
    csatAverage=pytest.approx((5 + 4 + 2) / 3),
)
DAY0_STORE = _point(
    MONDAY,
    "store",
    feedback=1,
    scored=1,
    averageSentiment=pytest.approx(-0.7),
    negative=1,
    npsAnswers=1,
    passives=1,
    nps=0.0,
)
DAY1_WEB = _point(
    MONDAY + timedelta(days=1),
    "web",
    feedback=1,
    scored=1,
    averageSentiment=pytest.approx(0.9),
    positive=1,
)


@pytest.mark.usefixtures("fixture")
async def test_daily_points_per_channel(gql: GraphQLClient, auth: AuthSettings) -> None:
    headers = bearer(await make_api_key(auth, Role.ANALYST))
    body = await gql(QUERY, {"input": _bounds()}, headers)
    assert "errors" not in body, body
    result = body["data"]["feedbackSentiment"]
    assert result["feedbackTypes"] == [
        "review",
        "social_mention",
        "support_message",
        "survey_answer",
    ]
    assert result["points"] == [DAY0_STORE, DAY0_WEB, DAY1_WEB]


@pytest.mark.usefixtures("fixture")
async def test_weekly_points_and_one_channel(gql: GraphQLClient, admin_headers: Any) -> None:
    weekly = await gql(QUERY, {"input": _bounds(interval="WEEK")}, admin_headers)
    assert weekly["data"]["feedbackSentiment"]["points"] == [
        DAY0_STORE,
        {
            **DAY0_WEB,
            "feedback": 6,
            "scored": 5,
            "averageSentiment": pytest.approx((0.6 + 0.05 - 0.05 + 0.0 + 0.9) / 5),
            "positive": 3,
        },
    ]
    store = await gql(QUERY, {"input": _bounds(channel="store")}, admin_headers)
    assert store["data"]["feedbackSentiment"]["points"] == [DAY0_STORE]
    monthly = await gql(QUERY, {"input": _bounds(interval="MONTH", channel="email")}, admin_headers)
    assert monthly["data"]["feedbackSentiment"]["points"] == []


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"to": MONDAY.isoformat()}, "input.to", "VALIDATION"),
        ({"to": (MONDAY - timedelta(days=1)).isoformat()}, "input.to", "VALIDATION"),
        ({"from": "2026-06-01T00:00:00"}, "input.from", "INVALID_FORMAT"),
        ({"from": "0001-01-01T00:00:00+14:00"}, "input.from", "INVALID_FORMAT"),
        ({"to": "9999-12-31T23:59:59-14:00"}, "input.to", "INVALID_FORMAT"),
        ({"channel": "Web Shop"}, "input.channel", "INVALID_FORMAT"),
        (
            {"to": (MONDAY + timedelta(days=1000, hours=1)).isoformat()},
            "input.interval",
            "TOO_MANY_ITEMS",
        ),
        (
            {"interval": "WEEK", "to": (MONDAY + timedelta(weeks=1001)).isoformat()},
            "input.interval",
            "TOO_MANY_ITEMS",
        ),
    ],
)
async def test_bad_bounds_are_refused_on_their_path(
    gql: GraphQLClient, admin_headers: Any, changes: dict[str, Any], field: str, code: str
) -> None:
    body = await gql(QUERY, {"input": _bounds(**changes)}, admin_headers)
    assert "errors" not in body, body
    error = body["data"]["feedbackSentiment"]
    assert error["__typename"] == "ValidationError"
    assert [(i["field"], i["code"]) for i in error["issues"]] == [(field, code)]


async def test_every_problem_is_listed_at_once(gql: GraphQLClient, admin_headers: Any) -> None:
    given = _bounds(
        **{"from": "0001-01-01T00:00:00+14:00", "to": "2026-06-03T00:00:00", "channel": "Web"}
    )
    body = await gql(QUERY, {"input": given}, admin_headers)
    error = body["data"]["feedbackSentiment"]
    assert error["message"] == "3 fields are invalid"
    assert error["issues"] == [
        {
            "field": "input.from",
            "code": "INVALID_FORMAT",
            "message": "The moment is out of range once in UTC.",
        },
        {"field": "input.to", "code": "INVALID_FORMAT", "message": "Give a time zone."},
        {
            "field": "input.channel",
            "code": "INVALID_FORMAT",
            "message": "Channels are codes such as web.",
        },
    ]


async def test_the_order_and_the_channel_are_refused_together(
    gql: GraphQLClient, admin_headers: Any
) -> None:
    given = _bounds(to=MONDAY.isoformat(), channel="Web Shop")
    error = (await gql(QUERY, {"input": given}, admin_headers))["data"]["feedbackSentiment"]
    assert [(i["field"], i["code"]) for i in error["issues"]] == [
        ("input.to", "VALIDATION"),
        ("input.channel", "INVALID_FORMAT"),
    ]


async def test_a_thousand_days_are_allowed(gql: GraphQLClient, admin_headers: Any) -> None:
    body = await gql(
        QUERY,
        {"input": _bounds(to=(MONDAY + timedelta(days=999, hours=23)).isoformat())},
        admin_headers,
    )
    assert body["data"]["feedbackSentiment"]["points"] == []


@pytest.mark.parametrize("role", [Role.AGENT, Role.INGEST])
async def test_agents_and_ingest_keys_are_forbidden(
    gql: GraphQLClient, auth: AuthSettings, role: Role
) -> None:
    body = await gql(QUERY, {"input": _bounds()}, bearer(await make_api_key(auth, role)))
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def test_anonymous_callers_are_refused(gql: GraphQLClient) -> None:
    body = await gql(QUERY, {"input": _bounds()})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]

"""``dashboard(input:)``: who may read it, each refusal of bad input, the exact series of a
small hand-built installation, bucketing by week and month, snapshots kept by a real analytics
run, and a statement count that does not grow with the data."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from tortoise.connection import get_connection

from cdlm.auth.settings import AuthSettings
from cdlm.config import AnalyticsSettings, Settings
from cdlm.consent.models import Decision
from cdlm.core import clock
from cdlm.core.periods import Interval
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.customers.models import Customer
from cdlm.dsr.workflow import Status
from cdlm.insight import service, snapshots
from cdlm.insight.api import revenue_rules
from cdlm.insight.models import QualitySnapshot
from cdlm.jobs.analytics_refresh import run_once
from cdlm.quality import service as quality
from cdlm.quality.fields import PROFILE, profile_path
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, make_api_key
from tests.insight.conftest import (
    DAY1,
    DAY2,
    DAY3,
    END,
    Installation,
    customer_at,
    decide,
    event,
    purposes,
    request,
    scores,
    store,
    sweep,
)
from tests.support.sql_counter import StatementRecorder

DASHBOARD = """
query ($input: DashboardInput!) {
  dashboard(input: $input) {
    __typename
    ... on ValidationError { message issues { field code message } }
    ... on Dashboard {
    from to interval bucketStarts
    newCustomers { source points { start value } }
    activeCustomers { start value }
    events { eventType points { value } }
    revenue { currency unconvertedPurchases points { start amount purchases } }
    optInRates { purposeCode purposeName points { start value } }
    dataSubjectRequests { received { value } completed { value } completedOnTime { value } }
    retentionDisposals { category points { value } }
    quality {
      averageScore { start value }
      customers { value }
      fieldCompleteness { field points { value } }
      openRefusedValues { sourceSystem points { value } }
      latestSnapshot {
        takenAt customers averageScore
        scoreBuckets { fromScore toScore customers }
        fieldPresence { field customers share }
        openRefusedValues { sourceSystem open }
      }
    }
    }
  }
}
"""


def _input(start: datetime = DAY1, end: datetime = END, interval: str = "DAY") -> dict[str, Any]:
    return {"input": {"from": start.isoformat(), "to": end.isoformat(), "interval": interval}}


def _iso(moment: datetime) -> str:
    return moment.isoformat()


async def _headers(auth: AuthSettings, role: Role = Role.ANALYST) -> dict[str, str]:
    return bearer(await make_api_key(auth, role))


def _values(points: list[dict[str, Any]]) -> list[Any]:
    return [p["value"] for p in points]


async def test_the_series_of_a_small_installation_are_exact(
    gql: GraphQLClient, auth: AuthSettings, installation: Installation
) -> None:
    body = await gql(DASHBOARD, _input(), await _headers(auth))
    assert "errors" not in body, body
    board = body["data"]["dashboard"]
    days = [_iso(DAY1), _iso(DAY2), _iso(DAY3)]
    assert board["bucketStarts"] == days
    assert (board["from"], board["to"], board["interval"]) == (_iso(DAY1), _iso(END), "DAY")
    # D was created before the period, C is restricted: A (webshop) and B, E (crm) count.
    assert {s["source"]: _values(s["points"]) for s in board["newCustomers"]} == {
        "crm": [1, 1, 0],
        "webshop": [1, 0, 0],
    }
    assert [p["start"] for p in board["newCustomers"][0]["points"]] == days
    # DAY1: A and D; DAY2: A (C is restricted); DAY3: A and B. A's event at END is outside.
    assert _values(board["activeCustomers"]) == [2, 1, 2]
    assert {s["eventType"]: _values(s["points"]) for s in board["events"]} == {
        "page.view": [2, 0, 1],
        "purchase": [0, 2, 1],
    }
    revenue = board["revenue"]
    assert revenue["currency"] == "EUR"
    assert [(Decimal(p["amount"]), p["purchases"]) for p in revenue["points"]] == [
        (Decimal(0), 0),
        (Decimal("20.00"), 2),  # the test installation has no USD rate: 10 USD left out
        (Decimal(0), 1),  # 7 JPY: no rate, left out and counted
    ]
    assert revenue["unconvertedPurchases"] == 2
    # At each day's end: counted customers created by then (D, A, B; then E too) and whose
    # latest decision grants the newsletter (D, A, B; then B withdrew).
    assert {s["purposeCode"]: _values(s["points"]) for s in board["optInRates"]} == {
        "newsletter": [1.0, 0.5, 0.5],
        "partners": [0.0, 0.0, 0.0],
    }
    requests = board["dataSubjectRequests"]
    assert _values(requests["received"]) == [1, 1, 1]
    assert _values(requests["completed"]) == [0, 1, 1]
    assert _values(requests["completedOnTime"]) == [0, 1, 0]
    assert {s["category"]: _values(s["points"]) for s in board["retentionDisposals"]} == {
        "events": [0, 5, 0],
        "profiles": [0, 2, 0],
    }
    # No snapshot was taken: every snapshot point is null, the latest snapshot too.
    assert _values(board["quality"]["averageScore"]) == [None, None, None]
    assert board["quality"]["latestSnapshot"] is None
    assert board["quality"]["openRefusedValues"] == []


async def test_revenue_uses_the_analytics_runs_rates_and_purchase_types(
    installation: Installation,
) -> None:
    purchases, rates = revenue_rules(
        AnalyticsSettings(
            purchase_types=frozenset({"purchase", "page.view"}),
            currency="EUR",
            rates={"USD": Decimal("0.5")},
        )
    )
    query = service.DashboardQuery(DAY1, END, Interval.DAY, purchases, rates)
    found = (await service.dashboard(SYSTEM, query)).revenue
    assert [(p.value, n.value) for p, n in zip(found.amounts, found.purchases, strict=True)] == [
        (Decimal(0), 2),  # page views count as purchases here, without amounts
        (Decimal("25.00"), 2),  # 20 EUR + 10 USD at 0.5 (C's 100 EUR: restricted)
        (Decimal(0), 2),
    ]
    assert found.unconverted == 1  # 7 JPY


async def test_snapshot_series_take_the_latest_snapshot_of_each_bucket(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    a = await customer_at(vault, DAY1 - timedelta(days=3), "crm", "a@example.com", given_name="Ada")
    b = await customer_at(vault, DAY1 - timedelta(days=3), "webshop", "b@example.com", phone="12")
    restricted = await customer_at(vault, DAY1 - timedelta(days=3), "crm", "r@example.com")
    await Customer.filter(id=restricted).update(restricted_at=DAY1 - timedelta(days=1))
    await scores({a: 0.9, b: 0.5, restricted: 0.1})
    with clock.frozen_at(DAY1 + timedelta(hours=6)):
        await snapshots.take()
    await scores({a: 0.7})
    with clock.frozen_at(DAY1 + timedelta(hours=20)):
        await snapshots.take()
    await scores({a: 0.3})
    with clock.frozen_at(DAY3 + timedelta(hours=1)):
        await snapshots.take()
    with clock.frozen_at(END + timedelta(hours=1)):
        await snapshots.take()  # after the period: not in it, not its latest
    body = await gql(DASHBOARD, _input(), await _headers(auth, Role.STEWARD))
    trend = body["data"]["dashboard"]["quality"]
    assert _values(trend["averageScore"]) == [0.6, None, 0.4]  # (0.7+0.5)/2, none, (0.3+0.5)/2
    assert _values(trend["customers"]) == [2, None, 2]
    completeness = {s["field"]: _values(s["points"]) for s in trend["fieldCompleteness"]}
    assert completeness["profile.email"] == [1.0, None, 1.0]
    assert completeness["profile.givenName"] == [0.5, None, 0.5]
    assert completeness["profile.birthDate"] == [0.0, None, 0.0]
    report = await quality.report()
    refused = sum(n for _, _, n in report.open_invalid)
    assert refused == 1  # B's phone "12", sent by the webshop
    assert trend["openRefusedValues"] == [
        {"sourceSystem": "webshop", "points": [{"value": 1}, {"value": None}, {"value": 1}]}
    ]
    latest = trend["latestSnapshot"]
    assert latest["takenAt"] == _iso(DAY3 + timedelta(hours=1))
    assert (latest["customers"], latest["averageScore"]) == (2, 0.4)
    assert [b["customers"] for b in latest["scoreBuckets"]] == [0, 1, 1, 0, 0]
    assert [f["field"] for f in latest["fieldPresence"]] == [
        profile_path(f.name) for f in PROFILE
    ]  # in the profile's order
    presence = {f["field"]: (f["customers"], f["share"]) for f in latest["fieldPresence"]}
    assert presence["profile.givenName"] == (1, 0.5)
    assert latest["openRefusedValues"] == [{"sourceSystem": "webshop", "open": 1}]


async def test_an_analytics_run_keeps_one_snapshot_of_the_quality_report(
    settings: Settings, vault: Vault
) -> None:
    a = await customer_at(vault, DAY1, "crm", "a@example.com", given_name="Ada")
    b = await customer_at(vault, DAY1, "webshop", "b@example.com", phone="12")
    await store(vault, [event(a, "purchase", DAY1 + timedelta(hours=1), "5.00", "EUR")])
    await scores({a: 0.8, b: 0.4})
    analytics = replace(settings, analytics=AnalyticsSettings(currency="EUR"))
    with clock.frozen_at(DAY2):
        run = await run_once(analytics)
    (kept,) = await QualitySnapshot.all()
    expected = await quality.report()
    assert kept.run_id == run.id
    assert kept.taken_at == DAY2
    assert (kept.customers, kept.average_score) == (2, 0.6)
    assert kept.score_buckets == [[a, b, n] for a, b, n in expected.score_buckets]
    assert kept.field_presence == dict(expected.field_presence)
    assert kept.field_presence["given_name"] == 1
    assert kept.open_refused == [["webshop", 1]]
    with clock.frozen_at(DAY3):
        await run_once(analytics)
    assert await QualitySnapshot.all().count() == 2


async def test_weeks_start_on_monday_and_months_on_the_first(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    person = await customer_at(vault, datetime(2026, 1, 1, tzinfo=UTC), "crm", "w@example.com")
    sunday_night = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)
    await store(
        vault,
        [
            event(person, "page.view", sunday_night),
            event(person, "page.view", sunday_night + timedelta(seconds=1)),  # Monday 2 March
            event(person, "page.view", datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)),
            event(person, "page.view", datetime(2026, 2, 1, tzinfo=UTC)),
            event(person, "page.view", datetime(2026, 1, 10, tzinfo=UTC)),  # before the period
        ],
    )
    headers = await _headers(auth)
    weeks = await gql(
        DASHBOARD,
        _input(datetime(2026, 2, 25, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC), "WEEK"),
        headers,
    )
    board = weeks["data"]["dashboard"]
    assert board["bucketStarts"] == [
        _iso(datetime(2026, 2, 23, tzinfo=UTC)),  # the Monday before `from` (a Wednesday)
        _iso(datetime(2026, 3, 2, tzinfo=UTC)),
    ]
    assert _values(board["events"][0]["points"]) == [1, 1]
    months = await gql(
        DASHBOARD,
        # From 15 January (the 10 January view is before it) to 10 March, in another offset.
        {
            "input": {
                "from": "2026-01-15T01:00:00+01:00",
                "to": "2026-03-10T00:00:00Z",
                "interval": "MONTH",
            }
        },
        headers,
    )
    board = months["data"]["dashboard"]
    assert board["from"] == _iso(datetime(2026, 1, 15, tzinfo=UTC))
    assert board["bucketStarts"] == [_iso(datetime(2026, m, 1, tzinfo=UTC)) for m in (1, 2, 3)]
    # 31 January | 1 February | 1 and 2 March (the 10 January view is before `from`).
    assert _values(board["events"][0]["points"]) == [1, 1, 2]
    assert _values(board["activeCustomers"]) == [1, 1, 1]


@pytest.mark.parametrize(
    ("given", "field", "code"),
    [
        ({"to": "2026-03-05T00:00:00Z"}, "input.from", "REQUIRED"),
        ({"from": "2026-03-02T00:00:00Z"}, "input.to", "REQUIRED"),
        (
            {"from": "2026-03-02T00:00:00", "to": "2026-03-05T00:00:00Z"},
            "input.from",
            "INVALID_FORMAT",
        ),
        ({"from": "2026-03-05T00:00:00Z", "to": "2026-03-05T00:00:00Z"}, "input.to", "VALIDATION"),
        ({"from": "2026-03-06T00:00:00Z", "to": "2026-03-05T00:00:00Z"}, "input.to", "VALIDATION"),
        (
            {"from": "0001-01-01T00:00:00+14:00", "to": "2026-03-05T00:00:00Z"},
            "input.from",
            "INVALID_FORMAT",
        ),
        (
            {"from": "9999-12-01T00:00:00Z", "to": "9999-12-31T23:59:59-14:00"},
            "input.to",
            "INVALID_FORMAT",
        ),
        (
            {"from": "2024-01-01T00:00:00Z", "to": "2026-09-27T00:00:01Z", "interval": "DAY"},
            "input.interval",
            "TOO_MANY_ITEMS",
        ),
        (
            {"from": "2006-01-01T00:00:00Z", "to": "2025-03-01T00:00:00Z", "interval": "WEEK"},
            "input.interval",
            "TOO_MANY_ITEMS",
        ),
    ],
)
async def test_bad_periods_are_refused_on_their_input_field(
    gql: GraphQLClient, auth: AuthSettings, given: dict[str, str], field: str, code: str
) -> None:
    body = await gql(DASHBOARD, {"input": given}, await _headers(auth))
    assert "errors" not in body, body
    error = body["data"]["dashboard"]
    assert error["__typename"] == "ValidationError"
    ((issue_field, issue_code, message),) = [
        (i["field"], i["code"], i["message"]) for i in error["issues"]
    ]
    assert (issue_field, issue_code) == (field, code)
    assert message == error["message"]


async def test_every_problem_of_the_period_is_listed_at_once(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    given = {"from": "2026-03-02T00:00:00", "to": "9999-12-31T23:59:59-14:00"}
    body = await gql(DASHBOARD, {"input": given}, await _headers(auth))
    error = body["data"]["dashboard"]
    assert error["__typename"] == "ValidationError"
    assert error["message"] == "2 fields are invalid"
    assert error["issues"] == [
        {"field": "input.from", "code": "INVALID_FORMAT", "message": "Give a time zone."},
        {
            "field": "input.to",
            "code": "INVALID_FORMAT",
            "message": "The moment is out of range once in UTC.",
        },
    ]


async def test_the_endless_moments_are_refused_and_the_ones_next_to_them_read(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    """The database reads the first and last moments Python holds as -infinity and infinity:
    a series of buckets up to them would never end."""
    headers = await _headers(auth)
    first, last = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    tick = timedelta(microseconds=1)
    early = _input(first, datetime(1, 1, 2, 12, tzinfo=UTC))
    late = _input(datetime(9999, 12, 1, tzinfo=UTC), last, "MONTH")
    for given, field in ((early, "input.from"), (late, "input.to")):
        refused = (await gql(DASHBOARD, given, headers))["data"]["dashboard"]
        assert [(i["field"], i["code"]) for i in refused["issues"]] == [(field, "INVALID_FORMAT")]
    early["input"]["from"] = _iso(first + tick)
    assert (await gql(DASHBOARD, early, headers))["data"]["dashboard"]["bucketStarts"] == [
        _iso(first),
        _iso(datetime(1, 1, 2, tzinfo=UTC)),
    ]
    late["input"]["to"] = _iso(last - tick)
    board = (await gql(DASHBOARD, late, headers))["data"]["dashboard"]
    assert board["bucketStarts"] == [_iso(datetime(9999, 12, 1, tzinfo=UTC))]
    assert _values(board["activeCustomers"]) == [0]


async def test_a_thousand_days_are_allowed_and_one_more_is_not(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    headers = await _headers(auth)
    most = await gql(DASHBOARD, _input(start, start + timedelta(days=1000)), headers)
    assert len(most["data"]["dashboard"]["bucketStarts"]) == 1000
    assert set(_values(most["data"]["dashboard"]["activeCustomers"])) == {0}
    over = await gql(DASHBOARD, _input(start, start + timedelta(days=1000, seconds=1)), headers)
    (issue,) = over["data"]["dashboard"]["issues"]
    assert issue["field"] == "input.interval"
    assert "1001 days" in issue["message"]


async def test_unauthenticated_callers_are_refused(gql: GraphQLClient) -> None:
    body = await gql(DASHBOARD, _input())
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


@pytest.mark.parametrize("role", [Role.AGENT, Role.INGEST])
async def test_agents_and_ingest_keys_are_forbidden(
    gql: GraphQLClient, auth: AuthSettings, role: Role
) -> None:
    body = await gql(DASHBOARD, _input(), await _headers(auth, role))
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


@pytest.mark.parametrize("role", [Role.ANALYST, Role.STEWARD, Role.PRIVACY_OFFICER, Role.ADMIN])
async def test_analytics_readers_read_it(
    gql: GraphQLClient, auth: AuthSettings, role: Role
) -> None:
    body = await gql(DASHBOARD, _input(), await _headers(auth, role))
    assert _values(body["data"]["dashboard"]["activeCustomers"]) == [0, 0, 0]


async def test_the_statement_count_does_not_grow_with_the_data(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault, sql: StatementRecorder
) -> None:
    headers = await _headers(auth)
    await purposes()
    await gql(DASHBOARD, _input(), headers)  # warm: the key's first use writes its last use
    with sql.recording():
        await gql(DASHBOARD, _input(), headers)
    empty = sql.count
    people = [
        await customer_at(
            vault, DAY1 + timedelta(hours=n), ("crm", "webshop")[n % 2], f"p{n}@x.org"
        )
        for n in range(12)
    ]
    await store(
        vault,
        [
            event(p, kind, DAY1 + timedelta(hours=n, minutes=m), "3.00", "EUR")
            for n, p in enumerate(people)
            for m, kind in enumerate(("page.view", "purchase", "cart.update"))
        ],
    )
    for n, p in enumerate(people[:6]):
        await decide(vault, p, Decision.GRANTED, DAY1 + timedelta(hours=n, minutes=30))
    for n in range(3):
        await request(DAY1 + timedelta(hours=n), DAY2, Status.COMPLETED, DAY2)
        await sweep(DAY1 + timedelta(hours=n), {f"category{n}": n + 1})
        with clock.frozen_at(DAY1 + timedelta(days=n)):
            await snapshots.take()
    with sql.recording():
        body = await gql(DASHBOARD, _input(), headers)
    assert sum(_values(body["data"]["dashboard"]["activeCustomers"])) == 12
    assert sql.count == empty
    rows = await get_connection("default").execute_query_dict("SELECT count(*) AS n FROM events")
    assert rows[0]["n"] == 36

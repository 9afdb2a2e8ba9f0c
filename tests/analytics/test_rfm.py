"""RFM scoring: quintiles on known populations, ties, edge populations, currency conversion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdlm.analytics.rfm import (
    ExchangeRates,
    Purchase,
    PurchaseRules,
    PurchaseSummary,
    RfmConfigError,
    RfmInput,
    RfmScore,
    UnknownCurrency,
    quintiles,
    score,
    summarise,
)

pytestmark = pytest.mark.pure

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
EUR = ExchangeRates("EUR", {"USD": Decimal("0.92"), "GBP": Decimal("1.17")})


def test_distinct_values_split_into_exact_quintiles() -> None:
    assert list(quintiles({i: i for i in range(5)}).values()) == [1, 2, 3, 4, 5]
    assert list(quintiles({i: i for i in range(10)}).values()) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    hundred = quintiles({i: i for i in range(100)})
    assert [sum(1 for s in hundred.values() if s == q) for q in range(1, 6)] == [20] * 5


def test_ties_get_equal_scores_at_the_middle_of_their_ranks() -> None:
    # 6 at 1 purchase, 2 at 2, 1 at 5, 1 at 9: the ones span ranks 0-5 (middle 3/10 → 2)
    scored = quintiles(dict(enumerate([1, 1, 1, 1, 1, 1, 2, 2, 5, 9])))
    assert list(scored.values()) == [2, 2, 2, 2, 2, 2, 4, 4, 5, 5]
    assert set(quintiles(dict.fromkeys("abcd", 7)).values()) == {3}


def test_single_customer_and_empty_population() -> None:
    only = score({"a": RfmInput(10, 1, Decimal("20.00"))})
    assert only == {"a": RfmScore(3, 3, 3, 9)}
    assert score({}) == {}


def test_known_population_scores_best_as_five() -> None:
    population = {
        "best": RfmInput(recency_days=1, frequency=40, monetary=Decimal("5000")),
        "good": RfmInput(5, 12, Decimal("900")),
        "mid": RfmInput(30, 6, Decimal("300")),
        "poor": RfmInput(200, 2, Decimal("40")),
        "lapsed": RfmInput(900, 1, Decimal("9.99")),
    }
    scored = score(population)
    assert scored["best"] == RfmScore(5, 5, 5, 15)
    assert scored["best"].code == 555
    assert scored["mid"] == RfmScore(3, 3, 3, 9)
    assert scored["lapsed"] == RfmScore(1, 1, 1, 3)
    assert scored["lapsed"].code == 111


def test_measures_are_scored_independently() -> None:
    scored = score(
        {
            "recent_small": RfmInput(0, 1, Decimal("1")),
            "old_big": RfmInput(365, 10, Decimal("1000")),
        }
    )
    assert (scored["recent_small"].r, scored["recent_small"].m) == (4, 2)
    assert (scored["old_big"].r, scored["old_big"].f, scored["old_big"].m) == (2, 4, 4)


@pytest.mark.parametrize(
    "bad", [RfmInput(-1, 1, Decimal(1)), RfmInput(0, 0, Decimal(1)), RfmInput(0, 1, Decimal("NaN"))]
)
def test_invalid_inputs_are_refused(bad: RfmInput) -> None:
    with pytest.raises(ValueError, match="customer 'x'"):
        score({"x": bad})


@given(st.dictionaries(st.integers(), st.integers(-1000, 1000), max_size=60))
def test_quintile_rule_properties(values: dict[int, int]) -> None:
    scored = quintiles(values)
    assert set(scored) == set(values)
    assert all(1 <= s <= 5 for s in scored.values())
    for a in values:
        for b in values:
            if values[a] == values[b]:
                assert scored[a] == scored[b]
            elif values[a] < values[b]:
                assert scored[a] <= scored[b]
    # independent of input order
    assert quintiles(dict(reversed(list(values.items())))) == scored


# --- configuration -----------------------------------------------------------------------------


def test_purchase_rules() -> None:
    rules = PurchaseRules.parse("purchase, order_completed")
    assert rules.counts("order_completed")
    assert not rules.counts("page_view")
    assert PurchaseRules().event_types == frozenset({"purchase"})
    with pytest.raises(AttributeError):
        rules.event_types = frozenset()  # type: ignore[misc]


@pytest.mark.parametrize("raw", ["", "purchase,", "Purchase", "order completed", "x" * 65])
def test_purchase_rules_refuse_malformed(raw: str) -> None:
    with pytest.raises(RfmConfigError):
        PurchaseRules.parse(raw)


def test_currency_conversion_is_exact_decimal() -> None:
    assert EUR.convert(Decimal("10.00"), "USD") == Decimal("9.2000")
    assert EUR.convert(Decimal("0.10"), "EUR") == Decimal("0.10")
    assert ExchangeRates.parse("EUR", "USD=0.92, GBP=1.17") == EUR
    assert ExchangeRates.parse("EUR", "").rates == {"EUR": Decimal(1)}
    with pytest.raises(UnknownCurrency, match="no exchange rate configured for currency 'JPY'"):
        EUR.convert(Decimal(1), "JPY")


@pytest.mark.parametrize(
    ("reporting", "raw"),
    [
        ("eur", ""),
        ("EURO", ""),
        ("EUR", "USD"),
        ("EUR", "USD=abc"),
        ("EUR", "USD=0"),
        ("EUR", "USD=-1"),
        ("EUR", "USD=Infinity"),
        ("EUR", "usd=1"),
        ("EUR", "EUR=2"),
    ],
)
def test_rates_refuse_malformed(reporting: str, raw: str) -> None:
    with pytest.raises(RfmConfigError):
        ExchangeRates.parse(reporting, raw)


# --- from events -------------------------------------------------------------------------------


def days_ago(n: float) -> datetime:
    return AS_OF - timedelta(days=n)


def test_summarise_counts_configured_purchases_before_as_of() -> None:
    events = [
        Purchase("a", "purchase", days_ago(10.5), Decimal("10.00"), "EUR"),
        Purchase("a", "order_completed", days_ago(3), Decimal("10.00"), "USD"),
        Purchase("a", "page_view", days_ago(1)),
        Purchase("a", "purchase", AS_OF, Decimal("99")),  # at as_of: not before it
        Purchase("b", "purchase", days_ago(400), None, None),
        Purchase("b", "purchase", days_ago(40), Decimal("5"), "JPY"),
        Purchase("c", "page_view", days_ago(2)),
    ]
    rules = PurchaseRules(frozenset({"purchase", "order_completed"}))
    summary = summarise(events, as_of=AS_OF, rules=rules, rates=EUR)
    assert summary.customers == {
        "a": RfmInput(3, 2, Decimal("19.2000")),
        "b": RfmInput(40, 2, Decimal(0)),
    }
    assert summary.skipped_amounts == {"JPY": 1}


def test_summarise_empty() -> None:
    summary: PurchaseSummary[str] = summarise([], as_of=AS_OF, rules=PurchaseRules(), rates=EUR)
    assert summary.customers == {}
    assert score(summary.customers) == {}

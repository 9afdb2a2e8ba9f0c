"""The BG/NBD and Gamma-Gamma formulas against independent computations: the individual-level
models of the papers integrated numerically over their mixing distributions (Gauss quadrature),
and hand-worked values; the inputs' rules; refusal of fits on too little history; AUC."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import hyp2f1, roots_genlaguerre, roots_jacobi

from cdlm.analytics import clv
from cdlm.analytics.clv import BgNbdFit, GammaGammaFit, InsufficientHistory, PurchaseHistories

pytestmark = pytest.mark.pure

FloatArray = npt.NDArray[np.float64]
R, ALPHA, A, B = 0.5, 3.0, 0.8, 2.5
FIT = BgNbdFit(
    r=R, alpha=ALPHA, a=A, b=B, log_likelihood=0.0, customers=0, converged=True, iterations=0
)
# (x, t_x, T): a one-time buyer, a light and a heavy repeat buyer.
CUSTOMERS = [(0, 0.0, 10.0), (2, 5.0, 10.0), (5, 9.5, 12.0)]
HISTORIES = PurchaseHistories.from_arrays(*zip(*CUSTOMERS, strict=True))


def _mix(g: Callable[[FloatArray, FloatArray], FloatArray], nodes: int = 200) -> float:
    """E[g(λ, p)] for λ ~ Gamma(R, ALPHA), p ~ Beta(A, B), by Gauss-Laguerre x Gauss-Jacobi
    quadrature (the mixing densities are the quadratures' weight functions)."""
    u, wu = roots_genlaguerre(nodes, R - 1)
    z, wz = roots_jacobi(nodes, B - 1, A - 1)
    lam, p = np.meshgrid(u / ALPHA, (1 + z) / 2, indexing="ij")
    return float(np.einsum("i,j,ij->", wu / wu.sum(), wz / wz.sum(), g(lam, p)))


def _alive_and_seen(x: int, t: float) -> Callable[[FloatArray, FloatArray], FloatArray]:
    """The individual-level likelihood of surviving x repeat purchases and none after until T."""
    return lambda lam, p: (1 - p) ** x * lam**x * np.exp(-lam * t)


def _likelihood(x: int, t_x: float, age: float) -> float:
    """[BG/NBD] eq. 3, the individual-level likelihood, integrated over λ and p."""

    def individual(lam: FloatArray, p: FloatArray) -> FloatArray:
        dropped = p * (1 - p) ** max(x - 1, 0) * lam**x * np.exp(-lam * t_x) if x else 0.0
        return _alive_and_seen(x, age)(lam, p) + dropped

    return _mix(individual)


def test_the_log_likelihood_is_the_individual_model_integrated_over_rates_and_dropouts() -> None:
    independent = [math.log(_likelihood(*c)) for c in CUSTOMERS]
    ours = clv.bgnbd_log_likelihood(HISTORIES, R, ALPHA, A, B)
    np.testing.assert_allclose(ours, independent, rtol=1e-9)
    # The values themselves, as computed once by a double integral (scipy.integrate.dblquad).
    np.testing.assert_allclose(ours, [-0.7331685344, -6.0635894286, -11.5692131244], rtol=1e-9)


def test_p_alive_is_the_share_of_the_likelihood_from_customers_still_alive() -> None:
    independent = [
        _mix(_alive_and_seen(x, age)) / _likelihood(x, t_x, age) for x, t_x, age in CUSTOMERS
    ]
    np.testing.assert_allclose(clv.p_alive(FIT, HISTORIES), independent, rtol=1e-9)


def test_p_alive_is_one_without_repeat_purchases_however_long_ago() -> None:
    ages = np.array([0.5, 10.0, 400.0, 1e5])
    histories = PurchaseHistories.from_arrays(np.zeros(4), np.zeros(4), ages)
    assert np.all(clv.p_alive(FIT, histories) == 1.0)


def test_p_alive_falls_as_the_last_purchase_recedes() -> None:
    histories = PurchaseHistories.from_arrays([3, 3, 3], [30.0, 20.0, 5.0], [30.0, 30.0, 30.0])
    alive = clv.p_alive(FIT, histories)
    assert alive[0] > alive[1] > alive[2] > 0


@pytest.mark.parametrize("t", [1.0, 13.0, 52.0])
def test_expected_purchases_is_the_alive_customers_expected_count_integrated(t: float) -> None:
    # Alive at T, a customer buys like a new one: E[X(t) | λ, p] = (1 - e^(-λpt)) / p.
    def future(x: int, age: float) -> Callable[[FloatArray, FloatArray], FloatArray]:
        return lambda lam, p: _alive_and_seen(x, age)(lam, p) * -np.expm1(-lam * p * t) / p

    independent = [_mix(future(x, age)) / _likelihood(x, t_x, age) for x, t_x, age in CUSTOMERS]
    np.testing.assert_allclose(clv.expected_purchases(FIT, HISTORIES, t), independent, rtol=1e-7)


def test_eulers_transformation_agrees_with_eq_10_as_printed_and_survives_heavy_buyers() -> None:
    t = 26.0
    x, t_x, age = (np.array(c, dtype=float) for c in zip(*CUSTOMERS, strict=True))
    printed = (
        (A + B + x - 1)
        / (A - 1)
        * (
            1
            - ((ALPHA + age) / (ALPHA + age + t)) ** (R + x)
            * hyp2f1(R + x, B + x, A + B + x - 1, t / (ALPHA + age + t))
        )
        / (1 + (x > 0) * A / (B + x - 1) * ((ALPHA + age) / (ALPHA + t_x)) ** (R + x))
    )
    np.testing.assert_allclose(clv.expected_purchases(FIT, HISTORIES, t), printed, rtol=1e-10)
    heavy = PurchaseHistories.from_arrays([2000], [364.0], [365.0])
    value = clv.expected_purchases(FIT, heavy, 365.0)
    assert np.isfinite(value).all()
    assert 1000 < value[0] < 2000  # about its own rate of ~5.5 a period, less dropout


def test_expected_purchases_start_at_zero_and_grow_with_the_horizon() -> None:
    horizons = [0.0, 1.0, 4.0, 13.0, 52.0, 520.0]
    values = np.array([clv.expected_purchases(FIT, HISTORIES, t) for t in horizons])
    assert np.all(values[0] == 0)
    assert np.all(np.diff(values, axis=0) > 0)


def test_a_equal_to_one_is_the_limit_of_its_neighbours() -> None:
    near = [dataclasses.replace(FIT, a=a) for a in (1 - 1e-4, 1.0, 1 + 1e-4)]
    below, at, above = (clv.expected_purchases(f, HISTORIES, 10.0) for f in near)
    assert np.all(np.isfinite(at))
    np.testing.assert_allclose(at, (below + above) / 2, rtol=1e-3)


@pytest.mark.parametrize("horizon", [4.0, 52.0])
def test_churn_risk_is_the_probability_of_no_purchase_within_the_horizon(horizon: float) -> None:
    def none_within(x: int, t_x: float, age: float) -> float:
        alive_but_silent = _mix(_alive_and_seen(x, age + horizon))
        return 1 - (_mix(_alive_and_seen(x, age)) - alive_but_silent) / _likelihood(x, t_x, age)

    independent = [none_within(*c) for c in CUSTOMERS]
    np.testing.assert_allclose(clv.churn_risk(FIT, HISTORIES, horizon), independent, rtol=1e-8)


def test_churn_risk_ranks_one_time_buyers_by_how_long_ago_they_bought() -> None:
    ages = np.array([2.0, 8.0, 30.0, 90.0, 365.0])
    one_time = PurchaseHistories.from_arrays(np.zeros(5), np.zeros(5), ages)
    risk = clv.churn_risk(FIT, one_time, 13.0)
    assert np.all(np.diff(risk) > 0)
    assert np.all((risk > 0) & (risk < 1))
    assert len(set(clv.p_alive(FIT, one_time).tolist())) == 1  # what P(alive) alone says


def test_churn_risk_is_higher_for_the_lapsed_of_two_equally_frequent_buyers() -> None:
    histories = PurchaseHistories.from_arrays([4, 4], [29.0, 6.0], [30.0, 30.0])
    recent, lapsed = clv.churn_risk(FIT, histories, 13.0)
    assert 0 <= recent < lapsed <= 1


# Gamma-Gamma ---------------------------------------------------------------------------------

P, Q, V = 6.25, 3.74, 15.44
GG = GammaGammaFit(p=P, q=Q, v=V, log_likelihood=0.0, customers=0, converged=True, iterations=0)


def test_the_gamma_gamma_likelihood_is_the_gamma_mean_integrated_over_nu() -> None:
    # z̄ | nu ~ Gamma(px, rate x·nu), nu ~ Gamma(q, rate v): integrate nu by Gauss-Laguerre.
    spend = PurchaseHistories.from_arrays(
        [1, 3, 8, 0], [2.0, 20.0, 30.0, 0.0], [30.0] * 4, [12.5, 40.0, 25.0, 0.0]
    )
    u, w = roots_genlaguerre(300, Q - 1)
    nu = u / V
    independent = []
    for x, z in [(1, 12.5), (3, 40.0), (8, 25.0)]:
        log_density = (
            P * x * np.log(x * nu) + (P * x - 1) * math.log(z) - x * nu * z - math.lgamma(P * x)
        )
        independent.append(math.log(float(np.sum(w * np.exp(log_density)) / w.sum())))
    ours = clv.gamma_gamma_log_likelihood(spend, P, Q, V)
    assert ours.shape == (3,)  # the customer without repeat purchases carries no information
    np.testing.assert_allclose(ours, independent, rtol=1e-8)


def test_expected_spend_shrinks_a_customers_mean_towards_the_population_mean() -> None:
    population = P * V / (Q - 1)
    histories = PurchaseHistories.from_arrays(
        [0, 1, 10, 100], [0.0, 5, 5, 5], [9.0] * 4, [0, 90, 90, 90]
    )
    spend = clv.expected_spend(GG, histories)
    assert spend[0] == pytest.approx(population)
    assert population < spend[1] < spend[2] < spend[3] < 90
    x, z = 10, 90.0
    weight = P * x / (P * x + Q - 1)
    assert spend[2] == pytest.approx((1 - weight) * population + weight * z)


def test_expected_spend_is_refused_when_the_population_mean_is_infinite() -> None:
    with pytest.raises(ValueError, match="q <= 1"):
        clv.expected_spend(dataclasses.replace(GG, q=0.9), HISTORIES)
    assert dataclasses.replace(GG, q=0.9).mean_spend == math.inf


def test_expected_value_is_purchases_times_spend_and_discounting_sums_the_periods() -> None:
    histories = PurchaseHistories.from_arrays([0, 2, 5], [0.0, 5, 9.5], [10.0, 10, 12], [0, 30, 20])
    spend = clv.expected_spend(GG, histories)
    plain = clv.expected_value(FIT, GG, histories, 52.0)
    np.testing.assert_allclose(plain, clv.expected_purchases(FIT, histories, 52.0) * spend)
    discounted = clv.expected_value(FIT, GG, histories, 52.0, discount_rate=0.02, period=4.0)
    by_hand = sum(
        (
            clv.expected_purchases(FIT, histories, 4.0 * k)
            - clv.expected_purchases(FIT, histories, 4.0 * (k - 1))
        )
        / 1.02**k
        for k in range(1, 14)
    )
    np.testing.assert_allclose(discounted, by_hand * spend)
    assert np.all(discounted < plain)
    with pytest.raises(ValueError, match="period"):
        clv.expected_value(FIT, GG, histories, 52.0, discount_rate=0.02)


# Inputs and refusals --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "t_x", "age", "message"),
    [
        (-1, 0.0, 5.0, "whole number"),
        (1.5, 1.0, 5.0, "whole number"),
        (2, 6.0, 5.0, "recency"),
        (0, 2.0, 5.0, "recency 0"),
        (1, math.nan, 5.0, "finite"),
    ],
)
def test_impossible_histories_are_refused(x: float, t_x: float, age: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PurchaseHistories.from_arrays([x], [t_x], [age])
    with pytest.raises(ValueError, match=message):
        clv.PurchaseSummary(frequency=x, recency=t_x, age=age)  # type: ignore[arg-type]


def test_inputs_and_results_cannot_be_changed() -> None:
    summary = clv.PurchaseSummary(frequency=2, recency=3.0, age=9.0, monetary=12.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.frequency = 3  # type: ignore[misc]
    histories = PurchaseHistories.of([summary, clv.PurchaseSummary(0, 0.0, 4.0)])
    assert len(histories) == 2
    assert histories.repeat_buyers == 1
    with pytest.raises(ValueError, match="read-only"):
        histories.frequency[0] = 7
    with pytest.raises(dataclasses.FrozenInstanceError):
        FIT.r = 1.0  # type: ignore[misc]


def test_fits_on_too_few_repeat_buyers_say_so_instead_of_returning_parameters() -> None:
    n = 200
    x = np.zeros(n)
    x[:19] = 3
    t_x = np.where(x > 0, 10.0, 0.0)
    histories = PurchaseHistories.from_arrays(x, t_x, np.full(n, 30.0), np.where(x > 0, 25.0, 0))
    refused = clv.fit_bgnbd(histories)
    assert refused == InsufficientHistory("BG/NBD", repeat_buyers=19, required=20)
    assert isinstance(refused, InsufficientHistory)
    assert refused.message == "insufficient history: 19 repeat buyers (BG/NBD needs at least 20)"
    spend_refused = clv.fit_gamma_gamma(histories, min_repeat_buyers=50)
    assert isinstance(spend_refused, InsufficientHistory)
    assert spend_refused.message.startswith("insufficient history: 19 repeat buyers")
    assert isinstance(clv.fit_bgnbd(histories, min_repeat_buyers=10), BgNbdFit)


# AUC ----------------------------------------------------------------------------------------


def test_auc_of_perfect_reversed_and_uninformative_scores() -> None:
    labels = [False, False, True, True]
    assert clv.auc([0.1, 0.2, 0.3, 0.4], labels) == 1.0
    assert clv.auc([0.4, 0.3, 0.2, 0.1], labels) == 0.0
    assert clv.auc([0.5, 0.5, 0.5, 0.5], labels) == 0.5
    # Positives 3, 2, 5 against negatives 1, 3: 4 pairs won, 1 tied, 1 lost -> 4.5 / 6.
    assert clv.auc([3, 1, 2, 3, 5], [True, False, True, False, True]) == 0.75


def test_auc_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="positive and one negative"):
        clv.auc([0.1, 0.2], [True, True])


@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=2, max_size=40))
def test_auc_is_the_share_of_positive_negative_pairs_ranked_right(
    cases: list[tuple[int, bool]],
) -> None:
    positives = [s for s, y in cases if y]
    negatives = [s for s, y in cases if not y]
    if not positives or not negatives:
        return
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    scores, labels = zip(*cases, strict=True)
    assert clv.auc([float(s) for s in scores], list(labels)) == pytest.approx(
        wins / (len(positives) * len(negatives))
    )

"""Lifetime value and churn: the BG/NBD and Gamma-Gamma models, fitted by maximum likelihood.

References (equation numbers below are theirs):

- [BG/NBD] P. S. Fader, B. G. S. Hardie, K. L. Lee, "Counting Your Customers the Easy Way:
  An Alternative to the Pareto/NBD Model", Marketing Science 24(2), 2005, and the note
  "Computing P(alive) Using the BG/NBD Model" (Fader, Hardie & Lee, 2008).
- [GG] P. S. Fader, B. G. S. Hardie, K. L. Lee, "RFM and CLV: Using Iso-Value Curves for
  Customer Base Analysis", Journal of Marketing Research 42(4), 2005, and the note
  "The Gamma-Gamma Model of Monetary Value" (Fader & Hardie, 2013).

A customer's history is summarised as in the papers: ``frequency`` x is the number of *repeat*
purchases (purchases after the first), ``recency`` t_x the time of the last purchase measured
from the first, ``age`` T the time from the first purchase to the end of the observation
window, and ``monetary`` the mean value of the repeat purchases. Any time unit works (weeks in
the papers, days in cdlm's runs) as long as one is used throughout: the fitted ``alpha`` and every
horizon are in that unit.

Everything is vectorised over customers with numpy and computed in log space (scipy's
``gammaln``, ``betaln``, ``logsumexp``, ``expit``). This is the only place scipy is imported;
only analytics jobs import this module, never the API request path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import betaln, expit, gammaln, hyp2f1, logsumexp

FloatArray = npt.NDArray[np.float64]

#: A fit needs at least this many repeat buyers unless told otherwise.
MIN_REPEAT_BUYERS: Final = 20
#: Parameters are searched on the log scale within these bounds (about 4.5e-5 to 1.6e5).
_LOG_BOUNDS: Final = (-10.0, 12.0)
_MAX_ITERATIONS: Final = 1_000


# --------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True, slots=True)
class PurchaseSummary:
    """One customer's purchase history in the papers' terms (see the module docstring).

    ``monetary`` is the mean value of the repeat purchases; 0 when there are none.
    """

    frequency: int
    recency: float
    age: float
    monetary: float = 0.0

    def __post_init__(self) -> None:
        _check(
            np.array([self.frequency], dtype=np.float64),
            np.array([self.recency], dtype=np.float64),
            np.array([self.age], dtype=np.float64),
            np.array([self.monetary], dtype=np.float64),
        )


@dataclass(frozen=True, slots=True, eq=False)
class PurchaseHistories:
    """Many customers' summaries as read-only columns, the input of every function here."""

    frequency: FloatArray
    recency: FloatArray
    age: FloatArray
    monetary: FloatArray

    @classmethod
    def of(cls, summaries: Iterable[PurchaseSummary]) -> PurchaseHistories:
        rows = list(summaries)
        return cls.from_arrays(
            [s.frequency for s in rows],
            [s.recency for s in rows],
            [s.age for s in rows],
            [s.monetary for s in rows],
        )

    @classmethod
    def from_arrays(
        cls,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        age: npt.ArrayLike,
        monetary: npt.ArrayLike | None = None,
    ) -> PurchaseHistories:
        """Columns of equal length; ``monetary`` defaults to zeros (no spend model)."""
        x = np.array(frequency, dtype=np.float64, ndmin=1)
        columns = [x, np.array(recency, dtype=np.float64, ndmin=1)]
        columns.append(np.array(age, dtype=np.float64, ndmin=1))
        columns.append(
            np.zeros_like(x) if monetary is None else np.array(monetary, dtype=np.float64, ndmin=1)
        )
        if any(c.ndim != 1 or c.shape != x.shape for c in columns):
            raise ValueError("purchase history columns must be one-dimensional and equally long")
        _check(*columns)
        for column in columns:
            column.setflags(write=False)
        return cls(*columns)

    def __len__(self) -> int:
        return int(self.frequency.shape[0])

    @property
    def repeat_buyers(self) -> int:
        return int(np.count_nonzero(self.frequency > 0))


def _check(x: FloatArray, t_x: FloatArray, age: FloatArray, monetary: FloatArray) -> None:
    values = np.concatenate([x, t_x, age, monetary])
    if not np.all(np.isfinite(values)):
        raise ValueError("purchase histories must be finite numbers")
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise ValueError("frequency counts repeat purchases: a whole number >= 0")
    if np.any(t_x < 0) or np.any(t_x > age):
        raise ValueError("recency must lie between 0 and the customer's age")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("a customer without repeat purchases has recency 0")
    if np.any(monetary < 0):
        raise ValueError("monetary value must be >= 0")


# --------------------------------------------------------------------------------------------
# Outcomes


@dataclass(frozen=True, slots=True)
class BgNbdFit:
    """Maximum-likelihood BG/NBD parameters: purchase rates ~ Gamma(r, alpha) (alpha in the
    histories' time unit), dropout probabilities ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int
    converged: bool
    iterations: int


@dataclass(frozen=True, slots=True)
class GammaGammaFit:
    """Maximum-likelihood Gamma-Gamma parameters: a transaction's value ~ Gamma(p, nu) with
    nu ~ Gamma(q, v) across customers; fitted on repeat buyers only."""

    p: float
    q: float
    v: float
    log_likelihood: float
    customers: int
    converged: bool
    iterations: int

    @property
    def mean_spend(self) -> float:
        """The population's mean transaction value, p·v/(q-1); infinite when q <= 1."""
        return self.p * self.v / (self.q - 1) if self.q > 1 else math.inf


@dataclass(frozen=True, slots=True)
class InsufficientHistory:
    """A fit refused: too few repeat buyers to estimate anything meaningful."""

    model: str
    repeat_buyers: int
    required: int

    @property
    def message(self) -> str:
        return (
            f"insufficient history: {self.repeat_buyers} repeat buyers "
            f"({self.model} needs at least {self.required})"
        )


# --------------------------------------------------------------------------------------------
# BG/NBD


def bgnbd_log_likelihood(
    histories: PurchaseHistories, r: float, alpha: float, a: float, b: float
) -> FloatArray:
    """Each customer's log-likelihood, [BG/NBD] eq. 6:

    L = B(a, b+x)/B(a, b) · Γ(r+x)alpha^r / (Γ(r)(alpha+T)^(r+x))
        + δ(x>0) · B(a+1, b+x-1)/B(a, b) · Γ(r+x)alpha^r / (Γ(r)(alpha+t_x)^(r+x))

    summed in log space with ``logsumexp`` (the second term is absent when x = 0).
    """
    x, t_x, age = histories.frequency, histories.recency, histories.age
    repeat = x > 0
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    alive = betaln(a, b + x) - (r + x) * np.log(alpha + age)
    # For x = 0 the term is absent; evaluate it at x = 1 (always defined) and drop it below.
    x_safe = np.where(repeat, x, 1.0)
    dropped = betaln(a + 1, b + x_safe - 1) - (r + x) * np.log(alpha + t_x)
    dropped = np.where(repeat, dropped, -np.inf)
    terms = np.stack([alive, dropped])
    return np.asarray(common + logsumexp(terms, axis=0), dtype=np.float64)


def fit_bgnbd(
    histories: PurchaseHistories, *, min_repeat_buyers: int = MIN_REPEAT_BUYERS
) -> BgNbdFit | InsufficientHistory:
    """Maximise the summed eq. 6 over (r, alpha, a, b), searched on the log scale with L-BFGS-B.

    Starts at r = a = b = 1 and alpha matching the observed purchase rate (r/alpha ≈ Σx/ΣT).
    ``converged`` is False when the optimizer did not report success or a parameter ended on
    its search bound (then the maximum is not interior and the numbers mean little).
    """
    buyers = histories.repeat_buyers
    if buyers < min_repeat_buyers:
        return InsufficientHistory("BG/NBD", buyers, min_repeat_buyers)
    rate = float(histories.frequency.sum()) / max(float(histories.age.sum()), 1e-12)
    start = np.log([1.0, 1.0 / min(max(rate, 1e-4), 1e4), 1.0, 1.0])

    def objective(theta: FloatArray) -> float:
        r, alpha, a, b = np.exp(theta)
        return -float(np.mean(bgnbd_log_likelihood(histories, r, alpha, a, b)))

    theta, mean_ll, converged, iterations = _maximise(objective, start)
    r, alpha, a, b = (float(v) for v in np.exp(theta))
    return BgNbdFit(
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        log_likelihood=mean_ll * len(histories),
        customers=len(histories),
        converged=converged,
        iterations=iterations,
    )


def _p_alive_log_odds(fit: BgNbdFit, histories: PurchaseHistories) -> FloatArray:
    """log[(a/(b+x-1)) · ((alpha+T)/(alpha+t_x))^(r+x)] for repeat buyers; -inf when x = 0."""
    x, t_x, age = histories.frequency, histories.recency, histories.age
    repeat = x > 0
    x_safe = np.where(repeat, x, 1.0)
    odds = (
        np.log(fit.a)
        - np.log(fit.b + x_safe - 1)
        + (fit.r + x) * (np.log(fit.alpha + age) - np.log(fit.alpha + t_x))
    )
    return np.where(repeat, odds, -np.inf)


def p_alive(fit: BgNbdFit, histories: PurchaseHistories) -> FloatArray:
    """P(alive | x, t_x, T), from the 2008 note on [BG/NBD]:

    1 / (1 + δ(x>0) · a/(b+x-1) · ((alpha+T)/(alpha+t_x))^(r+x)).

    It is exactly 1 for customers without repeat purchases: in BG/NBD a customer can only drop
    out right after a repeat purchase (why :func:`churn_risk` exists).
    """
    return np.asarray(expit(-_p_alive_log_odds(fit, histories)), dtype=np.float64)


def expected_purchases(fit: BgNbdFit, histories: PurchaseHistories, t: float) -> FloatArray:
    """Expected purchases in the next ``t`` periods, [BG/NBD] eq. 10:

    E[Y(t) | x, t_x, T] = (a+b+x-1)/(a-1) · [1 - ((alpha+T)/(alpha+T+t))^(r+x)
            · ₂F₁(r+x, b+x; a+b+x-1; t/(alpha+T+t))]
        / (1 + δ(x>0) · a/(b+x-1) · ((alpha+T)/(alpha+t_x))^(r+x))

    The denominator is 1/P(alive). The hypergeometric factor is evaluated through Euler's
    transformation, (1-z)^(r+x) ₂F₁(r+x, b+x; c; z) = (1-z)^(a-1) ₂F₁(a+b-1-r, a-1; c; z) with
    c = a+b+x-1, whose parameters stay small for heavy buyers (the direct form overflows).
    At a = 1 the formula is a limit; a is nudged by 1e-6 there.
    """
    if not t >= 0:
        raise ValueError("the horizon t must be >= 0")
    x, age = histories.frequency, histories.age
    r, alpha, b = fit.r, fit.alpha, fit.b
    a = fit.a if abs(fit.a - 1) > 1e-6 else 1 + math.copysign(1e-6, fit.a - 1)
    c = a + b + x - 1
    z = t / (alpha + age + t)
    log_one_minus_z = np.log(alpha + age) - np.log(alpha + age + t)
    tail = np.exp((a - 1) * log_one_minus_z) * hyp2f1(a + b - 1 - r, a - 1, c, z)
    if_alive = c / (a - 1) * (1 - tail)
    return np.asarray(if_alive * p_alive(fit, histories), dtype=np.float64)


def churn_risk(fit: BgNbdFit, histories: PurchaseHistories, horizon: float) -> FloatArray:
    """The probability of no purchase in the next ``horizon`` periods, a score in [0, 1]:

    risk = (1 - P(alive)) + P(alive) · ((alpha+T)/(alpha+T+horizon))^(r+x)

    A customer makes no purchase either because they have gone (1 - P(alive)) or because,
    alive, their Poisson rate produced none; given alive, the rate's posterior is
    Gamma(r+x, alpha+T), whose chance of zero events in ``horizon`` is the second factor. This
    combines P(alive) with recency: for one-time buyers P(alive) = 1 and the risk is
    (1 + horizon/(alpha+T))^(-r), increasing in T, the time since their only purchase, so they are
    ranked by how long ago they bought (P(alive) alone ties them all at 1). For repeat buyers a
    long gap T - t_x lowers P(alive) and raises the risk.
    """
    if not horizon > 0:
        raise ValueError("the churn horizon must be > 0")
    x, age = histories.frequency, histories.age
    alive = p_alive(fit, histories)
    silent = np.exp((fit.r + x) * (np.log(fit.alpha + age) - np.log(fit.alpha + age + horizon)))
    return np.asarray(np.clip(1 - alive + alive * silent, 0.0, 1.0), dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Gamma-Gamma


def gamma_gamma_log_likelihood(
    histories: PurchaseHistories, p: float, q: float, v: float
) -> FloatArray:
    """Each repeat buyer's log-likelihood of their mean spend z̄ over x purchases ([GG] and its
    note; customers with x = 0 or z̄ = 0 carry no information and are left out):

    f(z̄ | p, q, v, x) = Γ(px+q) / (Γ(px)Γ(q)) · v^q · z̄^(px-1) · x^(px) / (v + x z̄)^(px+q)
    """
    x, z = _spenders(histories)
    px = p * x
    return np.asarray(
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(z)
        + px * np.log(x)
        - (px + q) * np.log(v + x * z),
        dtype=np.float64,
    )


def _spenders(histories: PurchaseHistories) -> tuple[FloatArray, FloatArray]:
    keep = (histories.frequency > 0) & (histories.monetary > 0)
    return histories.frequency[keep], histories.monetary[keep]


def fit_gamma_gamma(
    histories: PurchaseHistories, *, min_repeat_buyers: int = MIN_REPEAT_BUYERS
) -> GammaGammaFit | InsufficientHistory:
    """Maximise the summed Gamma-Gamma likelihood over (p, q, v) on repeat buyers with a
    positive mean spend, on the log scale with L-BFGS-B (start p = 1, q = 2, v = mean z̄, so
    the starting mean spend p·v/(q-1) equals the observed one).

    The model assumes spend is independent of purchase frequency; check it on the data.
    """
    x, z = _spenders(histories)
    if x.shape[0] < min_repeat_buyers:
        return InsufficientHistory("Gamma-Gamma", int(x.shape[0]), min_repeat_buyers)
    start = np.log([1.0, 2.0, float(np.mean(z))])

    def objective(theta: FloatArray) -> float:
        p, q, v = np.exp(theta)
        return -float(np.mean(gamma_gamma_log_likelihood(histories, p, q, v)))

    theta, mean_ll, converged, iterations = _maximise(objective, start)
    p, q, v = (float(value) for value in np.exp(theta))
    return GammaGammaFit(
        p=p,
        q=q,
        v=v,
        log_likelihood=mean_ll * int(x.shape[0]),
        customers=int(x.shape[0]),
        converged=converged,
        iterations=iterations,
    )


def expected_spend(fit: GammaGammaFit, histories: PurchaseHistories) -> FloatArray:
    """Expected value of a customer's future transaction ([GG]):

    E[Z | p, q, v, z̄, x] = (q-1)/(px+q-1) · pv/(q-1) + px/(px+q-1) · z̄ = p(v + x z̄)/(px+q-1),

    a weighted mean of the population mean pv/(q-1) and the customer's own; customers without
    repeat purchases get the population mean. Undefined (infinite) when q <= 1.
    """
    if fit.q <= 1:
        raise ValueError(f"expected spend is infinite when q <= 1 (fitted q = {fit.q:.3g})")
    x, z = histories.frequency, histories.monetary
    own = fit.p * (fit.v + x * z) / (fit.p * x + fit.q - 1)
    return np.asarray(np.where(x > 0, own, fit.mean_spend), dtype=np.float64)


def expected_value(
    bgnbd: BgNbdFit,
    gamma_gamma: GammaGammaFit,
    histories: PurchaseHistories,
    horizon: float,
    *,
    discount_rate: float = 0.0,
    period: float | None = None,
) -> FloatArray:
    """Expected value over ``horizon``: expected purchases * expected spend per purchase.

    Without discounting it is E[Y(horizon)] · E[Z]. With ``discount_rate`` d per ``period``
    (e.g. 0.01 per 30 days), the horizon is cut into periods and the purchases expected in
    the k-th, E[Y(k·period)] - E[Y((k-1)·period)], are discounted by (1+d)^k (the last period
    may be partial). Like [GG] this treats spend as independent of the number of purchases.
    """
    if not horizon >= 0:
        raise ValueError("the horizon must be >= 0")
    if not discount_rate >= 0:
        raise ValueError("the discount rate must be >= 0")
    spend = expected_spend(gamma_gamma, histories)
    if discount_rate == 0:
        return np.asarray(expected_purchases(bgnbd, histories, horizon) * spend, np.float64)
    if period is None or not period > 0:
        raise ValueError("discounting needs the length of its period (> 0)")
    steps = math.ceil(horizon / period)
    total = np.zeros(len(histories))
    before = np.zeros(len(histories))
    for k in range(1, steps + 1):
        until = expected_purchases(bgnbd, histories, min(k * period, horizon))
        total += (until - before) / (1 + discount_rate) ** k
        before = until
    return np.asarray(total * spend, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Evaluation


def auc(
    scores: Sequence[float] | FloatArray, positives: Sequence[bool] | npt.NDArray[np.bool_]
) -> float:
    """Area under the ROC curve by the Mann-Whitney U statistic: the probability that a random
    positive scores higher than a random negative, ties counting one half."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positives, dtype=bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError("scores and labels must be one-dimensional and equally long")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    n_pos = int(np.count_nonzero(y))
    n_neg = int(y.shape[0]) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs at least one positive and one negative")
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    # Average 1-based rank of each distinct score: the ranks below it plus the middle of its run.
    mid_rank = np.cumsum(counts) - (counts - 1) / 2.0
    u = float(mid_rank[inverse][y].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


# --------------------------------------------------------------------------------------------


def _maximise(
    objective: Callable[[FloatArray], float], start: FloatArray
) -> tuple[FloatArray, float, bool, int]:
    """Minimise a mean negative log-likelihood over log-parameters; returns the log-parameters,
    the mean log-likelihood, whether it converged inside the bounds, and the iterations."""
    low, high = _LOG_BOUNDS
    result = minimize(
        objective,
        start,
        method="L-BFGS-B",
        bounds=[_LOG_BOUNDS] * len(start),
        options={"maxiter": _MAX_ITERATIONS, "ftol": 1e-12, "gtol": 1e-8},
    )
    theta = np.asarray(result.x, dtype=np.float64)
    inside = bool(np.all((theta > low + 1e-6) & (theta < high - 1e-6)))
    return theta, -float(result.fun), bool(result.success) and inside, int(result.nit)

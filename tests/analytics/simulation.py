"""Purchase histories simulated from known BG/NBD and Gamma-Gamma parameters, following the
models' stories ([BG/NBD] section 2, [GG] section 2), for parameter-recovery and holdout tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cdlm.analytics.clv import PurchaseHistories


@dataclass(frozen=True, slots=True, eq=False)
class Simulated:
    """Calibration-window histories and each customer's purchases in the holdout after it."""

    histories: PurchaseHistories
    holdout_purchases: npt.NDArray[np.int64]


def simulate(
    rng: np.random.Generator,
    ages: npt.NDArray[np.float64],
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    spend: tuple[float, float, float] | None = None,
    holdout: float = 0.0,
) -> Simulated:
    """One customer per entry of ``ages`` (time from their first purchase to the end of the
    calibration window). Each has a Poisson purchase rate λ ~ Gamma(r, alpha) and, after every
    repeat purchase, drops out with probability p ~ Beta(a, b). With ``spend = (p, q, v)``
    each repeat buyer's mean spend is drawn from Gamma-Gamma: nu ~ Gamma(q, v), and the mean of
    x transactions ~ Gamma(p·x, x·nu)."""
    n = ages.shape[0]
    rate = rng.gamma(r, 1.0 / alpha, n)
    dropout = rng.beta(a, b, n)
    end = ages + holdout
    clock = np.zeros(n)
    x = np.zeros(n, dtype=np.int64)
    t_x = np.zeros(n)
    later = np.zeros(n, dtype=np.int64)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        clock[idx] += rng.exponential(1.0 / np.maximum(rate[idx], 1e-300))
        over = clock[idx] > end[idx]
        active[idx[over]] = False
        bought = idx[~over]
        calibration = clock[bought] <= ages[bought]
        x[bought[calibration]] += 1
        t_x[bought[calibration]] = clock[bought[calibration]]
        later[bought[~calibration]] += 1
        gone = rng.random(bought.shape[0]) < dropout[bought]
        active[bought[gone]] = False
    monetary = np.zeros(n)
    if spend is not None:
        p, q, v = spend
        nu = rng.gamma(q, 1.0 / v, n)
        repeat = x > 0
        monetary[repeat] = rng.gamma(p * x[repeat], 1.0 / (x[repeat] * nu[repeat]))
    return Simulated(PurchaseHistories.from_arrays(x, t_x, ages, monetary), later)

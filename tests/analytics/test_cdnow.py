"""The published fits on the CDNOW sample (data/README.md): BG/NBD r 0.243, alpha 4.414, a 0.793,
b 2.426, log-likelihood -9582.4 (Fader, Hardie & Lee 2005, Marketing Science); Gamma-Gamma
p 6.25, q 3.74, v 15.44 on its 946 repeat buyers (Fader, Hardie & Lee 2005, JMR)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from cdlm.analytics import clv
from cdlm.analytics.clv import BgNbdFit, GammaGammaFit, PurchaseHistories

pytestmark = pytest.mark.pure

DATA = Path(__file__).parent / "data" / "cdnow_summary.csv"


@pytest.fixture(scope="module")
def cdnow() -> PurchaseHistories:
    with DATA.open(newline="") as file:
        rows = list(csv.DictReader(file))
    return PurchaseHistories.from_arrays(
        [int(row["x"]) for row in rows],
        [float(row["t_x"]) for row in rows],
        [float(row["T"]) for row in rows],
        [float(row["zbar"]) for row in rows],
    )


def test_the_sample_is_the_published_one(cdnow: PurchaseHistories) -> None:
    assert len(cdnow) == 2357
    assert cdnow.repeat_buyers == 946


def test_bgnbd_reproduces_the_published_fit(cdnow: PurchaseHistories) -> None:
    fit = clv.fit_bgnbd(cdnow)
    assert isinstance(fit, BgNbdFit)
    assert fit.converged
    assert (fit.r, fit.alpha, fit.a, fit.b) == pytest.approx((0.243, 4.414, 0.793, 2.426), abs=6e-4)
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.05)


def test_gamma_gamma_reproduces_the_published_fit(cdnow: PurchaseHistories) -> None:
    fit = clv.fit_gamma_gamma(cdnow)
    assert isinstance(fit, GammaGammaFit)
    assert fit.converged
    assert fit.customers == 946
    assert (fit.p, fit.q, fit.v) == pytest.approx((6.25, 3.74, 15.44), abs=0.01)


def test_a_customers_forecast_from_the_fitted_model(cdnow: PurchaseHistories) -> None:
    # The sample's first customer (x = 2, t_x = 30.43, T = 38.86) over the next 39 weeks: a
    # value computed here once (a regression check, not a published figure).
    fit = clv.fit_bgnbd(cdnow)
    assert isinstance(fit, BgNbdFit)
    one = PurchaseHistories.from_arrays([2], [30.43], [38.86])
    assert clv.expected_purchases(fit, one, 39.0)[0] == pytest.approx(1.226, abs=1e-3)
    assert np.all(clv.p_alive(fit, cdnow)[cdnow.frequency == 0] == 1.0)


def test_the_time_unit_only_rescales_alpha(cdnow: PurchaseHistories) -> None:
    weeks = clv.fit_bgnbd(cdnow)
    days = clv.fit_bgnbd(
        PurchaseHistories.from_arrays(
            cdnow.frequency, cdnow.recency * 7, cdnow.age * 7, cdnow.monetary
        )
    )
    assert isinstance(weeks, BgNbdFit)
    assert isinstance(days, BgNbdFit)
    assert (days.r, days.alpha / 7, days.a, days.b) == pytest.approx(
        (weeks.r, weeks.alpha, weeks.a, weeks.b), rel=1e-3
    )
    # Purchase times become densities per day instead of per week: log 7 per repeat purchase.
    shift = np.log(7) * cdnow.frequency.sum()
    assert days.log_likelihood == pytest.approx(weeks.log_likelihood - shift, abs=1e-3)

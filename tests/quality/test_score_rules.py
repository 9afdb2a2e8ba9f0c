"""The quality score, exact: 0.5 * completeness + 0.3 * validity + 0.2 * freshness.

Freshness is 1 within 90 days of the last source update, then falls linearly to 0 at three
years (1095 days); every limit is checked on it and one second and one day either side.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cdlm.quality.fields import COMPLETENESS_FIELDS
from cdlm.quality.score import (
    FRESH_FOR,
    STALE_AFTER,
    WEIGHTS,
    QualityScore,
    freshness,
    score,
)

pytestmark = pytest.mark.pure

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
NINE = [
    "given_name",
    "family_name",
    "email",
    "phone",
    "birth_date",
    "address_line1",
    "city",
    "postal_code",
    "country",
]


def test_the_rule_constants() -> None:
    assert WEIGHTS == {"completeness": 0.5, "validity": 0.3, "freshness": 0.2}
    assert timedelta(days=90) == FRESH_FOR
    assert timedelta(days=1095) == STALE_AFTER
    assert tuple(NINE) == COMPLETENESS_FIELDS


# ------------------------------------------------------------------------------ freshness


def test_no_update_at_all_is_not_fresh() -> None:
    assert freshness(None, NOW) == 0.0


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (-DAY, 1.0),  # an update stamped in the future counts as fresh
        (timedelta(0), 1.0),
        (timedelta(days=89), 1.0),
        (timedelta(days=90) - SECOND, 1.0),
        (timedelta(days=90), 1.0),
        (timedelta(days=90) + SECOND, 1.0),  # 1 - 1/86 832 000, rounded to 4 places
        (timedelta(days=91), 0.999),  # 1 - 1/1005 = 0.999005
        (timedelta(days=92), 0.998),  # 1 - 2/1005 = 0.998010
        (timedelta(days=190.5), 0.9),  # 1 - 100.5/1005
        (timedelta(days=400), 0.6915),  # 1 - 310/1005 = 0.691542
        (timedelta(days=592.5), 0.5),  # the middle of the slope
        (timedelta(days=1000), 0.0945),  # 1 - 910/1005 = 0.094527
        (timedelta(days=1094), 0.001),  # 1/1005 = 0.000995
        (timedelta(days=1095) - SECOND, 0.0),  # 1.15e-8, rounded to 4 places
        (timedelta(days=1095), 0.0),
        (timedelta(days=1095) + SECOND, 0.0),
        (timedelta(days=1096), 0.0),
        (timedelta(days=4 * 365), 0.0),
    ],
    ids=lambda v: str(v),
)
def test_freshness_at_and_around_its_limits(age: timedelta, expected: float) -> None:
    assert freshness(NOW - age, NOW) == expected


def test_freshness_compares_instants_not_wall_clocks() -> None:
    paris = timezone(timedelta(hours=2))
    same_instant = (NOW - timedelta(days=91)).astimezone(paris)
    assert freshness(same_instant, NOW) == 0.999


# ---------------------------------------------------------------------------------- score


def test_an_empty_profile() -> None:
    # Nothing known: no completeness, nothing refused (validity 1), never updated.
    assert score([], [], None, NOW) == QualityScore(0.0, 1.0, 0.0, 0.3)
    assert score([], [], NOW, NOW) == QualityScore(0.0, 1.0, 1.0, 0.5)


def test_a_profile_with_a_single_refused_field() -> None:
    assert score([], ["phone"], None, NOW) == QualityScore(0.0, 0.0, 0.0, 0.0)
    assert score([], ["phone"], NOW, NOW) == QualityScore(0.0, 0.0, 1.0, 0.2)
    stale = NOW - timedelta(days=592.5)
    assert score([], ["phone"], stale, NOW) == QualityScore(0.0, 0.0, 0.5, 0.1)


def test_a_refused_value_of_a_field_that_has_a_valid_one_does_not_count() -> None:
    # completeness 1/9, validity 1, freshness 1: 0.5/9 + 0.3 + 0.2
    assert score(["phone"], ["phone"], NOW, NOW) == QualityScore(0.1111, 1.0, 1.0, 0.5556)


def test_one_valid_and_one_refused_field() -> None:
    # completeness 1/9, validity 1/2, freshness 0: 0.5/9 + 0.15 = 0.205556
    assert score(["email"], ["phone"], None, NOW) == QualityScore(0.1111, 0.5, 0.0, 0.2056)


def test_optional_fields_count_for_validity_not_completeness() -> None:
    # address_line2 and region are optional: validity 2/3, completeness 0
    result = score(["address_line2", "region"], ["postal_code"], None, NOW)
    assert result == QualityScore(0.0, 0.6667, 0.0, 0.2)


def test_a_complete_fresh_profile_scores_one() -> None:
    assert score(NINE, [], NOW, NOW) == QualityScore(1.0, 1.0, 1.0, 1.0)
    assert score([*NINE, "address_line2", "region"], [], NOW, NOW).score == 1.0


def test_a_complete_profile_with_one_refused_optional_field() -> None:
    # validity 1 - 1/10: 0.5 + 0.27 + 0.2
    assert score(NINE, ["region"], NOW, NOW) == QualityScore(1.0, 0.9, 1.0, 0.97)


def test_each_completeness_field_weighs_one_ninth() -> None:
    for missing in NINE:
        have = [f for f in NINE if f != missing]
        # completeness 8/9: 0.5 * 8/9 + 0.3 + 0 = 0.744444
        assert score(have, [], None, NOW) == QualityScore(0.8889, 1.0, 0.0, 0.7444)


def test_a_complete_but_stale_profile() -> None:
    old = NOW - timedelta(days=1095)
    assert score(NINE, [], old, NOW) == QualityScore(1.0, 1.0, 0.0, 0.8)
    older = NOW - timedelta(days=190.5)
    assert score(NINE, [], older, NOW) == QualityScore(1.0, 1.0, 0.9, 0.98)


def test_a_score_is_an_immutable_value() -> None:
    scored = score({}, set(), None, NOW)
    with pytest.raises(FrozenInstanceError):
        scored.score = 1.0  # type: ignore[misc]

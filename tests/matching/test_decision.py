"""The decision on scored pairs: thresholds, hard conflicts, holds and clusters."""

from __future__ import annotations

import uuid

import pytest

from cdlm.matching.decision import Action, Hold, MergePlan, Thresholds, decide, plan_merges

pytestmark = pytest.mark.pure

ON = Thresholds(review_above=0.80, auto_merge_above=0.95)
OFF = Thresholds(review_above=0.80, auto_merge_above=None)
A, B, C, D = (uuid.UUID(int=n) for n in (1, 2, 3, 4))


@pytest.mark.parametrize(
    ("probability", "thresholds", "action"),
    [
        (0.7999, ON, Action.DROP),
        (0.80, ON, Action.REVIEW),
        (0.9499, ON, Action.REVIEW),
        (0.95, ON, Action.MERGE),
        (1.0, ON, Action.MERGE),
        (0.99, OFF, Action.REVIEW),
        (0.79, OFF, Action.DROP),
    ],
)
def test_thresholds_are_inclusive_and_auto_merge_can_be_off(
    probability: float, thresholds: Thresholds, action: Action
) -> None:
    verdict = decide(probability, (), False, thresholds)
    assert verdict.action is action
    assert verdict.reasons == ()


def test_a_hard_conflict_or_a_hold_sends_a_sure_pair_to_review_with_the_reasons() -> None:
    verdict = decide(0.99, ["household", "birth_date_differs"], True, ON)
    assert verdict.action is Action.REVIEW
    assert verdict.reasons == ("birth_date_differs", "household", Hold.LEGAL_HOLD.value)


def test_a_conflict_below_the_review_threshold_is_still_dropped() -> None:
    assert decide(0.5, ["household"], True, ON).action is Action.DROP


def _seniority(*order: uuid.UUID) -> dict[uuid.UUID, tuple[object, ...]]:
    return {member: (position,) for position, member in enumerate(order)}


def test_a_chain_without_conflicts_merges_into_its_most_senior_member() -> None:
    plans, reviewed = plan_merges(
        {(A, B): 0.99, (B, C): 0.97}, lambda a, b: False, _seniority(C, A, B)
    )
    assert plans == [MergePlan(C, (A, B))]
    assert reviewed == set()


def test_a_pair_that_would_join_conflicting_members_goes_to_review_and_the_rest_merges() -> None:
    # A and C each look like B, but A and C conflict: the more probable pair wins.
    conflicting = {frozenset((A, C))}
    plans, reviewed = plan_merges(
        {(A, B): 0.99, (B, C): 0.97, (C, D): 0.96},
        lambda a, b: frozenset((a, b)) in conflicting,
        _seniority(A, B, C, D),
    )
    assert plans == [MergePlan(A, (B,)), MergePlan(C, (D,))]
    assert reviewed == {(B, C)}


def test_order_of_the_pairs_is_by_probability_not_by_arrival() -> None:
    conflicting = {frozenset((A, C))}
    plans, reviewed = plan_merges(
        {(A, B): 0.96, (B, C): 0.99},
        lambda a, b: frozenset((a, b)) in conflicting,
        _seniority(A, B, C),
    )
    assert plans == [MergePlan(B, (C,))]
    assert reviewed == {(A, B)}


def test_nothing_to_merge_plans_nothing() -> None:
    assert plan_merges({}, lambda a, b: True, {}) == ([], set())

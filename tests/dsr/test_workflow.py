"""The request workflow: every allowed move, every refused one, the public status."""

from __future__ import annotations

import itertools

import pytest

from cdlm.core.errors import InvalidStateTransition
from cdlm.dsr.workflow import (
    FINAL,
    TRANSITIONS,
    PublicStatus,
    Status,
    check_transition,
    public_status,
)

ALLOWED = [(a, b) for a, targets in TRANSITIONS.items() for b in targets]
REFUSED = [(a, b) for a in Status for b in Status if b not in TRANSITIONS[a]]


@pytest.mark.parametrize(("current", "target"), ALLOWED)
def test_allowed_moves(current: Status, target: Status) -> None:
    check_transition(current, target)


@pytest.mark.parametrize(("current", "target"), REFUSED)
def test_refused_moves(current: Status, target: Status) -> None:
    with pytest.raises(InvalidStateTransition) as caught:
        check_transition(current, target, "input.status")
    assert caught.value.field == "input.status"
    # A move no input asked for (verification, execution) names no field.
    with pytest.raises(InvalidStateTransition) as caught:
        check_transition(current, target)
    assert caught.value.field is None


def test_the_happy_path_and_final_states() -> None:
    path = [
        Status.RECEIVED,
        Status.IDENTITY_PENDING,
        Status.VERIFIED,
        Status.APPROVED,
        Status.IN_PROGRESS,
        Status.COMPLETED,
    ]
    for current, target in itertools.pairwise(path):
        check_transition(current, target)
    assert all(not TRANSITIONS[s] for s in FINAL)
    assert Status.FAILED in TRANSITIONS[Status.IN_PROGRESS]
    assert Status.IN_PROGRESS in TRANSITIONS[Status.FAILED]  # failures are retried


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (Status.RECEIVED, PublicStatus.OPEN),
        (Status.IDENTITY_PENDING, PublicStatus.OPEN),
        (Status.APPROVED, PublicStatus.OPEN),
        (Status.IN_PROGRESS, PublicStatus.IN_PROGRESS),
        (Status.ON_HOLD, PublicStatus.IN_PROGRESS),
        (Status.FAILED, PublicStatus.IN_PROGRESS),
        (Status.COMPLETED, PublicStatus.FULFILLED),
        (Status.DENIED, PublicStatus.DENIED),
        (Status.CANCELLED, PublicStatus.REVOKED),
    ],
)
def test_public_status(status: Status, expected: PublicStatus) -> None:
    assert public_status(status) is expected


def test_unverified_requests_expire_publicly() -> None:
    assert public_status(Status.IDENTITY_PENDING, verification_expired=True) is PublicStatus.EXPIRED

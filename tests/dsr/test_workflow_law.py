"""The request workflow against its specification, written by hand from the law.

The table below is the specification: it is written out literally and never derived from
``cdlm.dsr.workflow.TRANSITIONS``, so a move added to (or removed from) the code's table is
caught here. Every (from, to) pair of statuses is checked against it.

Where each move comes from:

- GDPR Art. 12(2) and 12(6), Art. 11(2), CCPA regulations (11 CCR §7060-7062): a request is
  answered only for a requester whose identity is confirmed; an opt-out of sale or sharing
  needs no verification (11 CCR §7026), and staff who file a request received by letter or
  phone record how they checked the identity. Nothing is approved before that.
- GDPR Art. 12(4) and 12(5), Art. 17(3), CCPA §1798.145: the controller may refuse (deny) a
  request, with its reasons, when the identity cannot be confirmed, the request is manifestly
  unfounded or excessive, or an exception applies. That is decided before the work starts.
- A requester may withdraw a request until it is carried out (cancelled); a request never
  verified is closed the same way. A request whose erasure has begun cannot be withdrawn
  half-done: it completes, fails (and is retried) or stops on a legal hold.
- A legal hold (GDPR Art. 17(3)(e), legal claims) suspends the work; when it ends the request
  goes back to approved and is run again by its own decision, never straight back to work.
- Completed, denied and cancelled requests are closed: nothing moves them again.
"""

from __future__ import annotations

import itertools

import pytest

from cdlm.core.errors import ErrorCode, InvalidStateTransition
from cdlm.dsr.workflow import (
    FINAL,
    WAITING_ON_REQUESTER,
    PublicStatus,
    Status,
    check_transition,
    public_status,
)

pytestmark = pytest.mark.pure

S = Status

#: The specification: every move the workflow allows. Anything else is refused.
LAW: dict[Status, set[Status]] = {
    # Received: a code is sent, or the identity is already checked (staff filing) or not
    # needed (opt-out of sale); a request may be refused or withdrawn at once.
    S.RECEIVED: {S.IDENTITY_PENDING, S.VERIFIED, S.DENIED, S.CANCELLED},
    # Waiting for the code: verified, refused (identity not confirmed) or withdrawn/expired.
    S.IDENTITY_PENDING: {S.VERIFIED, S.DENIED, S.CANCELLED},
    # Verified: staff decide (approve, deny, cancel) or a legal hold stops it first.
    S.VERIFIED: {S.APPROVED, S.DENIED, S.CANCELLED, S.ON_HOLD},
    # Approved: carried out, held, or withdrawn before the work starts.
    S.APPROVED: {S.IN_PROGRESS, S.ON_HOLD, S.CANCELLED},
    # Running: it ends done or failed, or a legal hold stops it; no withdrawal half-done.
    S.IN_PROGRESS: {S.COMPLETED, S.FAILED, S.ON_HOLD},
    # Failed: run again (resumes) or given up.
    S.FAILED: {S.IN_PROGRESS, S.CANCELLED},
    # On hold: back to approved when the hold ends, or withdrawn.
    S.ON_HOLD: {S.APPROVED, S.CANCELLED},
    # Closed.
    S.COMPLETED: set(),
    S.DENIED: set(),
    S.CANCELLED: set(),
}

#: How each status reads in messages.
WORDS: dict[Status, str] = {
    S.RECEIVED: "received",
    S.IDENTITY_PENDING: "identity pending",
    S.VERIFIED: "verified",
    S.APPROVED: "approved",
    S.IN_PROGRESS: "in progress",
    S.COMPLETED: "completed",
    S.DENIED: "denied",
    S.CANCELLED: "cancelled",
    S.ON_HOLD: "on hold",
    S.FAILED: "failed",
}

#: What the requester sees (Data Rights Protocol), with the verification still valid.
PUBLIC: dict[Status, PublicStatus] = {
    S.RECEIVED: PublicStatus.OPEN,
    S.IDENTITY_PENDING: PublicStatus.OPEN,
    S.VERIFIED: PublicStatus.OPEN,
    S.APPROVED: PublicStatus.OPEN,
    S.IN_PROGRESS: PublicStatus.IN_PROGRESS,
    S.ON_HOLD: PublicStatus.IN_PROGRESS,
    S.FAILED: PublicStatus.IN_PROGRESS,
    S.COMPLETED: PublicStatus.FULFILLED,
    S.DENIED: PublicStatus.DENIED,
    S.CANCELLED: PublicStatus.REVOKED,
}

#: ... and once the verification expired: only a request waiting for its code expires.
PUBLIC_EXPIRED: dict[Status, PublicStatus] = {**PUBLIC, S.IDENTITY_PENDING: PublicStatus.EXPIRED}

ALL_PAIRS = [(a, b) for a in Status for b in Status]
ALLOWED = [(a, b) for a, b in ALL_PAIRS if b in LAW[a]]
REFUSED = [(a, b) for a, b in ALL_PAIRS if b not in LAW[a]]


def _ids(pair: tuple[Status, Status]) -> str:
    return f"{pair[0].value}->{pair[1].value}"


def refusal(current: Status, target: Status) -> InvalidStateTransition:
    """The refusal of a move asked for by the input field ``input.status``."""
    with pytest.raises(InvalidStateTransition) as caught:
        check_transition(current, target, "input.status")
    return caught.value


# ----------------------------------------------------------------- the specification itself


def test_the_specification_covers_every_status_with_the_exact_value_set() -> None:
    assert set(LAW) == set(Status)
    assert set(WORDS) == set(Status)
    assert set(PUBLIC) == set(Status)
    assert {s.value for s in Status} == {
        "received",
        "identity_pending",
        "verified",
        "approved",
        "in_progress",
        "completed",
        "denied",
        "cancelled",
        "on_hold",
        "failed",
    }
    assert len(ALLOWED) == 21
    assert len(REFUSED) == 100 - 21


# ------------------------------------------------------------------- every pair of statuses


@pytest.mark.parametrize("pair", ALLOWED, ids=_ids)
def test_an_allowed_move_passes(pair: tuple[Status, Status]) -> None:
    current, target = pair
    assert check_transition(current, target) is None


@pytest.mark.parametrize("pair", REFUSED, ids=_ids)
def test_every_other_move_is_refused_naming_both_statuses(pair: tuple[Status, Status]) -> None:
    current, target = pair
    error = refusal(current, target)
    assert error.code is ErrorCode.INVALID_STATE
    assert error.field == "input.status"
    assert error.issues == []
    assert error.message == (f"A request that is {WORDS[current]} cannot become {WORDS[target]}.")
    assert str(error) == error.message


# ------------------------------------------------------- moves the law forbids, by name


@pytest.mark.parametrize("unverified", [S.RECEIVED, S.IDENTITY_PENDING])
def test_no_approval_without_a_verified_identity(unverified: Status) -> None:
    error = refusal(unverified, S.APPROVED)
    assert error.code is ErrorCode.INVALID_STATE
    assert error.message == f"A request that is {WORDS[unverified]} cannot become approved."


@pytest.mark.parametrize("unverified", [S.RECEIVED, S.IDENTITY_PENDING])
def test_no_work_and_no_hold_on_an_unverified_request(unverified: Status) -> None:
    for target in (S.IN_PROGRESS, S.COMPLETED, S.FAILED, S.ON_HOLD):
        assert refusal(unverified, target).code is ErrorCode.INVALID_STATE


def test_no_execution_without_approval() -> None:
    error = refusal(S.VERIFIED, S.IN_PROGRESS)
    assert error.message == "A request that is verified cannot become in progress."
    assert refusal(S.VERIFIED, S.COMPLETED).code is ErrorCode.INVALID_STATE


def test_a_request_on_hold_goes_back_to_approved_never_straight_to_work() -> None:
    error = refusal(S.ON_HOLD, S.IN_PROGRESS)
    assert error.message == "A request that is on hold cannot become in progress."
    assert check_transition(S.ON_HOLD, S.APPROVED) is None
    assert check_transition(S.APPROVED, S.IN_PROGRESS) is None


def test_a_failed_request_completes_only_by_running_again() -> None:
    error = refusal(S.FAILED, S.COMPLETED)
    assert error.message == "A request that is failed cannot become completed."
    assert check_transition(S.FAILED, S.IN_PROGRESS) is None
    assert check_transition(S.IN_PROGRESS, S.COMPLETED) is None


def test_a_running_request_cannot_be_withdrawn_half_done() -> None:
    assert refusal(S.IN_PROGRESS, S.CANCELLED).field == "input.status"
    assert refusal(S.IN_PROGRESS, S.DENIED).field == "input.status"


def test_a_decision_is_not_taken_back() -> None:
    # Approved requests are not denied afterwards, nor sent back for verification.
    for target in (S.DENIED, S.VERIFIED, S.IDENTITY_PENDING, S.RECEIVED):
        assert refusal(S.APPROVED, target).code is ErrorCode.INVALID_STATE


@pytest.mark.parametrize("closed", [S.COMPLETED, S.DENIED, S.CANCELLED])
def test_closed_requests_never_move_again(closed: Status) -> None:
    for target in Status:
        error = refusal(closed, target)
        assert error.message.startswith(f"A request that is {WORDS[closed]} cannot become ")


def test_a_denied_request_is_final() -> None:
    assert S.DENIED in FINAL
    for target in (S.APPROVED, S.IN_PROGRESS, S.RECEIVED, S.VERIFIED, S.CANCELLED):
        assert refusal(S.DENIED, target).code is ErrorCode.INVALID_STATE


@pytest.mark.parametrize("status", list(Status), ids=lambda s: s.value)
def test_a_status_never_moves_to_itself(status: Status) -> None:
    error = refusal(status, status)
    word = WORDS[status]
    assert error.message == f"A request that is {word} cannot become {word}."


def test_the_full_lifecycle_paths_of_the_readme() -> None:
    paths = [
        # submitted, code checked, approved, carried out
        [S.RECEIVED, S.IDENTITY_PENDING, S.VERIFIED, S.APPROVED, S.IN_PROGRESS, S.COMPLETED],
        # opt-out of sale (no verification) or a staff filing with the identity checked
        [S.RECEIVED, S.VERIFIED, S.APPROVED, S.IN_PROGRESS, S.COMPLETED],
        # a failure retried, then a legal hold that ends
        [S.APPROVED, S.IN_PROGRESS, S.FAILED, S.IN_PROGRESS, S.ON_HOLD, S.APPROVED],
        # never verified within 30 days
        [S.RECEIVED, S.IDENTITY_PENDING, S.CANCELLED],
    ]
    for path in paths:
        for current, target in itertools.pairwise(path):
            check_transition(current, target)


# ---------------------------------------------------------------------- the named sets


def test_final_statuses() -> None:
    assert frozenset({S.COMPLETED, S.DENIED, S.CANCELLED}) == FINAL
    assert isinstance(FINAL, frozenset)


def test_only_a_request_waiting_for_its_code_waits_on_the_requester() -> None:
    assert frozenset({S.IDENTITY_PENDING}) == WAITING_ON_REQUESTER
    assert isinstance(WAITING_ON_REQUESTER, frozenset)


# ---------------------------------------------------------------------- the public view


@pytest.mark.parametrize("status", list(Status), ids=lambda s: s.value)
def test_public_status(status: Status) -> None:
    assert public_status(status) is PUBLIC[status]
    assert public_status(status, verification_expired=False) is PUBLIC[status]


@pytest.mark.parametrize("status", list(Status), ids=lambda s: s.value)
def test_public_status_once_the_verification_expired(status: Status) -> None:
    assert public_status(status, verification_expired=True) is PUBLIC_EXPIRED[status]


def test_the_public_statuses_are_those_of_the_data_rights_protocol() -> None:
    assert {p.value for p in PublicStatus} == {
        "open",
        "in_progress",
        "fulfilled",
        "denied",
        "revoked",
        "expired",
    }
    assert set(PUBLIC.values()) | set(PUBLIC_EXPIRED.values()) == set(PublicStatus)

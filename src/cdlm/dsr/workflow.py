"""The workflow of a data subject request: internal states, allowed moves, public status.

Internal states follow the work (received → identity pending → verified → approved → in
progress → completed, plus denied, cancelled, on hold for a legal hold, and failed, which may be
retried). Requesters see the Data Rights Protocol's simpler status.
"""

from __future__ import annotations

from enum import StrEnum

from cdlm.core.errors import InvalidStateTransition


class Status(StrEnum):
    """Where a request is in its workflow."""

    RECEIVED = "received"
    IDENTITY_PENDING = "identity_pending"
    VERIFIED = "verified"
    APPROVED = "approved"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    DENIED = "denied"
    CANCELLED = "cancelled"
    ON_HOLD = "on_hold"
    FAILED = "failed"


class PublicStatus(StrEnum):
    """What the requester sees (Data Rights Protocol statuses)."""

    OPEN = "open"
    IN_PROGRESS = "in_progress"
    FULFILLED = "fulfilled"
    DENIED = "denied"
    REVOKED = "revoked"
    EXPIRED = "expired"


FINAL: frozenset[Status] = frozenset({Status.COMPLETED, Status.DENIED, Status.CANCELLED})

#: Every allowed move; anything else is refused.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.RECEIVED: frozenset(
        {Status.IDENTITY_PENDING, Status.VERIFIED, Status.DENIED, Status.CANCELLED}
    ),
    Status.IDENTITY_PENDING: frozenset({Status.VERIFIED, Status.DENIED, Status.CANCELLED}),
    Status.VERIFIED: frozenset({Status.APPROVED, Status.DENIED, Status.CANCELLED, Status.ON_HOLD}),
    Status.APPROVED: frozenset({Status.IN_PROGRESS, Status.ON_HOLD, Status.CANCELLED}),
    Status.IN_PROGRESS: frozenset({Status.COMPLETED, Status.FAILED, Status.ON_HOLD}),
    Status.FAILED: frozenset({Status.IN_PROGRESS, Status.CANCELLED}),
    Status.ON_HOLD: frozenset({Status.APPROVED, Status.CANCELLED}),
    Status.COMPLETED: frozenset(),
    Status.DENIED: frozenset(),
    Status.CANCELLED: frozenset(),
}

#: States in which the legal clock stops because the request waits on the requester.
WAITING_ON_REQUESTER: frozenset[Status] = frozenset({Status.IDENTITY_PENDING})


def check_transition(current: Status, target: Status, field: str | None = None) -> None:
    """Refuse a move the workflow does not allow (nothing changes); ``field`` is the input
    path that asked for ``target``, when one did."""
    if target not in TRANSITIONS[current]:
        raise InvalidStateTransition(
            f"A request that is {current.value.replace('_', ' ')} cannot become "
            f"{target.value.replace('_', ' ')}.",
            field=field,
        )


def public_status(status: Status, *, verification_expired: bool = False) -> PublicStatus:
    """The requester's view of ``status``."""
    if status is Status.IDENTITY_PENDING and verification_expired:
        return PublicStatus.EXPIRED
    if status in (Status.RECEIVED, Status.IDENTITY_PENDING, Status.VERIFIED, Status.APPROVED):
        return PublicStatus.OPEN
    if status in (Status.IN_PROGRESS, Status.ON_HOLD, Status.FAILED):
        return PublicStatus.IN_PROGRESS
    if status is Status.COMPLETED:
        return PublicStatus.FULFILLED
    if status is Status.DENIED:
        return PublicStatus.DENIED
    return PublicStatus.REVOKED

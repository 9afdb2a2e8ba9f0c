"""Staff privacy training: the courses each staff user completed and until when they count,
the current one, coverage per role, and the one decision whether a role's access to personal
data is held back for want of current training (``CDLM_REQUIRE_TRAINING``).

API keys are machines: no training applies to them (nor to the system acting on its own)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from cdlm.audit import service as audit
from cdlm.auth.models import StaffTraining, StaffUser
from cdlm.core import clock, periods
from cdlm.core.errors import ErrorCode, FieldIssue, NotFound, ValidationFailed
from cdlm.core.principal import Principal
from cdlm.core.roles import Role
from cdlm.core.text import has_control_characters

MAX_COURSE_LENGTH = 200
#: Longest validity of a training, and how long ago it may have been completed: 10 years (the
#: longest 10 calendar years are: 3,653 days).
MAX_YEARS = 10
MAX_SPAN = timedelta(days=3_653)


@dataclass(frozen=True)
class TrainingInput:
    """A completed privacy training to record for staff user ``staff_user_id``."""

    staff_user_id: uuid.UUID
    course: str
    completed_at: datetime
    valid_until: datetime


@dataclass(frozen=True)
class RoleCoverage:
    """How many active staff users of a role there are, and how many have current training."""

    role: Role
    staff_users: int
    trained: int
    required: bool

    @property
    def share(self) -> float | None:
        """Trained staff users over all of the role's, 4 decimals (None: nobody has it)."""
        return round(self.trained / self.staff_users, 4) if self.staff_users else None

    def as_json(self) -> dict[str, object]:
        """The coverage as JSON-ready data, its share included."""
        return {
            "role": self.role.value,
            "staff_users": self.staff_users,
            "trained": self.trained,
            "share": self.share,
            "required": self.required,
        }


def refusal(role: Role, valid_until: datetime | None, now: datetime) -> str | None:
    """Why a staff user of ``role`` (whose role requires training) may not access personal
    data ``now``, given when their latest completed training stops counting; None when it is
    current. Says what is required and until when the last training counted; no personal
    data."""
    if valid_until is not None and valid_until > now:
        return None
    required = f"Privacy training is required for the {role.value} role to access personal data"
    if valid_until is None:
        return f"{required}, and none is recorded for you: ask an admin or privacy officer."
    return f"{required}; yours was valid until {valid_until.isoformat()} and has expired."


def current(trainings: Sequence[StaffTraining], now: datetime) -> StaffTraining | None:
    """The training that counts ``now`` (completed, not yet expired), the one valid longest."""
    valid = [t for t in trainings if t.completed_at <= now < t.valid_until]
    return max(valid, key=lambda t: (t.valid_until, t.completed_at), default=None)


async def latest_valid_until(user_id: uuid.UUID, now: datetime) -> datetime | None:
    """Until when the staff user's completed trainings count (the latest end; one query)."""
    rows = await get_connection("default").execute_query_dict(
        'SELECT max("valid_until") AS until FROM "staff_trainings" '
        'WHERE "user_id" = $1 AND "completed_at" <= $2',
        [user_id, now],
    )
    found: datetime | None = rows[0]["until"] if rows else None
    return found


def _issues(given: TrainingInput, now: datetime) -> list[FieldIssue]:
    issues: list[FieldIssue] = []
    course = given.course.strip()
    if not course:
        issues.append(FieldIssue("input.course", ErrorCode.VALIDATION, "Name the course."))
    elif len(course) > MAX_COURSE_LENGTH or has_control_characters(course):
        issues.append(
            FieldIssue(
                "input.course",
                ErrorCode.VALIDATION,
                f"A course name has at most {MAX_COURSE_LENGTH} characters and no control "
                "or text direction characters.",
            )
        )
    moments: dict[str, datetime] = {}
    for name, moment in (("completedAt", given.completed_at), ("validUntil", given.valid_until)):
        issue = periods.moment_issue(moment, f"input.{name}")
        if issue is not None:
            issues.append(issue)
        else:
            moments[name] = moment.astimezone(UTC)
    if issues:
        return issues
    completed_at, valid_until = moments["completedAt"], moments["validUntil"]
    if completed_at > now:
        issues.append(
            FieldIssue(
                "input.completedAt",
                ErrorCode.IMPLAUSIBLE,
                "A training cannot be completed in the future.",
            )
        )
    elif completed_at < now - MAX_SPAN:
        issues.append(
            FieldIssue(
                "input.completedAt",
                ErrorCode.IMPLAUSIBLE,
                f"A training completed more than {MAX_YEARS} years ago cannot be recorded.",
            )
        )
    if valid_until <= completed_at:
        issues.append(
            FieldIssue(
                "input.validUntil",
                ErrorCode.IMPLAUSIBLE,
                "A training is valid until a moment after its completion.",
            )
        )
    elif valid_until - completed_at > MAX_SPAN:
        issues.append(
            FieldIssue(
                "input.validUntil",
                ErrorCode.IMPLAUSIBLE,
                f"A training is valid for at most {MAX_YEARS} years after its completion.",
            )
        )
    return issues


async def record_training(actor: Principal, given: TrainingInput) -> StaffTraining:
    """Record a completed training (audited); refused for an unknown or deactivated staff
    user, an empty course, a completion in the future or more than 10 years ago, or a validity
    not ending after the completion or longer than 10 years."""
    now = clock.now()
    issues = _issues(given, now)
    if issues:
        raise ValidationFailed.from_issues(issues)
    if not await StaffUser.exists(id=given.staff_user_id, active=True):
        raise NotFound("No active staff user has this id.", field="input.staffUserId")
    async with in_transaction():
        row = await StaffTraining.create(
            id=uuid.uuid4(),
            user_id=given.staff_user_id,
            course=" ".join(given.course.split()),
            completed_at=given.completed_at,
            valid_until=given.valid_until,
            recorded_at=now,
        )
        await audit.record(
            actor, "staff_training.record", target_type="staff_user", target_id=given.staff_user_id
        )
    return row


async def trainings_by_users(ids: Sequence[uuid.UUID]) -> list[list[StaffTraining]]:
    """Each staff user's trainings, latest completed first (one query)."""
    found: dict[uuid.UUID, list[StaffTraining]] = {i: [] for i in ids}
    rows = await StaffTraining.filter(user_id__in=list(ids)).order_by("-completed_at", "id")
    for row in rows:
        found[row.user_id].append(row)  # type: ignore[attr-defined]
    return [found[i] for i in ids]


async def trainings_by_ids(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, StaffTraining]:
    """Trainings by id (one query)."""
    return {row.id: row for row in await StaffTraining.filter(id__in=list(ids))}


async def coverage(required: frozenset[Role], now: datetime) -> list[RoleCoverage]:
    """Per role (every role, in the enum's order): active staff users, those with current
    training, and whether the role requires it (one query)."""
    rows = await get_connection("default").execute_query_dict(
        'SELECT u."role" AS role, count(*) AS staff, count(*) FILTER (WHERE EXISTS ('
        'SELECT 1 FROM "staff_trainings" t WHERE t."user_id" = u."id" '
        'AND t."completed_at" <= $1 AND t."valid_until" > $1)) AS trained '
        'FROM "staff_users" u WHERE u."active" GROUP BY u."role"',
        [now],
    )
    counts = {str(row["role"]): (int(row["staff"]), int(row["trained"])) for row in rows}
    return [
        RoleCoverage(role, *counts.get(role.value, (0, 0)), required=role in required)
        for role in Role
    ]

"""Retention policies: for a category of data, a period, what it counts from, and what
happens then. Managed by privacy officers; every change is audited."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from cdlm.audit import service as audit
from cdlm.core import clock
from cdlm.core.errors import Conflict, ErrorCode, FieldIssue, NotFound, ValidationFailed
from cdlm.core.locks import lock_names
from cdlm.core.principal import Principal
from cdlm.core.text import text_problem
from cdlm.retention.categories import SPECS, spec_for
from cdlm.retention.models import Action, RetentionPolicy, Trigger

MAX_PERIOD_DAYS = 36_500  # a century


def _issues(
    category: str, period_days: int, trigger: Trigger, action: Action, description: str
) -> list[FieldIssue]:
    spec = spec_for(category)
    if spec is None:
        known = ", ".join([*SPECS, "events.<type>"])
        return [FieldIssue("input.category", ErrorCode.UNKNOWN_CODE, f"Categories are: {known}.")]
    issues = []
    if not 1 <= period_days <= MAX_PERIOD_DAYS:
        issues.append(
            FieldIssue("input.periodDays", ErrorCode.IMPLAUSIBLE, f"1 to {MAX_PERIOD_DAYS} days.")
        )
    if trigger not in spec.triggers:
        allowed = ", ".join(sorted(t.name for t in spec.triggers))
        issues.append(
            FieldIssue("input.trigger", ErrorCode.VALIDATION, f"This category counts {allowed}.")
        )
    if action not in spec.actions:
        allowed = ", ".join(sorted(a.name for a in spec.actions))
        issues.append(
            FieldIssue("input.action", ErrorCode.VALIDATION, f"This category allows {allowed}.")
        )
    if text_problem(description) or len(description) > 500:
        issues.append(
            FieldIssue("input.description", ErrorCode.TOO_LONG, "At most 500 characters of text.")
        )
    return issues


async def create_policy(
    actor: Principal,
    *,
    category: str,
    period_days: int,
    trigger: Trigger,
    action: Action,
    description: str = "",
) -> RetentionPolicy:
    """Declare how long ``category`` is kept (one policy per category)."""
    issues = _issues(category, period_days, trigger, action, description)
    if issues:
        raise ValidationFailed.from_issues(issues)
    async with in_transaction():
        await lock_names([f"retention.policy:{category}"])  # concurrent creates: one wins
        if await RetentionPolicy.exists(category=category):
            raise Conflict("This category has a policy; change it instead.", field="input.category")
        now = clock.now()
        policy = await RetentionPolicy.create(
            id=uuid.uuid4(),
            category=category,
            period_days=period_days,
            trigger=trigger,
            action=action,
            description=description.strip(),
            created_at=now,
            updated_at=now,
        )
        await audit.record(
            actor, "retention.policy.create", target_type="retention_policy", target_id=policy.id
        )
    return policy


@dataclass(frozen=True)
class PolicyChange:
    """A change to a retention policy: what is None stays as it is."""

    policy_id: uuid.UUID
    period_days: int | None = None
    trigger: Trigger | None = None
    action: Action | None = None
    description: str | None = None
    active: bool | None = None


async def update_policy(actor: Principal, change: PolicyChange) -> RetentionPolicy:
    """Change a policy; the next sweep applies it (sweeps keep the policy they started with)."""
    async with in_transaction():
        policy = await RetentionPolicy.filter(id=change.policy_id).select_for_update().first()
        if policy is None:
            raise NotFound("No retention policy has this id.", field="input.id")
        new_period = change.period_days if change.period_days is not None else policy.period_days
        new_trigger = change.trigger or policy.trigger
        new_action = change.action or policy.action
        described = change.description
        new_description = (described if described is not None else policy.description).strip()
        issues = _issues(policy.category, new_period, new_trigger, new_action, new_description)
        if issues:
            raise ValidationFailed.from_issues(issues)
        given = {
            "period_days": change.period_days,
            "trigger": change.trigger,
            "action": change.action,
            "description": change.description,
            "active": change.active,
        }
        policy.period_days = new_period
        policy.trigger = new_trigger
        policy.action = new_action
        policy.description = new_description
        if change.active is not None:
            policy.active = change.active
        policy.updated_at = clock.now()
        await policy.save()
        await audit.record(
            actor,
            "retention.policy.update",
            target_type="retention_policy",
            target_id=policy.id,
            fields=[name for name, value in given.items() if value is not None],
        )
    return policy


async def active_policies() -> list[RetentionPolicy]:
    """Policies in force, by category."""
    return list(await RetentionPolicy.filter(active=True).order_by("category"))


async def all_policies() -> list[RetentionPolicy]:
    """Every policy, by category."""
    return list(await RetentionPolicy.all().order_by("category"))


@dataclass(frozen=True)
class PolicyFilter:
    """Which policies to list: every criterion given must hold. ``category`` ``events``
    covers the general event policy and those of single event types."""

    category: str | None = None
    active: bool | None = None


def policies_query(criteria: PolicyFilter) -> QuerySet[RetentionPolicy]:
    """The policies meeting ``criteria``, unordered (the caller pages them by category)."""
    query = RetentionPolicy.all()
    if criteria.category == "events":
        query = query.filter(Q(category="events") | Q(category__startswith="events."))
    elif criteria.category is not None:
        query = query.filter(category=criteria.category)
    if criteria.active is not None:
        query = query.filter(active=criteria.active)
    return query


async def policies_by_ids(ids: list[uuid.UUID]) -> dict[uuid.UUID, RetentionPolicy]:
    """Policies by id (one query)."""
    return {p.id: p for p in await RetentionPolicy.filter(id__in=list(set(ids)))}


async def policy_of(policy_id: uuid.UUID) -> RetentionPolicy | None:
    """One policy, or None."""
    return await RetentionPolicy.get_or_none(id=policy_id)


def describe(policy: RetentionPolicy) -> str:
    """A policy in words: ``events.purchase: archive 3650 days since collection``."""
    trigger = policy.trigger.value.replace("_", " ")
    state = "" if policy.active else " (inactive)"
    return f"{policy.category}: {policy.action.value} {policy.period_days} days {trigger}{state}"


async def summaries() -> list[tuple[str, bool, str]]:
    """(category, active, description in words) of every policy."""
    return [(p.category, p.active, describe(p)) for p in await all_policies()]

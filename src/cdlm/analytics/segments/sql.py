"""A segment definition compiled to one parameterised SQL statement.

The statement reads ``customers`` left-joined to ``customer_attributes``, with ``EXISTS`` and
aggregate subqueries over ``events``: only columns kept in clear, never a sealed value. Every
value of the definition is a bind parameter (``$n``); the only text written into the
statement is column names taken from cdlm's own attribute table, never from the input.

Customers whose processing is restricted, who were erased or merged into another profile are
never members, whatever the definition says. Each leaf is made two-valued
(``COALESCE(..., false)``), so ``not`` of a condition on a missing attribute holds: a customer
without a country is among "not country DE". Consent conditions compile to ``TRUE``: the
service applies them afterwards through the consent service's one check.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cdlm.analytics.segments.definition import (
    AllOf,
    AnyOf,
    Condition,
    Definition,
    DidEvent,
    EventAmount,
    EventCount,
    MayProcess,
    NotThis,
    QualityBetween,
    ScoreIs,
    StageIs,
    TextIs,
)
from cdlm.customers.models import ANALYSABLE

_FROM = (
    "FROM customers AS c LEFT JOIN customer_attributes AS a ON a.customer_id = c.id "
    f"WHERE {ANALYSABLE}"
)


@dataclass
class _Statement:
    now: datetime
    arguments: list[Any] = field(default_factory=list)

    def bind(self, value: Any, cast: str) -> str:
        self.arguments.append(value)
        return f"${len(self.arguments)}::{cast}"

    def events(self, kind: str, days: int, extra: str = "") -> str:
        since = self.bind(self.now - timedelta(days=days), "timestamptz")
        return (
            f"FROM events AS e WHERE e.customer_id = c.id AND e.type = {self.bind(kind, 'text')} "
            f"AND e.occurred_at >= {since}{extra}"
        )

    def bounds(self, expression: str, low: Any, high: Any, cast: str) -> str:
        parts = []
        if low is not None:
            parts.append(f"{expression} >= {self.bind(low, cast)}")
        if high is not None:
            parts.append(f"{expression} <= {self.bind(high, cast)}")
        return " AND ".join(parts)

    def condition(self, condition: Condition) -> str:
        match condition:
            case AllOf(conditions):
                return "(" + " AND ".join(self.condition(c) for c in conditions) + ")"
            case AnyOf(conditions):
                return "(" + " OR ".join(self.condition(c) for c in conditions) + ")"
            case NotThis(inner):
                return f"(NOT {self.condition(inner)})"
            case MayProcess():
                return "TRUE"
            case _:
                return f"COALESCE({self.leaf(condition)}, false)"

    def leaf(self, condition: Condition) -> str:
        match condition:
            case TextIs(values=values):
                return f"a.{condition.column} = ANY({self.bind(list(values), 'text[]')})"
            case ScoreIs(values=values, at_least=low, at_most=high):
                column = f"a.{condition.column}::float8"
                if values is not None:
                    return f"{column} = ANY({self.bind(list(values), 'float8[]')})"
                return self.bounds(column, low, high, "float8")
            case StageIs(stages):
                return f"c.lifecycle_stage = ANY({self.bind([s.value for s in stages], 'text[]')})"
            case QualityBetween(low, high):
                return self.bounds("c.quality_score", low, high, "float8")
            case DidEvent(kind, days, did):
                exists = f"EXISTS (SELECT 1 {self.events(kind, days)})"
                return exists if did else f"NOT {exists}"
            case EventCount(kind, days, low, high):
                count = f"(SELECT count(*) {self.events(kind, days)})"
                return self.bounds(count, low, high, "bigint")
            case EventAmount(kind, days, currency, low, high):
                currency_is = f" AND e.currency = {self.bind(currency, 'text')}"
                events = self.events(kind, days, currency_is)
                total = f"(SELECT COALESCE(sum(e.amount), 0) {events})"
                return self.bounds(total, low, high, "numeric")
        raise TypeError(f"not a leaf condition: {condition!r}")


@dataclass(frozen=True)
class Compiled:
    """A statement and its bind arguments, for ``execute_query_dict``."""

    statement: str
    arguments: list[Any]


def count(definition: Definition, now: datetime) -> Compiled:
    """How many customers the SQL part of ``definition`` selects (consent not applied)."""
    built = _Statement(now)
    where = built.condition(definition.condition)
    return Compiled(f"SELECT count(*) AS n {_FROM} AND {where}", built.arguments)


def member_ids(
    definition: Definition,
    now: datetime,
    *,
    limit: int,
    after: uuid.UUID | None = None,
    before: uuid.UUID | None = None,
    backwards: bool = False,
) -> Compiled:
    """Ids of customers the SQL part selects, keyset-paged on the customer id: the first
    ``limit`` after ``after`` (and before ``before``), or with ``backwards`` the last ``limit``
    before ``before``, nearest first."""
    built = _Statement(now)
    where = built.condition(definition.condition)
    if after is not None:
        where += f" AND c.id > {built.bind(after, 'uuid')}"
    if before is not None:
        where += f" AND c.id < {built.bind(before, 'uuid')}"
    direction = "DESC" if backwards else "ASC"
    size = built.bind(limit, "bigint")
    return Compiled(
        f"SELECT c.id {_FROM} AND {where} ORDER BY c.id {direction} LIMIT {size}",
        built.arguments,
    )

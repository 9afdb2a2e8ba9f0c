"""The statements of funnels, top paths and journeys, built from fixed fragments.

Only fixed text is joined in (the number of steps decides how many ``LATERAL`` joins a funnel
has); every value is a bind parameter (``$n``). Every statement reads the clear columns of
``events`` (type, channel, time, id) and the customer's status columns, never a sealed value.

"After" means later in a customer's journey order: by ``occurred_at``, then by event id for
events at the same instant (the order ``Customer.journey`` shows). Customers whose processing
is restricted, who were erased or merged into another profile are left out of funnels and
paths, as the analytics run leaves them out.
"""

# ruff: noqa: S608 -- statements join fixed fragments only; every value is a bind parameter.
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from cdlm.customers.models import ANALYSABLE

#: Which of the given types have at least one stored event: one probe of the
#: ``events (type, occurred_at)`` index per type.
KNOWN_TYPES: Final = (
    "SELECT t.type FROM unnest($1::text[]) AS t(type) "
    "WHERE EXISTS (SELECT 1 FROM events AS e WHERE e.type = t.type)"
)


@dataclass
class _Binds:
    arguments: list[Any] = field(default_factory=list)

    def __call__(self, value: Any, cast: str) -> str:
        self.arguments.append(value)
        return f"${len(self.arguments)}::{cast}"


@dataclass(frozen=True)
class Compiled:
    """A statement and its bind arguments, for ``execute_query_dict``."""

    statement: str
    arguments: list[Any]


def _entries(
    bind: _Binds, step: str, start: datetime, end: datetime, members: list[uuid.UUID] | None
) -> str:
    """Each analysable customer's (or segment member's) first event of type ``step`` in
    ``[start, end)``: one descent of ``events (customer_id, type, occurred_at, id)`` per
    customer, never a sort of all the type's events."""
    joined = ""
    if members is not None:
        joined = f"JOIN unnest({bind(members, 'uuid[]')}) AS m(id) ON m.id = c.id "
    return (
        "SELECT c.id AS customer_id, x.at, x.id, x.type FROM customers AS c "
        f"{joined}"
        "CROSS JOIN LATERAL (SELECT e.occurred_at AS at, e.id, e.type FROM events AS e "
        f"WHERE e.customer_id = c.id AND e.type = {bind(step, 'text')} "
        f"AND e.occurred_at >= {bind(start, 'timestamptz')} "
        f"AND e.occurred_at < {bind(end, 'timestamptz')} "
        "ORDER BY e.occurred_at, e.id LIMIT 1) AS x "
        f"WHERE {ANALYSABLE}"
    )


def funnel(
    steps: tuple[str, ...],
    within: timedelta,
    start: datetime,
    end: datetime,
    members: list[uuid.UUID] | None = None,
) -> Compiled:
    """One row: ``n1`` the customers who entered (first ``steps[0]`` event in
    ``[start, end)``); for each later step ``i`` (from 2), ``n<i>`` those who reached it and
    ``m<i>`` the median seconds from step ``i-1`` (null when nobody reached it).

    Step ``i`` is the first event of its type after step ``i-1``'s event and at most
    ``within`` after the entry: one ``LATERAL`` descent per step and customer of the
    ``events (customer_id, type, occurred_at, id)`` index. ``members`` (segment members) narrows the
    entries when given."""
    bind = _Binds()
    entries = _entries(bind, steps[0], start, end, members)
    window = bind(within, "interval") if len(steps) > 1 else ""
    # Bounds every step's event is within anyway, as constants: they leave out the months of
    # events (and the default partition) outside them when the plan is made, so that each
    # descent reads the months in order and stops at the first event found.
    since = bind(start, "timestamptz") if len(steps) > 1 else ""
    until = bind(end + within, "timestamptz") if len(steps) > 1 else ""
    columns = ["count(*) AS n1"]
    joins = []
    previous = "f"
    for position, step in enumerate(steps[1:], start=2):
        alias = f"s{position}"
        joins.append(
            f"LEFT JOIN LATERAL (SELECT e.occurred_at AS at, e.id FROM events AS e "
            f"WHERE {previous}.at IS NOT NULL AND e.customer_id = f.customer_id "
            f"AND e.type = {bind(step, 'text')} "
            f"AND e.occurred_at >= {previous}.at "
            f"AND (e.occurred_at, e.id) > ({previous}.at, {previous}.id) "
            f"AND e.occurred_at <= f.at + {window} "
            f"AND e.occurred_at >= {since} AND e.occurred_at < {until} "
            f"ORDER BY e.occurred_at, e.id LIMIT 1) AS {alias} ON true"
        )
        columns += [
            f"count({alias}.at) AS n{position}",
            "percentile_cont(0.5) WITHIN GROUP "
            f"(ORDER BY extract(epoch FROM {alias}.at - {previous}.at)) AS m{position}",
        ]
        previous = alias
    statement = f"WITH f AS ({entries}) SELECT {', '.join(columns)} FROM f {' '.join(joins)}"
    return Compiled(statement, bind.arguments)


def top_paths(
    starting_with: str, length: int, start: datetime, end: datetime, limit: int
) -> Compiled:
    """The ``limit`` most common paths: per analysable customer with an event of type
    ``starting_with`` in ``[start, end)``, from their first such event, the types of their
    events in ``[start, end)`` in journey order with consecutive repeats collapsed (view,
    view, cart is view, cart), the first ``length`` of them (fewer when the customer had
    fewer). Rows: ``path`` (text[]), ``customers`` (how many followed it), ``total``
    (customers who started, on every row), most followed first, then by path.

    Each next type is the first event after the previous one whose type differs from it:
    one ``LATERAL`` probe per position and customer on ``events (customer_id,
    occurred_at)``, reading only the events of a run of repeats, never the whole range."""
    bind = _Binds()
    entries = _entries(bind, starting_with, start, end, None)
    until = bind(end, "timestamptz")
    since = bind(start, "timestamptz")  # true of every step anyway: see funnel()
    types = ["f.type"]
    joins = []
    previous = "f"
    for position in range(2, length + 1):
        alias = f"s{position}"
        joins.append(
            f"LEFT JOIN LATERAL (SELECT e.occurred_at AS at, e.id, e.type FROM events AS e "
            f"WHERE {previous}.at IS NOT NULL AND e.customer_id = f.customer_id "
            f"AND e.occurred_at >= {previous}.at "
            f"AND (e.occurred_at, e.id) > ({previous}.at, {previous}.id) "
            f"AND e.occurred_at >= {since} AND e.occurred_at < {until} "
            f"AND e.type <> {previous}.type "
            f"ORDER BY e.occurred_at, e.id LIMIT 1) AS {alias} ON true"
        )
        types.append(f"{alias}.type")
        previous = alias
    statement = (
        f"WITH f AS ({entries}), "
        f"paths AS (SELECT array_remove(ARRAY[{', '.join(types)}]::text[], NULL) AS path "
        f"FROM f {' '.join(joins)}) "
        "SELECT path, count(*) AS customers, sum(count(*)) OVER () AS total FROM paths "
        f"GROUP BY path ORDER BY customers DESC, path LIMIT {bind(limit, 'int')}"
    )
    return Compiled(statement, bind.arguments)


def journeys(
    customers: list[uuid.UUID], size: int, after: tuple[datetime, uuid.UUID] | None
) -> Compiled:
    """A page of each customer's events, oldest first: the ``size`` events after ``after``
    (the cursor's ``(occurred_at, id)``; from the first event without one), with ``gap`` the
    seconds since the event before each (the one at or before ``after`` for the page's
    first; null for the customer's very first event). Rows ordered by customer, then
    journey order. One statement for every customer of a request's page."""
    bind = _Binds()
    ids = bind(customers, "uuid[]")
    limit = bind(size, "int")
    own = "e.customer_id = k.customer_id"
    columns = "e.id, e.type, e.channel, e.occurred_at"
    if after is None:
        window = (
            f"SELECT {columns}, true AS shown FROM events AS e WHERE {own} "
            f"ORDER BY e.occurred_at, e.id LIMIT {limit}"
        )
    else:
        at, event_id = bind(after[0], "timestamptz"), bind(after[1], "uuid")
        window = (
            f"(SELECT {columns}, false AS shown FROM events AS e WHERE {own} "
            f"AND e.occurred_at <= {at} AND (e.occurred_at, e.id) <= ({at}, {event_id}) "
            "ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1) UNION ALL "
            f"(SELECT {columns}, true AS shown FROM events AS e WHERE {own} "
            f"AND e.occurred_at >= {at} AND (e.occurred_at, e.id) > ({at}, {event_id}) "
            f"ORDER BY e.occurred_at, e.id LIMIT {limit})"
        )
    statement = (
        "SELECT k.customer_id, x.id, x.type, x.channel, x.occurred_at, x.gap "
        f"FROM unnest({ids}) AS k(customer_id) CROSS JOIN LATERAL ("
        "SELECT w.*, extract(epoch FROM w.occurred_at - lag(w.occurred_at) "
        "OVER (ORDER BY w.occurred_at, w.id)) AS gap "
        f"FROM ({window}) AS w) AS x WHERE x.shown "
        "ORDER BY k.customer_id, x.occurred_at, x.id"
    )
    return Compiled(statement, bind.arguments)

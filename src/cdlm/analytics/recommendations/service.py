"""Reading personalization for a page of customers: may the purpose use them, what to
recommend, what to do next. SQL and plain Python only (the request path).

Every answer starts from :func:`cdlm.consent.service.answers` for the personalization
purpose, asked once for the whole page; only the customers it permits are read further.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from tortoise.connection import get_connection

from cdlm.analytics.recommendations import rules
from cdlm.analytics.recommendations.models import ItemModel
from cdlm.consent import service as consent
from cdlm.core.errors import NotFound


@dataclass(frozen=True)
class Permission:
    """Whether personalization may use a customer, and if not why."""

    purpose: str
    refusal: rules.Refusal | None

    @property
    def permitted(self) -> bool:
        return self.refusal is None


async def permissions(purpose: str, customer_ids: Sequence[uuid.UUID]) -> list[Permission]:
    """The personalization answer for each customer, in order (a purpose lookup and
    :func:`cdlm.consent.service.answers`: three statements whatever the number)."""
    try:
        found = await consent.purpose(purpose)
    except NotFound:
        return [Permission(purpose, rules.Refusal.PURPOSE_UNDEFINED)] * len(customer_ids)
    answers = await consent.answers(list(customer_ids), [found])
    return [Permission(purpose, rules.refusal_of(answers[i][0])) for i in customer_ids]


class Basis(StrEnum):
    """Where a recommended item comes from."""

    ITEM_SIMILARITY = "item_similarity"
    POPULARITY = "popularity"


@dataclass(frozen=True)
class Recommended:
    """One recommended item: its score and the item of the customer's it came from."""

    item_id: str
    score: float
    because: str | None
    basis: Basis


@dataclass(frozen=True)
class Ask:
    """What recommendations count: which events are purchases and views, and how many items
    to give."""

    purchase_types: frozenset[str]
    view_types: frozenset[str]
    first: int = rules.DEFAULT_RECOMMENDATIONS


#: One statement for a page of customers. A customer's items are their purchases and views
#: with an item id; the RECENT_ITEMS most recent ones (each weighted by its kind and by how
#: long before the customer's latest interaction it was: halving every HALF_LIFE_DAYS) add
#: their neighbours' similarities; items the customer bought are left out; popular items
#: fill the list after the similar ones (and are all of it for a cold start).
_RECOMMENDED = """
WITH items AS (
    SELECT e.customer_id, e.item_id, max(e.occurred_at) AS last_at,
           max(CASE WHEN e.type = ANY($2::text[]) THEN $4::float8 ELSE $5::float8 END) AS weight,
           bool_or(e.type = ANY($2::text[])) AS bought
    FROM events e
    WHERE e.customer_id = ANY($1::uuid[]) AND e.item_id IS NOT NULL
      AND (e.type = ANY($2::text[]) OR e.type = ANY($3::text[]))
    GROUP BY e.customer_id, e.item_id
),
recent AS (
    SELECT i.*, max(i.last_at) OVER (PARTITION BY i.customer_id) AS latest,
           row_number() OVER (PARTITION BY i.customer_id ORDER BY i.last_at DESC, i.item_id) AS n
    FROM items i
),
parts AS (
    SELECT r.customer_id, n.neighbour_id AS item_id, r.item_id AS source,
           r.weight * n.similarity
             * power(0.5, extract(epoch FROM r.latest - r.last_at) / ($6::float8 * 86400.0))
             AS part
    FROM recent r JOIN item_neighbours n ON n.item_id = r.item_id
    WHERE r.n <= $7
),
alike AS (
    SELECT p.customer_id, p.item_id, sum(p.part) AS score,
           (array_agg(p.source ORDER BY p.part DESC, p.source))[1] AS because, 0 AS tier
    FROM parts p
    WHERE NOT EXISTS (SELECT 1 FROM items b
                      WHERE b.customer_id = p.customer_id AND b.item_id = p.item_id AND b.bought)
    GROUP BY p.customer_id, p.item_id
),
popular AS (
    SELECT a.customer_id, p.item_id, p.score, NULL::text AS because, 1 AS tier
    FROM unnest($1::uuid[]) AS a (customer_id) CROSS JOIN popular_items p
    WHERE NOT EXISTS (SELECT 1 FROM items b
                      WHERE b.customer_id = a.customer_id AND b.item_id = p.item_id AND b.bought)
      AND NOT EXISTS (SELECT 1 FROM alike s
                      WHERE s.customer_id = a.customer_id AND s.item_id = p.item_id)
),
ranked AS (
    SELECT x.*, row_number() OVER (PARTITION BY x.customer_id
                                   ORDER BY x.tier, x.score DESC, x.item_id) AS place
    FROM (SELECT * FROM alike UNION ALL SELECT * FROM popular) x
)
SELECT customer_id, item_id, score, because, tier FROM ranked WHERE place <= $8
ORDER BY customer_id, place
"""


async def recommended(
    customer_ids: Sequence[uuid.UUID], ask: Ask
) -> dict[uuid.UUID, list[Recommended]]:
    """The items each customer is likely to want next, best first (one statement; call it
    for permitted customers only)."""
    if not customer_ids:
        return {}
    weights = rules.WEIGHTS
    rows = await get_connection("default").execute_query_dict(
        _RECOMMENDED,
        [
            list(dict.fromkeys(customer_ids)),
            sorted(ask.purchase_types),
            sorted(ask.view_types),
            weights.purchase,
            weights.view,
            rules.HALF_LIFE_DAYS,
            rules.RECENT_ITEMS,
            ask.first,
        ],
    )
    found: dict[uuid.UUID, list[Recommended]] = {i: [] for i in customer_ids}
    for row in rows:
        found[row["customer_id"]].append(
            Recommended(
                row["item_id"],
                float(row["score"]),
                row["because"],
                Basis.ITEM_SIMILARITY if row["tier"] == 0 else Basis.POPULARITY,
            )
        )
    return found


async def latest_model() -> ItemModel | None:
    """The evidence of the newest build of the item model (None: never built)."""
    return await ItemModel.all().order_by("-built_at").first()

"""The item-to-item model, built by every analytics run (a job: numpy and scipy).

Item-based collaborative filtering (Sarwar, Karypis, Konstan & Riedl, "Item-based
collaborative filtering recommendation algorithms", WWW 2001; Linden, Smith & York,
"Amazon.com recommendations: item-to-item collaborative filtering", IEEE Internet Computing
7(1), 2003): each item is the vector of the customers' interaction weights with it, and two
items are as similar as the cosine of their vectors,

    sim(i, j) = sum_u w(u,i) w(u,j) / (sqrt(sum_u w(u,i)^2) * sqrt(sum_u w(u,j)^2)),

where w(u,i) is the largest weight of customer u's interactions with item i (a purchase
outweighs a view: :class:`~cdlm.analytics.recommendations.rules.Weights`). Cosine discounts
items that are merely popular (their long vectors), which raw co-occurrence counts do not.

The run

1. reads, in ONE SQL aggregate over the clear ``events.item_id`` column, every (customer,
   item) weight of purchases and views in the window before the run's as-of moment, for
   customers who may be analysed (restricted, erased and merged-away left out, as the
   scores are);
2. keeps only customers whom :func:`cdlm.consent.service.answers` permits for the
   personalization purpose: a customer who refused it is not personalized and does not train
   what personalizes others (no purpose defined: no model);
3. computes the co-occurrence matrix as a sparse product, keeps per item its ``neighbours``
   most similar items shared by at least ``min_customers`` customers, and the most popular
   items (the cold-start answer);
4. replaces the model's tables in one transaction (readers see the old model or the new one)
   and records the build's evidence.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse
from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from cdlm.analytics.models import AnalyticsRun
from cdlm.analytics.recommendations import rules
from cdlm.analytics.recommendations.models import ItemModel
from cdlm.config import Settings
from cdlm.consent import service as consent
from cdlm.core import clock
from cdlm.core.errors import NotFound
from cdlm.customers.models import ANALYSABLE

log = logging.getLogger(__name__)

WRITE_BATCH = 10_000


@dataclass(frozen=True)
class ModelOptions:
    """What the model counts and keeps."""

    purpose: str = "personalization"
    view_types: frozenset[str] = frozenset({"view"})
    neighbours: int = 20
    min_customers: int = 2
    #: Only interactions this many days before the as-of moment count.
    window_days: float = 365.0
    weights: rules.Weights = field(default_factory=rules.Weights)
    popular: int = rules.POPULAR_ITEMS


def options_from(settings: Settings) -> ModelOptions:
    """The model options of the installation's settings."""
    config = settings.recommendations
    return ModelOptions(
        purpose=config.purpose,
        view_types=config.view_types,
        neighbours=config.neighbours,
        min_customers=config.min_customers,
    )


# ------------------------------------------------------------------------------ the math

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Neighbours:
    """Per kept pair (item, neighbour): the cosine similarity, the customers sharing it and
    the neighbour's rank (1 = most similar), as columns of item positions."""

    item: IntArray
    neighbour: IntArray
    similarity: FloatArray
    customers: IntArray
    rank: IntArray


def cosine_neighbours(
    customer: IntArray,
    item: IntArray,
    weight: FloatArray,
    items: int,
    *,
    k: int,
    min_customers: int,
) -> Neighbours:
    """The ``k`` most similar items of every item (cosine of the weighted customer vectors),
    pairs shared by fewer than ``min_customers`` customers left out; ties go to the lower
    item position. One (customer, item, weight) per interaction pair."""
    customers = int(customer.max()) + 1 if customer.size else 0
    x = sparse.csr_matrix((weight, (customer, item)), shape=(customers, items))
    b = sparse.csr_matrix((np.ones_like(weight), (customer, item)), shape=(customers, items))
    dot = (x.T @ x).tocsr()
    shared = (b.T @ b).tocsr()
    dot.sort_indices()
    shared.sort_indices()
    norms = np.sqrt(dot.diagonal())
    columns: dict[str, list[Any]] = {n: [] for n in ("item", "neighbour", "sim", "shared", "rank")}
    for row in range(items):
        start, stop = dot.indptr[row], dot.indptr[row + 1]
        others = dot.indices[start:stop]
        # Same sparsity (all weights are positive), so the same column order.
        together = shared.data[shared.indptr[row] : shared.indptr[row + 1]]
        keep = (others != row) & (together >= min_customers)
        if not keep.any():
            continue
        others, together = others[keep], together[keep]
        similarity = dot.data[start:stop][keep] / (norms[row] * norms[others])
        order = np.lexsort((others, -similarity))[:k]
        columns["item"].append(np.full(order.size, row))
        columns["neighbour"].append(others[order])
        columns["sim"].append(similarity[order])
        columns["shared"].append(together[order])
        columns["rank"].append(np.arange(1, order.size + 1))

    def joined(name: str, dtype: type) -> Any:
        parts = columns[name]
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    return Neighbours(
        joined("item", np.int64),
        joined("neighbour", np.int64),
        np.minimum(joined("sim", np.float64), 1.0),
        joined("shared", np.int64),
        joined("rank", np.int64),
    )


def popularity(
    item: IntArray, weight: FloatArray, items: int, top: int
) -> tuple[IntArray, FloatArray, IntArray]:
    """The ``top`` items by the sum of their interaction weights (ties: more customers, then
    the lower position): positions, scores and customer counts."""
    score = np.bincount(item, weights=weight, minlength=items)
    count = np.bincount(item, minlength=items)
    order = np.lexsort((np.arange(items), -count, -score))[:top]
    kept: FloatArray = score[order].astype(np.float64)
    return order.astype(np.int64), kept, count[order].astype(np.int64)


# ------------------------------------------------------------------------------ the run

_INTERACTIONS = f"""
SELECT e.customer_id, array_agg(e.item_id ORDER BY e.item_id) AS items,
       array_agg(e.weight ORDER BY e.item_id) AS weights
FROM (
    SELECT e.customer_id, e.item_id,
           max(CASE WHEN e.type = ANY($1::text[]) THEN $3::float8 ELSE $4::float8 END) AS weight
    FROM events e
    JOIN customers c ON c.id = e.customer_id
    WHERE e.item_id IS NOT NULL AND (e.type = ANY($1::text[]) OR e.type = ANY($2::text[]))
      AND e.occurred_at < $5 AND e.occurred_at >= $6
      AND {ANALYSABLE}
    GROUP BY e.customer_id, e.item_id
) e
GROUP BY e.customer_id
"""  # noqa: S608 (constants only)

_NEIGHBOURS = (
    "INSERT INTO item_neighbours (item_id, neighbour_id, similarity, customers, rank) "
    "SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::int[], $5::int2[])"
)
_POPULAR = (
    "INSERT INTO popular_items (item_id, score, customers, rank) "
    "SELECT * FROM unnest($1::text[], $2::float8[], $3::int[], $4::int[])"
)


@dataclass
class Interactions:
    """The weighted (customer, item) pairs the model learns from, as columns."""

    customer: IntArray
    item: IntArray
    weight: FloatArray
    item_ids: list[str]
    customers: int
    refused: int


async def interactions(
    purchase_types: frozenset[str], as_of: datetime, options: ModelOptions
) -> Interactions | None:
    """Every permitted customer's weighted items (one statement, and the consent check);
    None when the personalization purpose is not defined."""
    try:
        purpose = await consent.purpose(options.purpose)
    except NotFound:
        return None
    rows = await get_connection("default").execute_query_dict(
        _INTERACTIONS,
        [
            sorted(purchase_types),
            sorted(options.view_types),
            options.weights.purchase,
            options.weights.view,
            as_of,
            as_of - timedelta(days=options.window_days),
        ],
    )
    answers = await consent.answers([r["customer_id"] for r in rows], [purpose])
    kept = [r for r in rows if answers[r["customer_id"]][0].permitted]
    names = sorted({name for r in kept for name in r["items"]})
    position = {name: n for n, name in enumerate(names)}
    sizes = np.fromiter((len(r["items"]) for r in kept), dtype=np.int64, count=len(kept))
    return Interactions(
        customer=np.repeat(np.arange(len(kept), dtype=np.int64), sizes),
        item=np.fromiter(
            (position[name] for r in kept for name in r["items"]),
            dtype=np.int64,
            count=int(sizes.sum()),
        ),
        weight=np.fromiter(
            (w for r in kept for w in r["weights"]), dtype=np.float64, count=int(sizes.sum())
        ),
        item_ids=names,
        customers=len(kept),
        refused=len(rows) - len(kept),
    )


async def _replace(found: Interactions, options: ModelOptions) -> int:
    """Write the new neighbours and popular items in place of the old (one transaction)."""
    pairs = cosine_neighbours(
        found.customer,
        found.item,
        found.weight,
        len(found.item_ids),
        k=options.neighbours,
        min_customers=options.min_customers,
    )
    top, scores, counts = popularity(found.item, found.weight, len(found.item_ids), options.popular)
    names = np.array(found.item_ids, dtype=object)
    async with in_transaction() as connection:
        await connection.execute_query("DELETE FROM item_neighbours")
        await connection.execute_query("DELETE FROM popular_items")
        for start in range(0, pairs.item.size, WRITE_BATCH):
            part = slice(start, start + WRITE_BATCH)
            await connection.execute_query(
                _NEIGHBOURS,
                [
                    names[pairs.item[part]].tolist(),
                    names[pairs.neighbour[part]].tolist(),
                    pairs.similarity[part].tolist(),
                    pairs.customers[part].tolist(),
                    pairs.rank[part].tolist(),
                ],
            )
        await connection.execute_query(
            _POPULAR,
            [
                names[top].tolist(),
                scores.tolist(),
                counts.tolist(),
                list(range(1, top.size + 1)),
            ],
        )
    return int(pairs.item.size)


async def _clear() -> None:
    async with in_transaction() as connection:
        await connection.execute_query("DELETE FROM item_neighbours")
        await connection.execute_query("DELETE FROM popular_items")


async def refresh(
    purchase_types: frozenset[str], as_of: datetime, options: ModelOptions, run: AnalyticsRun
) -> ItemModel:
    """Build the model from the events before ``as_of`` and replace the stored one; returns
    the build's evidence (kept beside the run's)."""
    evidence = ItemModel(
        id=uuid.uuid4(), run=run, as_of=as_of, built_at=clock.now(), purpose=options.purpose
    )
    found = await interactions(purchase_types, as_of, options)
    if found is None:
        await _clear()
        evidence.note = (
            f"The personalization purpose {options.purpose!r} is not defined: no customer may "
            "be personalized, no model was built."
        )
    else:
        evidence.customers, evidence.refused = found.customers, found.refused
        evidence.interactions = int(found.item.size)
        evidence.items = len(found.item_ids)
        evidence.neighbours = await _replace(found, options)
    evidence.built_at = clock.now()
    await evidence.save()
    log.info(
        "item model built",
        extra={"run_id": str(run.id), "items": evidence.items, "pairs": evidence.neighbours},
    )
    return evidence

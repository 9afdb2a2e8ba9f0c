"""Striped ledgers: each hash-chained ledger (the audit trail, the consent ledger) is split into
:data:`STRIPES` independent chains, so writers to different stripes never wait for each other.

Each stripe has its own transaction-scoped advisory lock and its own head (the newest entry of
that stripe, by sequence): a writer locks only its stripe, reads that stripe's head in a later
statement and appends after it, so within a stripe the sequence order is the chain order. The
entries written before ledgers were striped are stripe 0 (their chain stays valid there). A
checkpoint records every stripe's head (:mod:`cdlm.ledgers.verify`), which merges the stripes
into one sealed state of the ledger.

Which stripe a write goes to is the ledger's rule (:func:`stripe_of` a stable key: the customer
for consent, the target for audit). Locks of several stripes are taken in one fixed order, so two
transactions locking overlapping stripes cannot deadlock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from tortoise.connection import get_connection
from tortoise.models import Model

from cdlm.core import chain
from cdlm.core.locks import lock_key

#: How many chains each ledger is split into (the only place this number is written).
STRIPES: Final = 16
VERIFY_BATCH: Final = 2000


def stripe_of(value: str) -> int:
    """The stripe of a stable key (a customer id, a target): the same key, the same stripe."""
    return int.from_bytes(hashlib.sha256(value.encode()).digest()[:4], "big") % STRIPES


@dataclass(frozen=True)
class StripedTable:
    """A striped ledger's table and the names of its stripe locks."""

    ledger: str
    table: str

    def lock_key(self, stripe: int) -> int:
        """The advisory lock key of ``stripe``."""
        return lock_key(f"ledger:{self.ledger}:stripe:{stripe}")

    @property
    def _setting(self) -> str:
        return f"cdlm.{self.ledger}_stripe"

    async def lock(self, stripes: Iterable[int]) -> dict[int, str]:
        """Lock these stripes until the transaction ends (in one fixed order), then read their
        heads; returns each stripe's last hash."""
        wanted = sorted(set(stripes))
        keys = sorted(self.lock_key(stripe) for stripe in wanted)
        await get_connection("default").execute_query(
            "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k ORDER BY k", [keys]
        )
        # A statement of its own: its snapshot is taken after the locks were granted.
        return await self.heads(wanted)

    async def lock_one_per_transaction(self, preferred: int) -> tuple[int, str]:
        """Lock the stripe this transaction already appends to, else ``preferred``, and read
        its head; returns the stripe and its last hash.

        A transaction appending several entries keeps to one stripe (remembered in a
        transaction-local setting, undone with a rolled-back savepoint like the lock), so
        transactions never hold two stripes of this ledger and cannot deadlock on them.
        """
        keys = [self.lock_key(stripe) for stripe in range(STRIPES)]
        rows = await get_connection("default").execute_query_dict(
            "WITH chosen AS (SELECT coalesce(nullif(current_setting($1, true), '')::int, $2)"
            ' AS "s") SELECT "s" AS "stripe", set_config($1, "s"::text, true) AS "kept", '
            'pg_advisory_xact_lock(($3::bigint[])["s" + 1]) AS "locked" FROM chosen',
            [self._setting, preferred, keys],
        )
        stripe = int(rows[0]["stripe"])
        return stripe, (await self.heads([stripe]))[stripe]

    async def try_lock_any(self, order: Sequence[int]) -> tuple[int, str] | None:
        """Lock the first stripe of ``order`` no other transaction holds, without waiting,
        and read its head; None when every one is held."""
        connection = get_connection("default")
        for stripe in order:
            rows = await connection.execute_query_dict(
                'SELECT pg_try_advisory_xact_lock($1) AS "locked"', [self.lock_key(stripe)]
            )
            if rows[0]["locked"]:
                return stripe, (await self.heads([stripe]))[stripe]
        return None

    async def heads(self, stripes: Sequence[int]) -> dict[int, str]:
        """The last hash of each of these stripes (the genesis hash for an empty one)."""
        rows = await get_connection("default").execute_query_dict(
            f'SELECT DISTINCT ON ("stripe") "stripe", "hash" FROM "{self.table}" '  # noqa: S608
            'WHERE "stripe" = ANY($1::smallint[]) ORDER BY "stripe", "sequence" DESC',
            [list(stripes)],
        )
        found = {int(row["stripe"]): str(row["hash"]) for row in rows}
        return {stripe: found.get(stripe, chain.GENESIS_HASH) for stripe in stripes}

    async def present(self) -> list[int]:
        """Every stripe to verify: the configured ones and any other holding entries (an
        entry moved outside them is then checked, and found broken)."""
        rows = await get_connection("default").execute_query_dict(
            # A loose index scan over (stripe, sequence): one probe per stripe.
            f'WITH RECURSIVE s AS ((SELECT "stripe" FROM "{self.table}" ORDER BY "stripe" '  # noqa: S608
            f'LIMIT 1) UNION ALL SELECT (SELECT "stripe" FROM "{self.table}" '
            'WHERE "stripe" > s."stripe" ORDER BY "stripe" LIMIT 1) FROM s '
            'WHERE s."stripe" IS NOT NULL) SELECT "stripe" FROM s WHERE "stripe" IS NOT NULL'
        )
        return sorted(set(range(STRIPES)) | {int(row["stripe"]) for row in rows})


@dataclass(frozen=True)
class StripeBreak:
    """Where a stripe's chain first breaks: the entry there and how."""

    stripe: int
    entry: Any
    problem: chain.ChainProblem


@dataclass(frozen=True)
class FullCheck:
    """Every stripe walked from its first entry: the intact entries counted, the newest
    intact entry's hash, and the break with the lowest sequence, if any."""

    checked: int
    head_hash: str
    broken: StripeBreak | None


async def check_all(
    striped: StripedTable, model: type[Model], content: Callable[[Any], dict[str, Any]]
) -> FullCheck:
    """Walk every stripe of a ledger from its first entry (see :func:`chain.check`)."""
    checked = 0
    newest: tuple[int, str] = (0, chain.GENESIS_HASH)
    first: StripeBreak | None = None
    for stripe in await striped.present():
        walk, after = chain.Walk(), 0
        while True:
            batch: Sequence[Any] = (
                await model.filter(stripe=stripe, sequence__gt=after)
                .order_by("sequence")
                .limit(VERIFY_BATCH)
            )
            if not batch:
                break
            _, broken = chain.check(batch, walk, content)
            intact = batch[: broken.position] if broken is not None else batch
            checked += len(intact)
            if intact and intact[-1].sequence > newest[0]:
                newest = (intact[-1].sequence, intact[-1].hash)
            if broken is not None:
                entry = batch[broken.position]
                if first is None or entry.sequence < first.entry.sequence:
                    first = StripeBreak(stripe, entry, broken.problem)
                break
            after = batch[-1].sequence
    return FullCheck(checked, newest[1], first)

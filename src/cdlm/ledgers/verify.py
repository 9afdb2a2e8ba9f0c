"""Verifying the audit trail and the consent ledger against their checkpoints, and writing new
checkpoints.

Both ledgers are striped (:mod:`cdlm.core.stripes`): every step below is done per stripe, from
that stripe's head in the checkpoint, and the report gives the break with the lowest sequence.
Incremental verification (the default) starts at the newest checkpoint in the store:

1. every checkpoint the database recorded is still in the store, the newest one's MAC verifies
   and the checkpoint it names as previous is there (a checkpoint deleted from the store is
   noticed: :attr:`~cdlm.core.chain.ChainProblem.CHECKPOINT_MISSING`);
2. the database still holds each stripe's checkpointed entry, in that stripe, with the same
   hash, and as many entries of the stripe up to it as the checkpoint counted (a truncation, a
   deletion before it, an entry moved to another stripe, or a rewrite re-chained through it:
   :attr:`~cdlm.core.chain.ChainProblem.CHECKPOINT_MISMATCH`);
3. every entry of the stripe after it is re-hashed (keyed, as the checkpoint was, so an unkeyed
   entry after it is a break).

Full verification walks from the first entry and checks every checkpoint on the way, which also
catches a rewritten entry before the newest checkpoint whose stored hash was left alone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from tortoise.connection import get_connection
from tortoise.models import Model

from cdlm.audit import service as audit
from cdlm.audit.models import AuditEntry
from cdlm.consent import service as consent
from cdlm.consent.models import ConsentEntry
from cdlm.core import chain, clock
from cdlm.core.stripes import StripedTable
from cdlm.ledgers.checkpoints import (
    Checkpoint,
    CheckpointInvalid,
    CheckpointStore,
    StripeHead,
    heads_checkpoint,
)
from cdlm.ledgers.models import LedgerCheckpoint

VERIFY_BATCH = 2000


@dataclass(frozen=True)
class Ledger:
    """A hash-chained ledger: its name, table, what its hashes cover and its stripes."""

    name: str
    model: type[Model]
    content: Callable[[Any], dict[str, Any]]
    striped: StripedTable

    @property
    def table(self) -> str:
        """The table's name."""
        return str(self.model._meta.db_table)


AUDIT = Ledger("audit", AuditEntry, audit.content_of, audit.LEDGER)
CONSENT = Ledger("consent", ConsentEntry, consent.content_of, consent.LEDGER)
LEDGERS: tuple[Ledger, ...] = (AUDIT, CONSENT)


def ledger_named(name: str) -> Ledger:
    """The ledger called ``name`` (``audit`` or ``consent``)."""
    for ledger in LEDGERS:
        if ledger.name == name:
            return ledger
    raise ValueError(f"no ledger {name!r}")


@dataclass(frozen=True)
class Verification:
    """What verifying one ledger found."""

    ledger: str
    ok: bool
    entries_checked: int
    #: The newest intact entry reached (of all stripes): its sequence (None: none), hash and key
    #: id, and how many intact entries the stripes hold up to their heads.
    head_sequence: int | None
    head_hash: str
    head_key_id: str | None
    count: int
    #: The checkpoint verification started from (None: from the first entry).
    checkpoint: Checkpoint | None = None
    first_broken_sequence: int | None = None
    first_broken_id: uuid.UUID | None = None
    problem: chain.ChainProblem | None = None
    #: Audit read records not chained yet (neither missing nor broken).
    pending: int = 0
    oldest_pending_age: timedelta | None = None
    #: Newest checkpoint in the store after this run (set by :func:`checkpoint`).
    written: Checkpoint | None = field(default=None, compare=False)
    #: Each stripe's last intact entry reached (stripes without entries left out).
    stripes: tuple[StripeHead, ...] = ()


@dataclass
class _Walker:
    """One stripe's walk: where it stands and the checkpointed heads to meet on the way."""

    ledger: Ledger
    stripe: int
    walk: chain.Walk
    after: int = 0
    count: int = 0
    head_sequence: int | None = None
    head_key_id: str | None = None
    #: This stripe's checkpointed heads to meet on the way, by sequence (full verification).
    expected: dict[int, StripeHead] = field(default_factory=dict)
    checked: int = 0

    def head(self) -> StripeHead | None:
        if self.head_sequence is None:
            return None
        return StripeHead(
            self.stripe, self.head_sequence, self.walk.previous, self.count, self.head_key_id
        )


@dataclass(frozen=True)
class _Break:
    sequence: int
    problem: chain.ChainProblem
    entry_id: uuid.UUID | None = None


async def _records(ledger: Ledger) -> list[LedgerCheckpoint]:
    rows = await LedgerCheckpoint.filter(ledger=ledger.name).order_by("sequence")
    return list(rows)


async def _held(ledger: Ledger, heads: Sequence[StripeHead]) -> dict[int, tuple[Any, int]]:
    """For each checkpointed head, by stripe: the entry now at its sequence (None: gone) and
    how many entries its stripe holds up to it (two statements for all stripes)."""
    if not heads:
        return {}
    found: Sequence[Any] = await ledger.model.filter(sequence__in=[h.sequence for h in heads])
    at = {entry.sequence: entry for entry in found}
    rows = await get_connection("default").execute_query_dict(
        f'SELECT h."stripe", (SELECT count(*) FROM "{ledger.table}" e '  # noqa: S608
        'WHERE e."stripe" = h."stripe" AND e."sequence" <= h."sequence") AS "n" '
        'FROM unnest($1::smallint[], $2::bigint[]) AS h("stripe", "sequence")',
        [[head.stripe for head in heads], [head.sequence for head in heads]],
    )
    counts = {int(row["stripe"]): int(row["n"]) for row in rows}
    return {head.stripe: (at.get(head.sequence), counts[head.stripe]) for head in heads}


def _missing(ledger: Ledger, sequence: int, checkpoint: Checkpoint | None) -> Verification:
    return Verification(
        ledger=ledger.name,
        ok=False,
        entries_checked=0,
        head_sequence=None,
        head_hash=chain.GENESIS_HASH,
        head_key_id=None,
        count=0,
        checkpoint=checkpoint,
        first_broken_sequence=sequence,
        problem=chain.ChainProblem.CHECKPOINT_MISSING,
    )


async def _store_state(
    ledger: Ledger, store: CheckpointStore, *, every: bool
) -> tuple[list[tuple[Checkpoint, str]], Verification | None]:
    """The store's checkpoints of ``ledger`` (all when ``every``, else the newest only), or
    the report of one missing or invalid."""
    names = await asyncio.to_thread(store.names, ledger.name)  # file system or S3: off the loop
    present = set(names)
    for row in await _records(ledger):
        if row.name not in present:
            return [], _missing(ledger, row.sequence, None)
    wanted = names if every else names[-1:]
    found: list[tuple[Checkpoint, str]] = []
    for name in wanted:
        try:
            read = await asyncio.to_thread(store.read, name)
        except CheckpointInvalid:
            read = None
        if read is None:
            return [], _missing(ledger, _sequence_of(name), None)
        found.append(read)
    if found:
        newest = found[-1][0]
        if newest.previous is not None and newest.previous not in present:
            return [], _missing(ledger, _sequence_of(newest.previous), newest)
    return found, None


def _sequence_of(name: str) -> int:
    try:
        return int(name.rsplit("/", 1)[-1].removesuffix(".json"))
    except ValueError:
        return 0


async def verify(ledger: Ledger, store: CheckpointStore, *, full: bool = False) -> Verification:
    """Verify ``ledger`` from its newest checkpoint (or, ``full``, from its first entry,
    checking every checkpoint on the way), stripe by stripe; see the module."""
    pending, oldest = await audit.pending_reads() if ledger is AUDIT else (0, None)
    found, problem = await _store_state(ledger, store, every=full)
    if problem is not None:
        return _with_pending(problem, pending, oldest)
    start = None if full or not found else found[-1][0]
    starts = start.heads() if start is not None else {}
    stripes = sorted(set(await ledger.striped.present()) | set(starts))
    held = await _held(ledger, list(starts.values()))
    walkers: list[_Walker] = []
    first: _Break | None = None
    resumed: list[_Walker] = []
    for stripe in stripes:
        walker = _Walker(ledger, stripe, chain.Walk())
        if full:
            walker.expected = {
                head.sequence: head
                for checkpoint, _ in found
                for head in checkpoint.stripes
                if head.stripe == stripe
            }
        walkers.append(walker)
        head = starts.get(stripe)
        broken = _resume(walker, head, *held[stripe]) if head is not None else None
        if broken is None:
            resumed.append(walker)
        elif first is None or broken.sequence < first.sequence:
            first = broken
    # From a checkpoint, only the stripes with entries after their heads need a walk.
    moved = None if full else await _with_entries_after(ledger, resumed)
    for walker in resumed:
        if moved is not None and walker.stripe not in moved:
            continue
        broken = await _walk(walker)
        if broken is not None and (first is None or broken.sequence < first.sequence):
            first = broken
    return _with_pending(_report(ledger, walkers, start, first), pending, oldest)


async def _with_entries_after(ledger: Ledger, walkers: Sequence[_Walker]) -> set[int]:
    """Which of these stripes hold entries after where their walkers stand (one statement)."""
    if not walkers:
        return set()
    rows = await get_connection("default").execute_query_dict(
        f'SELECT h."stripe" FROM unnest($1::smallint[], $2::bigint[]) AS h("stripe", "after") '  # noqa: S608
        f'WHERE EXISTS (SELECT 1 FROM "{ledger.table}" e '
        'WHERE e."stripe" = h."stripe" AND e."sequence" > h."after")',
        [[w.stripe for w in walkers], [w.after for w in walkers]],
    )
    return {int(row["stripe"]) for row in rows}


def _resume(walker: _Walker, head: StripeHead, entry: Any, count: int) -> _Break | None:
    """Check the stripe still holds its checkpointed head (``entry`` is the one at its
    sequence, ``count`` the stripe's entries up to it), then stand the walk on it."""
    if (
        entry is None
        or getattr(entry, "stripe", None) != head.stripe
        or getattr(entry, "hash", None) != head.hash
        or count != head.count
    ):
        return _Break(
            head.sequence, chain.ChainProblem.CHECKPOINT_MISMATCH, getattr(entry, "id", None)
        )
    walker.walk = chain.Walk(head.hash, keyed=head.key_id is not None)
    walker.after = walker.head_sequence = head.sequence
    walker.count = head.count
    walker.head_key_id = head.key_id
    return None


def _report(
    ledger: Ledger, walkers: list[_Walker], start: Checkpoint | None, first: _Break | None
) -> Verification:
    heads = tuple(head for walker in walkers if (head := walker.head()) is not None)
    newest = max(heads, key=lambda head: head.sequence) if heads else None
    return Verification(
        ledger=ledger.name,
        ok=first is None,
        entries_checked=sum(walker.checked for walker in walkers),
        head_sequence=newest.sequence if newest else None,
        head_hash=newest.hash if newest else chain.GENESIS_HASH,
        head_key_id=newest.key_id if newest else None,
        count=sum(walker.count for walker in walkers),
        checkpoint=start,
        first_broken_sequence=first.sequence if first else None,
        first_broken_id=first.entry_id if first else None,
        problem=first.problem if first else None,
        stripes=heads,
    )


def _with_pending(report: Verification, pending: int, oldest: timedelta | None) -> Verification:
    return replace(report, pending=pending, oldest_pending_age=oldest)


async def _walk(walker: _Walker) -> _Break | None:
    """Re-hash the stripe after where the walker stands; the first break, if any."""
    ledger = walker.ledger
    upcoming = sorted(walker.expected)
    mismatch = chain.ChainProblem.CHECKPOINT_MISMATCH
    while True:
        batch: Sequence[Any] = (
            await ledger.model.filter(stripe=walker.stripe, sequence__gt=walker.after)
            .order_by("sequence")
            .limit(VERIFY_BATCH)
        )
        if not batch:
            # A checkpointed entry not met: the stripe was cut short.
            return _Break(upcoming[0], mismatch) if upcoming else None
        last_hash = walker.walk.previous
        _, broken = chain.check(batch, walker.walk, ledger.content)
        intact = batch[: broken.position] if broken is not None else batch
        # Checkpoints met on the intact part come first (a break after one is reported there).
        for entry in intact:
            if upcoming and upcoming[0] < entry.sequence:  # skipped: that entry is gone
                walker.walk.previous = last_hash
                return _Break(upcoming[0], mismatch)
            if upcoming and upcoming[0] == entry.sequence:
                expected = walker.expected[upcoming.pop(0)]
                if expected.hash != entry.hash or expected.count != walker.count + 1:
                    walker.walk.previous = last_hash
                    return _Break(entry.sequence, mismatch, entry.id)
            walker.checked += 1
            walker.count += 1
            walker.head_sequence = entry.sequence
            walker.head_key_id = entry.key_id
            last_hash = entry.hash
        if broken is not None:
            entry = batch[broken.position]
            walker.walk.previous = last_hash
            return _Break(entry.sequence, broken.problem, entry.id)
        walker.after = batch[-1].sequence


async def checkpoint(ledger: Ledger, store: CheckpointStore, *, full: bool = False) -> Verification:
    """Verify ``ledger`` (see :func:`verify`) and, when intact and a head newer than the newest
    checkpoint's position exists, write a checkpoint of every stripe's head to the store and
    record it here.

    An entry committed after the checkpoint was read, with a lower sequence than its position
    (two stripes' writers overlapped), is checkpointed with the next entry appended after it.
    """
    report = await verify(ledger, store, full=full)
    if not report.ok or report.head_sequence is None:
        return report
    names = await asyncio.to_thread(store.names, ledger.name)
    latest = await asyncio.to_thread(store.read, names[-1]) if names else None
    if latest is not None and latest[0].sequence >= report.head_sequence:
        return replace(report, written=latest[0])
    head = heads_checkpoint(ledger.name, report.stripes, clock.now())
    stored, stored_digest = await asyncio.to_thread(store.write, store.following(latest, head))
    if (stored.hash, stored.count, stored.stripes) != (head.hash, head.count, head.stripes):
        # The store already holds other heads at this position: the ledger was rewritten.
        return replace(
            report,
            ok=False,
            first_broken_sequence=head.sequence,
            problem=chain.ChainProblem.CHECKPOINT_MISMATCH,
        )
    await LedgerCheckpoint.get_or_create(
        ledger=ledger.name,
        sequence=stored.sequence,
        defaults={
            "id": uuid.uuid4(),
            "hash": stored.hash,
            "count": stored.count,
            "key_id": stored.key_id,
            "name": stored.name,
            "digest": stored_digest,
            "checkpointed_at": stored.checkpointed_at,
        },
    )
    return replace(report, written=stored)


def describe(report: Verification) -> str:
    """One line about a ledger's verification (positions, counts and hashes only)."""
    since = (
        f"since checkpoint {report.checkpoint.sequence} "
        f"({report.checkpoint.checkpointed_at.isoformat(timespec='seconds')})"
        if report.checkpoint is not None
        else "from the first entry"
    )
    checked = f"{report.entries_checked} entries checked {since}"
    if not report.ok:
        problem = report.problem.value if report.problem else "UNKNOWN"
        where = report.first_broken_sequence
        return f"{report.ledger}: BROKEN at sequence {where}: {problem} ({checked})"
    key = report.head_key_id or "none: legacy"
    head = (
        f"head {report.head_sequence} {report.head_hash[:16]} (key {key})"
        if report.head_sequence is not None
        else "empty"
    )
    line = f"{report.ledger}: ok, {checked}; {report.count} entries, {head}"
    if report.written is not None:
        line += f"; checkpoint {report.written.sequence}"
    if report.pending:
        line += f"; {report.pending} read records waiting to be chained"
    return line


def summary(report: Verification) -> dict[str, Any]:
    """The report as plain data (job outputs): positions, counts and hashes only."""
    return {
        "ledger": report.ledger,
        "ok": report.ok,
        "entries_checked": report.entries_checked,
        "head_sequence": report.head_sequence,
        "head_hash": report.head_hash,
        "count": report.count,
        "from_checkpoint": report.checkpoint.sequence if report.checkpoint else None,
        "checkpointed": report.written.sequence if report.written else None,
        "first_broken_sequence": report.first_broken_sequence,
        "problem": report.problem.value if report.problem else None,
        "pending": report.pending,
    }

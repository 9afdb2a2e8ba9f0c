"""Verifying the audit trail and the consent ledger against their checkpoints, and writing new
checkpoints.

Incremental verification (the default) starts at the newest checkpoint in the store:

1. every checkpoint the database recorded is still in the store, the newest one's MAC verifies
   and the checkpoint it names as previous is there (a checkpoint deleted from the store is
   noticed: :attr:`~cdlm.core.chain.ChainProblem.CHECKPOINT_MISSING`);
2. the database still holds the checkpointed entry with the same hash, and as many entries up
   to it as the checkpoint counted (a truncation, a deletion before it, or a rewrite re-chained
   through it: :attr:`~cdlm.core.chain.ChainProblem.CHECKPOINT_MISMATCH`);
3. every entry after it is re-hashed (keyed, as the checkpoint was, so an unkeyed entry after it
   is a break).

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
from cdlm.ledgers.checkpoints import Checkpoint, CheckpointInvalid, CheckpointStore
from cdlm.ledgers.models import LedgerCheckpoint

VERIFY_BATCH = 2000


@dataclass(frozen=True)
class Ledger:
    """A hash-chained ledger: its name, table and what its hashes cover."""

    name: str
    model: type[Model]
    content: Callable[[Any], dict[str, Any]]

    @property
    def table(self) -> str:
        """The table's name."""
        return str(self.model._meta.db_table)


AUDIT = Ledger("audit", AuditEntry, audit.content_of)
CONSENT = Ledger("consent", ConsentEntry, consent.content_of)
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
    #: The last intact entry reached: its sequence (None: none), hash and key id, and how many
    #: entries there are up to it.
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


@dataclass
class _Walker:
    ledger: Ledger
    walk: chain.Walk
    after: int
    count: int
    head_sequence: int | None
    head_key_id: str | None
    #: Checkpoints to meet on the way, by sequence (full verification).
    expected: dict[int, Checkpoint]
    checked: int = 0


async def _records(ledger: Ledger) -> list[LedgerCheckpoint]:
    rows = await LedgerCheckpoint.filter(ledger=ledger.name).order_by("sequence")
    return list(rows)


async def _count_through(ledger: Ledger, sequence: int) -> int:
    rows = await get_connection("default").execute_query_dict(
        f'SELECT count(*) AS "n" FROM "{ledger.table}" WHERE "sequence" <= $1',  # noqa: S608
        [sequence],
    )
    return int(rows[0]["n"])


def _broken(
    walker: _Walker,
    sequence: int,
    problem: chain.ChainProblem,
    entry_id: uuid.UUID | None,
    checkpoint: Checkpoint | None,
) -> Verification:
    return Verification(
        ledger=walker.ledger.name,
        ok=False,
        entries_checked=walker.checked,
        head_sequence=walker.head_sequence,
        head_hash=walker.walk.previous,
        head_key_id=walker.head_key_id,
        count=walker.count,
        checkpoint=checkpoint,
        first_broken_sequence=sequence,
        first_broken_id=entry_id,
        problem=problem,
    )


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
    checking every checkpoint on the way); see the module."""
    pending, oldest = await audit.pending_reads() if ledger is AUDIT else (0, None)
    found, problem = await _store_state(ledger, store, every=full)
    if problem is not None:
        return _with_pending(problem, pending, oldest)
    start = None if full or not found else found[-1][0]
    walker = _Walker(
        ledger,
        chain.Walk(),
        after=0,
        count=0,
        head_sequence=None,
        head_key_id=None,
        expected={c.sequence: c for c, _ in found} if full else {},
    )
    if start is not None:
        entry = await ledger.model.get_or_none(sequence=start.sequence)
        stored_hash = getattr(entry, "hash", None)
        if stored_hash != start.hash or await _count_through(ledger, start.sequence) != start.count:
            report = _broken(
                walker,
                start.sequence,
                chain.ChainProblem.CHECKPOINT_MISMATCH,
                getattr(entry, "id", None),
                start,
            )
            return _with_pending(report, pending, oldest)
        walker.walk = chain.Walk(start.hash, keyed=start.key_id is not None)
        walker.after = walker.head_sequence = start.sequence
        walker.count = start.count
        walker.head_key_id = start.key_id
    report = await _walk(walker, start)
    return _with_pending(report, pending, oldest)


def _with_pending(report: Verification, pending: int, oldest: timedelta | None) -> Verification:
    return replace(report, pending=pending, oldest_pending_age=oldest)


async def _walk(walker: _Walker, start: Checkpoint | None) -> Verification:
    ledger = walker.ledger
    upcoming = sorted(walker.expected)
    while True:
        batch: Sequence[Any] = (
            await ledger.model.filter(sequence__gt=walker.after)
            .order_by("sequence")
            .limit(VERIFY_BATCH)
        )
        if not batch:
            if upcoming:  # a checkpointed entry is gone (the ledger was cut short)
                return _broken(
                    walker, upcoming[0], chain.ChainProblem.CHECKPOINT_MISMATCH, None, start
                )
            return Verification(
                ledger=ledger.name,
                ok=True,
                entries_checked=walker.checked,
                head_sequence=walker.head_sequence,
                head_hash=walker.walk.previous,
                head_key_id=walker.head_key_id,
                count=walker.count,
                checkpoint=start,
            )
        last_hash = walker.walk.previous
        _, broken = chain.check(batch, walker.walk, ledger.content)
        intact = batch[: broken.position] if broken is not None else batch
        # Checkpoints met on the intact part come first (a break after one is reported there).
        for entry in intact:
            if upcoming and upcoming[0] < entry.sequence:  # skipped: that entry is gone
                walker.walk.previous = last_hash
                return _broken(
                    walker, upcoming[0], chain.ChainProblem.CHECKPOINT_MISMATCH, None, start
                )
            if upcoming and upcoming[0] == entry.sequence:
                expected = walker.expected[upcoming.pop(0)]
                if expected.hash != entry.hash or expected.count != walker.count + 1:
                    walker.walk.previous = last_hash
                    return _broken(
                        walker,
                        entry.sequence,
                        chain.ChainProblem.CHECKPOINT_MISMATCH,
                        entry.id,
                        start,
                    )
            walker.checked += 1
            walker.count += 1
            walker.head_sequence = entry.sequence
            walker.head_key_id = entry.key_id
            last_hash = entry.hash
        if broken is not None:
            entry = batch[broken.position]
            return _broken(walker, entry.sequence, broken.problem, entry.id, start)
        walker.after = batch[-1].sequence


async def checkpoint(ledger: Ledger, store: CheckpointStore, *, full: bool = False) -> Verification:
    """Verify ``ledger`` (see :func:`verify`) and, when intact and its head moved since the
    newest checkpoint, write a checkpoint of the head to the store and record it here."""
    report = await verify(ledger, store, full=full)
    if not report.ok or report.head_sequence is None:
        return report
    names = await asyncio.to_thread(store.names, ledger.name)
    latest = await asyncio.to_thread(store.read, names[-1]) if names else None
    if latest is not None and latest[0].sequence >= report.head_sequence:
        return replace(report, written=latest[0])
    head = Checkpoint(
        ledger=ledger.name,
        sequence=report.head_sequence,
        hash=report.head_hash,
        count=report.count,
        key_id=report.head_key_id,
        checkpointed_at=clock.now(),
    )
    stored, stored_digest = await asyncio.to_thread(store.write, store.following(latest, head))
    if (stored.hash, stored.count) != (head.hash, head.count):
        # The store already holds another head at this position: the ledger was rewritten.
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

"""The retention sweep: data past its period is disposed of as its policy declares.

A run fixes its moment (``as_of``) and takes a snapshot of the active policies as evidence
rows. It then works in bounded batches. Each batch, in one transaction under a lock on its
evidence row, takes the next rows due after the row's cursor, skips those a legal hold keeps,
archives and disposes of the rest, and records counts, time range, a running SHA-256 over
what was disposed of, and the new cursor. A run stopped by a crash or a time budget (Lambda:
15 minutes) is resumed by the next call, which does no batch twice. A dry run (and
``retentionPreview``) counts the same rows and changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from cdlm.audit import service as audit
from cdlm.core import clock
from cdlm.core.locks import lock_names
from cdlm.core.principal import Principal
from cdlm.customers import rights
from cdlm.disposal import Candidate
from cdlm.dsr import disposal as request_data
from cdlm.holds.models import LegalHold
from cdlm.holds.service import active_holds
from cdlm.retention import archive, months
from cdlm.retention.categories import EVENT_TYPE, Handler, handler_for
from cdlm.retention.models import Action, RetentionPolicy, SweepEvidence, SweepRun, Trigger
from cdlm.retention.policies import active_policies, policy_of
from cdlm.vault.service import Vault

BATCH = 500
MAX_FAILURES = 3
POLICIES_CHANGED = "The policies changed after the run began; the next run applies them."
PREVIEW_LIMIT = 100_000
GENESIS = "0" * 64
logger = logging.getLogger("cdlm.retention")


@dataclass(frozen=True)
class Holds:
    """The legal holds in force: on customers, and on categories for everyone."""

    customers: frozenset[uuid.UUID]
    categories: frozenset[str]

    @classmethod
    def of(cls, holds: list[LegalHold]) -> Holds:
        return cls(
            frozenset(h.customer_id for h in holds if h.customer_id is not None),
            frozenset(h.category for h in holds if h.category is not None),
        )

    def keeps(self, category: str, row: Candidate) -> bool:
        """True when a hold stops the row from being disposed of."""
        if row.customer_id is not None and row.customer_id in self.customers:
            return True
        if category in self.categories:
            return True
        if category.startswith("events"):
            return "events" in self.categories or f"events.{row.kind}" in self.categories
        if category == "dsr.requests":  # a request holding a held copy keeps its key and row
            return row.kind == "dsr.exports" and "dsr.exports" in self.categories
        return False

    def keep(self) -> rights.Keep:
        """What disposing of a whole customer must keep (readable, restricted)."""
        return rights.Keep.of(set(self.categories))


@dataclass
class Outcome:
    """What a run did (or a dry run would do) under one policy."""

    category: str
    action: Action
    trigger: Trigger
    period_days: int
    cutoff: datetime
    disposed: int = 0
    archived: int = 0
    skipped_held: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    digest: str = GENESIS
    archive_objects: list[str] = field(default_factory=list)
    done: bool = False
    note: str | None = None
    policy_id: uuid.UUID | None = None  # the policy applied (as it was when the run began)
    months: list[str] = field(default_factory=list)  # months of events disposed of whole

    @classmethod
    def of(cls, evidence: SweepEvidence) -> Outcome:
        return cls(
            evidence.category,
            evidence.action,
            evidence.trigger,
            evidence.period_days,
            evidence.cutoff,
            evidence.disposed,
            evidence.archived,
            evidence.skipped_held,
            evidence.first_at,
            evidence.last_at,
            evidence.digest,
            list(evidence.archive_objects),
            evidence.done,
            evidence.note,
            evidence.policy_id,
            list(evidence.months),
        )


@dataclass(frozen=True)
class Report:
    """A run's evidence (or a dry run's forecast)."""

    run_id: uuid.UUID | None
    as_of: datetime
    dry_run: bool
    finished: bool
    outcomes: list[Outcome]
    unfinished_run_id: uuid.UUID | None = None  # a preview: the run the next sweep resumes


def _own_event_policies(categories: list[str]) -> frozenset[str]:
    return frozenset(m.group(1) for c in categories if (m := EVENT_TYPE.fullmatch(c)))


async def _split(
    category: str, rows: list[Candidate], holds: Holds
) -> tuple[list[Candidate], list[Candidate]]:
    """The rows to dispose of, and those kept: by a hold, or (whole customers) by a data
    subject request still open."""
    if category == "customers.inactive":
        busy = await request_data.customers_with_open_requests(
            [r.customer_id for r in rows if r.customer_id is not None]
        )
        holds = Holds(holds.customers | busy, holds.categories)
    kept = [r for r in rows if holds.keeps(category, r)]
    return [r for r in rows if not holds.keeps(category, r)], kept


def _chain(digest: str, category: str, rows: list[Candidate]) -> str:
    text = digest + "".join(f"\n{category}:{r.id}" for r in rows)
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------------------ dry run


async def preview(as_of: datetime | None = None) -> Report:
    """What a fresh sweep now would do, per active policy; changes nothing. When a run is
    unfinished, the next sweep resumes it first (its id is in the report)."""
    moment = as_of or clock.now()
    policies = await active_policies()
    holds = Holds.of(await active_holds())
    own = _own_event_policies([p.category for p in policies])
    outcomes = []
    for policy in policies:
        outcome = Outcome(
            policy.category,
            policy.action,
            policy.trigger,
            policy.period_days,
            moment - timedelta(days=policy.period_days),
            policy_id=policy.id,
        )
        handler = handler_for(policy.category, own)
        cursor: str | None = None
        seen = 0
        while seen < PREVIEW_LIMIT:
            rows = await handler.due(outcome.cutoff, policy.action, cursor, BATCH)
            if not rows:
                break
            todo, kept = await _split(policy.category, rows, holds)
            _count(outcome, todo, kept)
            outcome.digest = _chain(outcome.digest, policy.category, todo)
            cursor = rows[-1].id
            seen += len(rows)
        outcome.done = seen < PREVIEW_LIMIT
        outcomes.append(outcome)
    unfinished = await SweepRun.filter(finished_at__isnull=True).first()
    return Report(None, moment, True, True, outcomes, unfinished.id if unfinished else None)


def _count(outcome: Outcome | SweepEvidence, todo: list[Candidate], kept: list[Candidate]) -> None:
    outcome.disposed += len(todo)
    outcome.skipped_held += len(kept)
    if todo:
        earliest = min(r.at for r in todo)
        latest = max(r.at for r in todo)
        outcome.first_at = min(outcome.first_at or earliest, earliest)
        outcome.last_at = max(outcome.last_at or latest, latest)


# ---------------------------------------------------------------------------- the sweep


async def _current_run(actor: Principal) -> SweepRun:
    """The unfinished run, or a new one with a snapshot of the active policies."""
    async with in_transaction():
        await lock_names(["retention.sweep.run"])  # two starters cannot both create a run
        unfinished = await SweepRun.filter(finished_at__isnull=True).order_by("started_at").first()
        if unfinished is not None:
            return unfinished
        now = clock.now()
        run = await SweepRun.create(
            id=uuid.uuid4(), as_of=now, started_at=now, started_by_kind=actor.kind.value
        )
        policies: list[RetentionPolicy] = await active_policies()
        await SweepEvidence.bulk_create(
            [
                SweepEvidence(
                    id=uuid.uuid4(),
                    run_id=run.id,
                    policy_id=p.id,
                    category=p.category,
                    action=p.action,
                    trigger=p.trigger,
                    period_days=p.period_days,
                    cutoff=now - timedelta(days=p.period_days),
                    digest=GENESIS,
                )
                for p in policies
            ]
        )
        return run


async def _changed(evidence: SweepEvidence, own: frozenset[str]) -> bool:
    """True when the evidence row's policy changed since the run began, or (for the general
    ``events`` policy) the event types with a policy of their own did."""
    policy = await policy_of(evidence.policy_id)
    if policy is None or not policy.active:
        return True
    if (policy.period_days, policy.action, policy.trigger) != (
        evidence.period_days,
        evidence.action,
        evidence.trigger,
    ):
        return True
    if evidence.category == "events":
        current = _own_event_policies([p.category for p in await active_policies()])
        return current != own
    return False


async def _stop(evidence: SweepEvidence, note: str) -> None:
    evidence.done = True
    evidence.note = note
    await evidence.save(update_fields=["done", "note"])


@dataclass(frozen=True)
class _Pass:
    """What every batch of one sweep call works with."""

    actor: Principal
    vault: Vault
    store: archive.ArchiveStore
    run: SweepRun
    own: frozenset[str]  # event types with a policy of their own, as the run began
    size: int


async def _batch(sweeping: _Pass, evidence_id: uuid.UUID) -> bool:
    """One batch of one policy; False once the policy has nothing more due (or stopped).

    An archive object written for a batch that then rolls back is deleted with it.
    """
    written: list[str] = []
    try:
        async with in_transaction():
            return await _dispose_batch(sweeping, evidence_id, written)
    except BaseException:
        for key in written:
            await sweeping.store.delete(key)
        raise


async def _dispose_batch(sweeping: _Pass, evidence_id: uuid.UUID, written: list[str]) -> bool:
    evidence = await SweepEvidence.filter(id=evidence_id).select_for_update().first()
    if evidence is None or evidence.done:
        return False
    if await _changed(evidence, sweeping.own):
        await _stop(evidence, POLICIES_CHANGED)
        return False
    handler = handler_for(evidence.category, sweeping.own)
    if months.applies(evidence) and await _whole_month(sweeping, evidence, handler, written):
        return True
    rows = await handler.due(evidence.cutoff, evidence.action, evidence.cursor, sweeping.size)
    if not rows:
        evidence.done = True
        await evidence.save(update_fields=["done"])
        return False
    holds = Holds.of(await active_holds())
    todo, kept = await _split(evidence.category, rows, holds)
    if handler.confirm is not None and todo:
        confirmed = await handler.confirm(todo, evidence.cutoff)
        kept += [r for r in todo if r not in confirmed]
        todo = confirmed
    ids = [r.id for r in todo]
    vault, run = sweeping.vault, sweeping.run
    if evidence.action is Action.ARCHIVE and todo and handler.records is not None:
        day = f"{run.as_of:%Y/%m/%d}"
        key = f"{evidence.category}/{day}/{run.id}/{evidence.batches:06d}.jsonl.gz"
        records = await handler.records(vault, ids)
        packed, count = await archive.pack(vault, evidence.category, records)
        written.append(key)
        await sweeping.store.put(key, packed)  # a retry overwrites it, never doubles it
        evidence.archive_objects = [*evidence.archive_objects, key]
        evidence.archived += count
    await handler.dispose(vault, evidence.action, ids, holds.keep())
    await _audit(sweeping.actor, evidence, ids)
    _count(evidence, todo, kept)
    evidence.digest = _chain(evidence.digest, evidence.category, todo)
    evidence.cursor = rows[-1].id
    evidence.batches += 1
    evidence.failures = 0
    await evidence.save()
    return True


async def _whole_month(
    sweeping: _Pass, evidence: SweepEvidence, handler: Handler, written: list[str]
) -> bool:
    """Examine the months of events not examined yet (see :mod:`cdlm.retention.months`) until
    one is disposed of whole, which is this batch's work (True). False once none is left: the
    batch goes on row by row."""
    holds = Holds.of(await active_holds())
    run = sweeping.run
    prefix = f"{evidence.category}/{run.as_of:%Y/%m/%d}/{run.id}/{evidence.batches:06d}"
    examined = False
    while (month := await months.next_month(evidence)) is not None:
        examined = True
        whole = await months.dispose_month(
            evidence,
            month,
            own=sweeping.own,
            held_customers=holds.customers,
            held_categories=holds.categories,
            vault=sweeping.vault,
            store=sweeping.store,
            handler=handler,
            archive_prefix=prefix,
            written=written,
        )
        if whole:
            await _audit(sweeping.actor, evidence, [])
            evidence.batches += 1
            evidence.failures = 0
            await evidence.save()
            return True
    if examined:
        await evidence.save(update_fields=["month_cursor"])
    return False


async def _audit(actor: Principal, evidence: SweepEvidence, ids: list[str]) -> None:
    """The batch's audit entry (and one per customer disposed of as a whole)."""
    await audit.record(
        actor,
        f"retention.{evidence.action.value}",
        target_type="sweep_evidence",
        target_id=evidence.id,
        fields=[evidence.category],
    )
    if evidence.category == "customers.inactive" and ids:
        await audit.record_many(
            actor,
            f"retention.{evidence.action.value}",
            target_type="customer",
            target_ids=ids,
        )


async def sweep(
    actor: Principal,
    vault: Vault,
    store: archive.ArchiveStore,
    *,
    max_seconds: float | None = None,
    batch: int = BATCH,
) -> Report:
    """Run (or resume) a sweep until it is done or ``max_seconds`` have passed."""
    await vault.ready()
    started = time.monotonic()
    run = await _current_run(actor)
    evidence = await SweepEvidence.filter(run_id=run.id).order_by("category")
    own = _own_event_policies([e.category for e in evidence])
    sweeping = _Pass(actor, vault, store, run, own, batch)
    for item in evidence:
        while await _guarded_batch(sweeping, item.id):
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                return await _report(run, finished=False)
    async with in_transaction():
        current = await SweepRun.filter(id=run.id).select_for_update().first()
        if current is not None and current.finished_at is None:
            current.finished_at = clock.now()
            await current.save(update_fields=["finished_at"])
            await audit.record(actor, "retention.sweep", target_type="sweep_run", target_id=run.id)
    return await _report(run, finished=True)


async def _guarded_batch(sweeping: _Pass, evidence_id: uuid.UUID) -> bool:
    """A batch; a batch that keeps failing stops its policy's part of the run (noted on its
    evidence) after ``MAX_FAILURES`` tries, so one bad row cannot hold every sweep up."""
    try:
        return await _batch(sweeping, evidence_id)
    except Exception as error:
        async with in_transaction():  # committed before the error goes on
            evidence = await SweepEvidence.filter(id=evidence_id).select_for_update().first()
            if evidence is None:
                raise
            evidence.failures += 1
            give_up = evidence.failures >= MAX_FAILURES
            if give_up:
                await _stop(
                    evidence,
                    f"Stopped after {evidence.failures} failed tries at cursor "
                    f"{evidence.cursor} ({type(error).__name__}); the next run tries again.",
                )
            await evidence.save(update_fields=["failures"])
        if not give_up:
            raise
        logger.error(
            "retention batch keeps failing",
            extra={"evidence": str(evidence_id), "error_type": type(error).__name__},
        )
        return False


async def _report(run: SweepRun, *, finished: bool) -> Report:
    evidence = await SweepEvidence.filter(run_id=run.id).order_by("category")
    return Report(run.id, run.as_of, False, finished, [Outcome.of(e) for e in evidence])


def runs_query(finished: bool | None = None) -> QuerySet[SweepRun]:
    """The runs (only finished or unfinished ones when ``finished`` says), unordered (the
    caller pages them)."""
    query = SweepRun.all()
    if finished is not None:
        query = query.filter(finished_at__isnull=not finished)
    return query


async def runs_by_ids(ids: list[uuid.UUID]) -> dict[uuid.UUID, SweepRun]:
    """Runs by id (one query)."""
    return {r.id: r for r in await SweepRun.filter(id__in=list(set(ids)))}


async def outcomes_of(run_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Outcome]]:
    """Each run's evidence, by category (one query)."""
    by_run: dict[uuid.UUID, list[Outcome]] = {i: [] for i in run_ids}
    evidence = await SweepEvidence.filter(run_id__in=list(set(run_ids))).order_by("category")
    for item in evidence:
        by_run[item.run_id].append(Outcome.of(item))  # type: ignore[attr-defined]
    return by_run

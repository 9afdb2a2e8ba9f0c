"""A match run: score profiles against their blocks, queue candidates, merge the sure ones.

Run by ``cdlm match run``, the ``match_run`` Lambda schedule and after large imports; never by
the API (it imports Splink). One run at a time: a second is refused while a PostgreSQL
advisory lock, held on a connection of its own for the whole run, says one is going.

A run is incremental by default: profiles created or changed since the previous run began are
compared against every profile in their blocks (``--full`` compares everyone). The focus is
worked through in chunks in (updated_at, id) order; after each chunk its candidates and merges
are committed with the run's cursor, so a run stopped by its time budget, or killed, is resumed
by the next one. Decrypted values exist only in this process's memory (and the in-memory DuckDB
the engine uses); what is stored is pairs, scores, per-comparison weights and keyed digests.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from cdlm.config import Settings
from cdlm.core import clock
from cdlm.core.errors import Conflict, DomainError, ErrorCode
from cdlm.core.principal import Principal
from cdlm.core.transactions import retrying
from cdlm.core.vocabulary import SourceKind
from cdlm.db.connection import try_session_lock
from cdlm.holds import service as legal_holds
from cdlm.matching import decision, digests
from cdlm.matching.conflicts import conflicts
from cdlm.matching.features import MatchRecord
from cdlm.matching.merge import MergeInput, merge_locked
from cdlm.matching.models import CandidateStatus, MatchModel, MatchRun, MergeKind, RunStatus
from cdlm.vault import purposes as sealed_for
from cdlm.vault.service import Vault

RUN_LOCK = 0x6D617463  # "matc"
DECRYPT_BATCH = 5_000
#: Times the survivors of a run's merges are scored again within the run.
SETTLING_PASSES = 2
#: Progress callback: (stage, done, total).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RunOptions:
    """How to run: everyone or only the changed, retrain or reuse the stored model."""

    thresholds: decision.Thresholds
    full: bool = False
    train: bool = False
    budget_seconds: float | None = None
    chunk_size: int = 50_000
    trust: dict[SourceKind, int] | None = None
    merge_concurrency: int = 4


@dataclass
class _Profile:
    record: MatchRecord
    digest: str
    created_at: datetime
    updated_at: datetime


@dataclass
class _Loaded:
    profiles: dict[uuid.UUID, _Profile] = field(default_factory=dict)

    @property
    def records(self) -> list[MatchRecord]:
        return [p.record for p in self.profiles.values()]


class _Budget:
    def __init__(self, seconds: float | None) -> None:
        self.started = time.monotonic()
        self.seconds = seconds

    @property
    def spent(self) -> bool:
        return self.seconds is not None and time.monotonic() - self.started > self.seconds

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _no_progress(stage: str, done: int, total: int) -> None:
    """Progress is not shown."""


async def run(
    actor: Principal, vault: Vault, options: RunOptions, progress: Progress = _no_progress
) -> MatchRun:
    """One match run (refused with ``RUN_IN_PROGRESS`` while another runs); returns its
    evidence."""
    client = get_connection("default")
    async with client.acquire_connection() as connection:
        if not await try_session_lock(connection, RUN_LOCK):
            raise Conflict(
                "A match run is already running; this one was not started.",
                code=ErrorCode.RUN_IN_PROGRESS,
            )
        try:
            return await _run(actor, vault, options, progress)
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", RUN_LOCK)


async def _starting_point(options: RunOptions) -> tuple[bool, datetime | None, Any, Any]:
    """(full, since, cursor_at, cursor_id) of a new run: where an unfinished run stopped, or
    from the start of the last finished one."""
    # Rows still "running" belong to a process that died (this one holds the lock).
    await MatchRun.filter(status=RunStatus.RUNNING).update(status=RunStatus.INTERRUPTED)
    latest = await MatchRun.all().order_by("-started_at").first()
    if not options.full and latest is not None and latest.status is not RunStatus.FINISHED:
        return latest.full, latest.since, latest.cursor_at, latest.cursor_id
    if options.full:
        return True, None, None, None
    finished = await MatchRun.filter(status=RunStatus.FINISHED).order_by("-started_at").first()
    if finished is None:
        return True, None, None, None
    return False, finished.seen_until or finished.started_at, None, None


async def _run(actor: Principal, vault: Vault, options: RunOptions, progress: Progress) -> MatchRun:
    budget = _Budget(options.budget_seconds)
    full, since, cursor_at, cursor_id = await _starting_point(options)
    evidence = await MatchRun.create(
        id=uuid.uuid4(),
        status=RunStatus.RUNNING,
        full=full,
        trained=False,
        started_at=clock.now(),
        started_by_kind=actor.kind.value,
        started_by_id=actor.id,
        since=since,
        cursor_at=cursor_at,
        cursor_id=cursor_id,
        budget_seconds=int(options.budget_seconds) if options.budget_seconds else None,
        review_above=options.thresholds.review_above,
        auto_merge_above=options.thresholds.auto_merge_above,
    )
    try:
        await _work(actor, vault, options, evidence, budget, progress)
    except Exception as error:
        evidence.status = RunStatus.FAILED
        evidence.error = type(error).__name__  # never the message: it may quote a value
        raise
    finally:
        evidence.finished_at = clock.now()
        evidence.duration_seconds = round(budget.elapsed, 3)
        await evidence.save()
    return evidence


@dataclass
class _State:
    """What the chunks of a run share."""

    actor: Principal
    vault: Vault
    options: RunOptions
    evidence: MatchRun
    loaded: _Loaded
    held: set[uuid.UUID]
    model_version: int
    model_json: str
    gone: set[uuid.UUID] = field(default_factory=set)  # merged into others in this run
    survivors: set[uuid.UUID] = field(default_factory=set)  # changed by this run's merges
    outcomes: dict[decision.Pair, decision.Action] = field(default_factory=dict)
    scored: int = 0  # pairs of the chunks at or above the review threshold


async def _work(
    actor: Principal,
    vault: Vault,
    options: RunOptions,
    evidence: MatchRun,
    budget: _Budget,
    progress: Progress,
) -> None:
    evidence.seen_until = await _seen_until()
    loaded = await _load(vault, progress)
    evidence.profiles = len(loaded.profiles)
    model = await _model(options, evidence, loaded, progress)
    evidence.model_version = model.version
    focus = _focus(loaded, evidence)
    evidence.focus = len(focus)
    await evidence.save()
    state = _State(
        actor,
        vault,
        options,
        evidence,
        loaded,
        {h.customer_id for h in await legal_holds.active_holds() if h.customer_id is not None},
        model.version,
        json.dumps(model.settings),
    )
    done: set[str] = set()
    progress("comparing", 0, len(focus))
    for start in range(0, len(focus), options.chunk_size):
        if budget.spent:
            evidence.status = RunStatus.INTERRUPTED
            return
        chunk = focus[start : start + options.chunk_size]
        ids = {str(c) for c in chunk}
        await _score(state, ids, done)
        done |= ids
        last = loaded.profiles[chunk[-1]]
        evidence.cursor_at, evidence.cursor_id = last.updated_at, chunk[-1]
        await evidence.save()
        progress("comparing", start + len(chunk), len(focus))
    # A merged profile holds more than either side did: score the survivors again, so a third
    # record that resembled the merged pair better than either record joins in this run.
    for _ in range(SETTLING_PASSES):
        changed = state.survivors - state.gone
        state.survivors = set()
        if not changed or budget.spent:
            break
        await _refresh(vault, loaded, changed, state.gone)
        await _score(state, {str(c) for c in changed}, set(), count=False)
    evidence.status = RunStatus.FINISHED


async def _seen_until() -> datetime:
    """Where the next incremental run starts: now, or when the oldest transaction still open
    began (a profile it writes gets an earlier time but commits after this run read)."""
    rows = await get_connection("default").execute_query_dict(
        'SELECT coalesce(extract(epoch FROM now() - min("xact_start")), 0) AS lag '
        'FROM "pg_stat_activity" WHERE "datname" = current_database() '
        'AND "pid" <> pg_backend_pid() AND "xact_start" IS NOT NULL'
    )
    return clock.now() - timedelta(seconds=max(float(rows[0]["lag"]), 0.0))


async def _model(
    options: RunOptions, evidence: MatchRun, loaded: _Loaded, progress: Progress
) -> MatchModel:
    """The stored model, trained first when asked or when there is none."""
    from cdlm.matching import engine  # Splink and DuckDB: only when a run really starts

    model = await MatchModel.all().order_by("-version").first()
    if not options.train and model is not None:
        return model
    progress("training", 0, 1)
    trained = engine.train(loaded.records)
    evidence.trained = True
    progress("training", 1, 1)
    return await MatchModel.create(
        settings=json.loads(trained),
        trained_at=clock.now(),
        trained_on=len(loaded.profiles),
        run_id=evidence.id,
    )


async def _score(state: _State, focus: set[str], done: set[str], *, count: bool = True) -> None:
    """Score the pairs of ``focus`` against their blocks (none with a side in ``done``) and
    settle them; with ``count``, add the pairs compared to the evidence (a blocking pass of its
    own: settling passes skip it)."""
    from cdlm.matching import engine

    records = state.loaded.records
    if count:
        state.evidence.compared_pairs += engine.comparison_count(
            records, state.model_json, focus=focus, done=done
        )
    pairs = engine.predict(
        records,
        state.model_json,
        threshold=state.options.thresholds.review_above,
        focus=focus,
        done=done,
    )
    if count:
        state.scored += len(pairs)
        state.evidence.dropped = max(state.evidence.compared_pairs - state.scored, 0)
    await _settle(state, pairs)


_PROFILES = (
    'SELECT "id", "profile_sealed", "created_at", "updated_at" FROM "customers" '
    'WHERE "erased_at" IS NULL AND "merged_into_id" IS NULL AND "restricted_at" IS NULL '
    'AND ($1::uuid[] IS NULL OR "id" = ANY($1::uuid[])) ORDER BY "id"'
)


async def _load(
    vault: Vault, progress: Progress, only: Collection[uuid.UUID] | None = None
) -> _Loaded:
    """Every profile that may be matched (not erased, merged or restricted), or ``only`` these,
    decrypted and normalized in memory."""
    client = get_connection("default")
    wanted = list(only) if only is not None else None
    rows = await client.execute_query_dict(_PROFILES, [wanted])
    external = await digests.external_tokens(wanted)
    await vault.ready()
    loaded = _Loaded()
    progress("loading", 0, len(rows))
    for start in range(0, len(rows), DECRYPT_BATCH):
        batch = rows[start : start + DECRYPT_BATCH]
        keys = await vault.customer_keys(r["id"] for r in batch)
        for row in batch:
            key = keys.get(row["id"])
            if key is None:
                continue
            values = vault.open(key, row["id"], sealed_for.PROFILE, bytes(row["profile_sealed"]))
            record = digests.record_of(row["id"], values, external)
            loaded.profiles[row["id"]] = _Profile(
                record, digests.digest(vault, record), row["created_at"], row["updated_at"]
            )
        progress("loading", start + len(batch), len(rows))
    return loaded


async def _refresh(
    vault: Vault, loaded: _Loaded, changed: set[uuid.UUID], gone: set[uuid.UUID]
) -> None:
    """Forget the profiles merged away and read the changed ones again."""
    for customer_id in gone:
        loaded.profiles.pop(customer_id, None)
    fresh = await _load(vault, _no_progress, changed)
    for customer_id in changed:
        loaded.profiles.pop(customer_id, None)
    loaded.profiles.update(fresh.profiles)


def _focus(loaded: _Loaded, evidence: MatchRun) -> list[uuid.UUID]:
    """The profiles to compare against their blocks, in (updated_at, id) order, after the
    cursor of a resumed run."""
    position = (evidence.cursor_at, evidence.cursor_id) if evidence.cursor_at is not None else None
    chosen = [
        (profile.updated_at, customer_id)
        for customer_id, profile in loaded.profiles.items()
        if evidence.since is None or profile.updated_at > evidence.since
    ]
    chosen.sort()
    if position is not None:
        chosen = [c for c in chosen if c > position]
    return [customer_id for _, customer_id in chosen]


def _ids(pair: Any) -> decision.Pair:
    return uuid.UUID(pair.left_id), uuid.UUID(pair.right_id)


async def _remembered(pairs: Sequence[decision.Pair]) -> dict[decision.Pair, tuple[str, str, str]]:
    """(status, left digest, right digest) of the pairs already candidates (one query)."""
    if not pairs:
        return {}
    rows = await get_connection("default").execute_query_dict(
        'SELECT "left_id", "right_id", "status", "left_digest", "right_digest" '
        'FROM "match_candidates" WHERE ("left_id", "right_id") IN '
        "(SELECT * FROM unnest($1::uuid[], $2::uuid[]))",
        [[p[0] for p in pairs], [p[1] for p in pairs]],
    )
    return {
        (r["left_id"], r["right_id"]): (r["status"], r["left_digest"], r["right_digest"])
        for r in rows
    }


async def _settle(state: _State, pairs: Sequence[Any]) -> None:
    """Decide a chunk's pairs: store candidates, then merge the clusters sure enough."""
    profiles = state.loaded.profiles
    evidence = state.evidence
    live = [
        p for p in pairs if not ({*_ids(p)} & state.gone) and all(i in profiles for i in _ids(p))
    ]
    known = await _remembered([_ids(p) for p in live])
    verdicts: dict[decision.Pair, tuple[Any, decision.Verdict]] = {}
    for pair in live:
        left, right = _ids(pair)
        status, left_digest, right_digest = known.get((left, right), ("", "", ""))
        reopened = status == CandidateStatus.NOT_A_MATCH.value
        if reopened and (left_digest, right_digest) == (
            profiles[left].digest,
            profiles[right].digest,
        ):
            continue  # a steward said two people, and neither has changed since
        found = conflicts(profiles[left].record, profiles[right].record)
        held = left in state.held or right in state.held
        verdict = decision.decide(pair.probability, found, held, state.options.thresholds)
        if reopened and verdict.action is decision.Action.MERGE:
            # A steward said two people: a change re-opens the question, for a steward.
            verdict = decision.Verdict(decision.Action.REVIEW, (decision.Hold.DECIDED.value,))
        verdicts[(left, right)] = (pair, verdict)
    to_merge = {
        ids: pair.probability
        for ids, (pair, verdict) in verdicts.items()
        if verdict.action is decision.Action.MERGE
    }
    plans, reviewed = decision.plan_merges(
        to_merge,
        lambda a, b: bool(conflicts(profiles[a].record, profiles[b].record)),
        {c: (p.created_at, c) for c, p in profiles.items()},
    )
    for ids in reviewed:
        pair, _ = verdicts[ids]
        verdicts[ids] = (
            pair,
            decision.Verdict(decision.Action.REVIEW, (decision.Hold.CLUSTER_CONFLICT.value,)),
        )
    stored = await _store_candidates(evidence, state.loaded, verdicts, state.model_version)
    for ids, (_, verdict) in verdicts.items():
        state.outcomes[ids] = verdict.action
    # Clusters are disjoint: several merge at once (the database works on one while this
    # process prepares another); the members of one cluster merge in turn.
    gate = asyncio.Semaphore(state.options.merge_concurrency)

    async def merge_cluster(plan: decision.MergePlan) -> None:
        async with gate:
            for member in plan.merged:
                pair_ids = (min(plan.survivor, member), max(plan.survivor, member))
                merged = await _merge(
                    state, plan.survivor, member, stored.get(pair_ids), to_merge.get(pair_ids)
                )
                if merged:
                    evidence.auto_merged += 1
                    state.gone.add(member)
                    state.survivors.add(plan.survivor)
                elif pair_ids in state.outcomes:
                    state.outcomes[pair_ids] = decision.Action.REVIEW

    await asyncio.gather(*(merge_cluster(plan) for plan in plans))
    # Counted once per pair, however many passes scored it.
    evidence.candidates = len(state.outcomes)
    evidence.queued = sum(1 for a in state.outcomes.values() if a is decision.Action.REVIEW)


async def _store_candidates(
    evidence: MatchRun,
    loaded: _Loaded,
    verdicts: dict[decision.Pair, tuple[Any, decision.Verdict]],
    model_version: int,
) -> dict[decision.Pair, uuid.UUID]:
    """Insert or refresh the candidates (pending); a pair a steward decided stays decided
    unless one side's compared values changed. Returns the candidate id of each pair."""
    if not verdicts:
        return {}
    now = clock.now()
    items = list(verdicts.items())
    rows = await get_connection("default").execute_query_dict(
        'INSERT INTO "match_candidates" ("id", "left_id", "right_id", "status", "probability", '
        '"match_weight", "comparisons", "conflicts", "model_version", "run_id", "found_at", '
        '"updated_at", "left_digest", "right_digest") '
        "SELECT u.id, u.l, u.r, 'pending', u.p, u.w, u.c::jsonb, u.x::jsonb, $9, $10, $11, $11, "
        "u.ld, u.rd FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::float8[], $5::float8[], "
        "$6::text[], $7::text[], $8::text[], $12::text[]) AS u(id, l, r, p, w, c, x, ld, rd) "
        'ON CONFLICT ("left_id", "right_id") DO UPDATE SET "status" = \'pending\', '
        '"probability" = EXCLUDED."probability", "match_weight" = EXCLUDED."match_weight", '
        '"comparisons" = EXCLUDED."comparisons", "conflicts" = EXCLUDED."conflicts", '
        '"model_version" = EXCLUDED."model_version", "run_id" = EXCLUDED."run_id", '
        '"updated_at" = EXCLUDED."updated_at", "left_digest" = EXCLUDED."left_digest", '
        '"right_digest" = EXCLUDED."right_digest", "decided_at" = NULL, '
        '"decided_by_kind" = NULL, "decided_by_id" = NULL, "note_sealed" = NULL '
        "WHERE \"match_candidates\".\"status\" IN ('pending', 'superseded') "
        'OR ("match_candidates"."status" = \'not_a_match\' AND '
        '("match_candidates"."left_digest", "match_candidates"."right_digest") '
        'IS DISTINCT FROM (EXCLUDED."left_digest", EXCLUDED."right_digest")) '
        'RETURNING "id", "left_id", "right_id"',
        [
            [uuid.uuid4() for _ in items],
            [ids[0] for ids, _ in items],
            [ids[1] for ids, _ in items],
            [pair.probability for _, (pair, _) in items],
            [pair.match_weight for _, (pair, _) in items],
            [
                json.dumps(
                    [
                        {"name": c.name, "level": c.level, "weight": c.weight}
                        for c in pair.comparisons
                    ]
                )
                for _, (pair, _) in items
            ],
            [json.dumps(list(verdict.reasons)) for _, (_, verdict) in items],
            [loaded.profiles[ids[0]].digest for ids, _ in items],
            model_version,
            evidence.id,
            now,
            [loaded.profiles[ids[1]].digest for ids, _ in items],
        ],
    )
    return {(r["left_id"], r["right_id"]): r["id"] for r in rows}


async def _merge(
    state: _State,
    survivor: uuid.UUID,
    member: uuid.UUID,
    candidate_id: uuid.UUID | None,
    probability: float | None,
) -> bool:
    """One automatic merge in a transaction of its own; False when it was refused (the profile
    changed meanwhile: erased, restricted, merged), leaving the candidate pending."""
    change = MergeInput(survivor, member, None, MergeKind.AUTOMATIC, candidate_id, probability)

    async def work() -> None:
        async with in_transaction():
            await merge_locked(state.actor, state.vault, change, state.options.trust)

    try:
        await retrying(work)
    except DomainError:
        return False
    return True


def options_from(
    settings: Settings,
    *,
    full: bool = False,
    train: bool = False,
    budget_seconds: float | None = None,
) -> RunOptions:
    """Run options from the settings (thresholds, trust, budget) and the caller's choices."""
    from cdlm.customers.survivorship import trust_table

    matching = settings.matching
    return RunOptions(
        thresholds=decision.Thresholds(matching.review_above, matching.auto_merge_above),
        full=full,
        train=train,
        budget_seconds=budget_seconds if budget_seconds is not None else matching.budget_seconds,
        trust=trust_table(settings.source_trust),
        # One connection holds the run's lock; merges share the others.
        merge_concurrency=max(1, min(4, settings.db_pool_max - 1)),
    )


def evidence_json(evidence: MatchRun) -> dict[str, Any]:
    """A run's evidence as JSON-ready data (counts, ids and times only)."""
    return {
        "run_id": str(evidence.id),
        "status": evidence.status.value,
        "full": evidence.full,
        "trained": evidence.trained,
        "model_version": evidence.model_version,
        "profiles": evidence.profiles,
        "focus": evidence.focus,
        "compared_pairs": evidence.compared_pairs,
        "candidates": evidence.candidates,
        "queued": evidence.queued,
        "auto_merged": evidence.auto_merged,
        "dropped": evidence.dropped,
        "duration_seconds": evidence.duration_seconds,
    }

"""Match runs end to end: real profiles, the real engine, candidates, merges and evidence."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
from bench.people import LabelledRecord, people
from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from cdlm.core import clock
from cdlm.core.errors import Conflict, ErrorCode
from cdlm.core.principal import SYSTEM
from cdlm.customers import service as customers
from cdlm.customers.ingest import CustomerIngest, IngestResult, ingest_batch
from cdlm.customers.models import Customer, SourceRecord
from cdlm.matching import runs
from cdlm.matching import service as queue
from cdlm.matching.decision import Thresholds
from cdlm.matching.models import CandidateStatus, MatchCandidate, MatchModel, MatchRun, RunStatus
from cdlm.vault.service import Vault
from tests.factories import source

THRESHOLDS = Thresholds(review_above=0.80, auto_merge_above=0.95)


async def _ingest(vault: Vault, records: list[LabelledRecord]) -> dict[uuid.UUID, int]:
    """Ingest through the acquisition path; returns each source record's true person."""
    truth: dict[uuid.UUID, int] = {}
    for start in range(0, len(records), 200):
        batch = records[start : start + 200]
        async with in_transaction():
            results = await ingest_batch(
                vault,
                [
                    CustomerIngest(
                        source=source("crm"),
                        profile=dict(r.profile),
                        external_ids=list(r.external_ids),
                    )
                    for r in batch
                ],
            )
        for record, result in zip(batch, results, strict=True):
            if isinstance(result, IngestResult):
                truth[result.source_record_id] = record.person
    return truth


async def _profiles_of_people(truth: dict[uuid.UUID, int]) -> dict[uuid.UUID, set[int]]:
    """Live profile → the true people of the records it holds."""
    held: dict[uuid.UUID, set[int]] = defaultdict(set)
    for record_id, customer_id in await SourceRecord.all().values_list("id", "customer_id"):
        if record_id in truth:
            held[customer_id].add(truth[record_id])
    return held


def _options(**changes: object) -> runs.RunOptions:
    return runs.RunOptions(thresholds=THRESHOLDS, **changes)  # type: ignore[arg-type]


POPULATION = people(600, seed=11)


@pytest.fixture(scope="session")
def trained_model() -> str:
    """One model for the tests that do not test training (training takes seconds)."""
    from cdlm.matching import engine
    from cdlm.matching.features import match_record

    return engine.train([match_record(r.record_id, r.profile, r.external_ids) for r in POPULATION])


@pytest.fixture
async def population(vault: Vault, trained_model: str) -> dict[uuid.UUID, int]:
    await MatchModel.create(
        settings=json.loads(trained_model), trained_at=clock.now(), trained_on=len(POPULATION)
    )
    return await _ingest(vault, POPULATION)


async def test_a_full_run_merges_sure_pairs_queues_the_rest_and_never_joins_two_people(
    vault: Vault,
    population: dict[uuid.UUID, int],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.chdir(tmp_path)
    profiles_before = await customers.count()

    evidence = await runs.run(SYSTEM, vault, _options(full=True, train=True))

    assert evidence.status is RunStatus.FINISHED
    assert evidence.trained
    assert evidence.model_version is not None
    assert evidence.profiles == evidence.focus == profiles_before
    assert evidence.compared_pairs > evidence.candidates > 0
    assert evidence.auto_merged > 0
    assert await customers.count() == profiles_before - evidence.auto_merged
    held = await _profiles_of_people(population)
    assert all(len(persons) == 1 for persons in held.values()), "two people in one profile"
    stored = await MatchCandidate.all()
    assert stored
    assert all(c.left_id < c.right_id for c in stored)
    # A pending pair with a profile merged in the same run waits for the survivor's next score.
    assert {c.status for c in stored} <= {
        CandidateStatus.PENDING,
        CandidateStatus.MERGED,
        CandidateStatus.SUPERSEDED,
    }
    assert await MatchCandidate.filter(status=CandidateStatus.MERGED).count() > 0
    assert all(c.comparisons and "level" in c.comparisons[0] for c in stored)
    # No value of anyone reached the log, a file or the stored model.
    model = (await MatchModel.get(version=evidence.model_version)).settings
    some = await _a_profile(vault)
    for value in (some["email"], some["family_name"]):
        assert value not in caplog.text
        assert value not in str(model)
    assert os.listdir(tmp_path) == []


async def _a_profile(vault: Vault) -> dict[str, str]:
    row = await Customer.filter(present_fields__contains=["email"]).first()
    assert row is not None
    key = await vault.customer_key(row.id)
    values: dict[str, str] = vault.open(key, row.id, "profile", row.profile_sealed)
    return values


async def test_a_second_run_is_refused_while_one_runs(
    vault: Vault, population: dict[uuid.UUID, int]
) -> None:
    async with get_connection("default").acquire_connection() as connection:
        await connection.execute("SELECT pg_advisory_lock($1)", runs.RUN_LOCK)
        try:
            with pytest.raises(Conflict) as refused:
                await runs.run(SYSTEM, vault, _options())
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", runs.RUN_LOCK)
    assert refused.value.code is ErrorCode.RUN_IN_PROGRESS
    assert await MatchRun.all().count() == 0


async def test_an_incremental_run_compares_only_what_changed_and_reuses_the_model(
    vault: Vault, population: dict[uuid.UUID, int]
) -> None:
    with clock.travel(timedelta(hours=1)):
        first = await runs.run(SYSTEM, vault, _options(full=True))
    survivors = await Customer.filter(
        updated_at__gt=first.started_at, merged_into_id__isnull=True
    ).count()
    with clock.travel(timedelta(hours=2)):
        someone = await _a_profile(vault)
        late = await _ingest(
            vault,
            [
                LabelledRecord(
                    "late",
                    -1,
                    {
                        "given_name": someone.get("given_name", "Sam"),
                        "family_name": someone.get("family_name", "Lee"),
                        "birth_date": someone.get("birth_date", "1980-01-02"),
                        "email": "brand.new.address@example.org",
                    },
                )
            ],
        )

        second = await runs.run(SYSTEM, vault, _options())

    assert second.status is RunStatus.FINISHED
    assert not second.full
    assert not second.trained
    assert second.model_version == first.model_version
    assert first.seen_until is not None
    assert second.since == first.seen_until
    # The new profile (a new email: no identifier matched), and the survivors of the first
    # run's merges (they changed).
    assert len(late) == 1
    assert second.focus == survivors + 1
    assert second.focus < first.profiles // 4


async def test_an_interrupted_run_is_resumed_from_its_cursor(
    vault: Vault, population: dict[uuid.UUID, int]
) -> None:
    await runs.run(SYSTEM, vault, _options(full=True))
    ordered = await Customer.filter(merged_into_id__isnull=True).order_by("updated_at", "id")
    cut = ordered[len(ordered) // 2]
    await MatchRun.create(
        id=uuid.uuid4(),
        status=RunStatus.INTERRUPTED,
        full=True,
        trained=False,
        started_at=clock.now(),
        started_by_kind="system",
        since=None,
        cursor_at=cut.updated_at,
        cursor_id=cut.id,
        review_above=0.8,
        auto_merge_above=0.95,
    )

    resumed = await runs.run(SYSTEM, vault, _options())

    assert resumed.full
    assert resumed.status is RunStatus.FINISHED
    after_cut = [c for c in ordered if (c.updated_at, c.id) > (cut.updated_at, cut.id)]
    assert resumed.focus == len(after_cut)


async def test_a_pair_said_to_be_two_people_is_proposed_again_only_when_one_side_changes(
    vault: Vault, population: dict[uuid.UUID, int]
) -> None:
    await runs.run(SYSTEM, vault, _options(full=True))
    # The most probable pair: a changed city must not take it below the review threshold
    # (an arbitrary pending pair could fall below it, and rightly not be proposed again).
    pending = (
        await MatchCandidate.filter(status=CandidateStatus.PENDING)
        .order_by("-probability", "id")
        .first()
    )
    assert pending is not None, "the population yields pairs for review"
    await queue.resolve(
        SYSTEM, vault, queue.ResolveInput(pending.id, queue.Resolution.NOT_A_MATCH, "Twins.")
    )

    await runs.run(SYSTEM, vault, _options(full=True))
    assert (await MatchCandidate.get(id=pending.id)).status is CandidateStatus.NOT_A_MATCH

    await customers.update_customer(SYSTEM, vault, pending.left_id, {"city": "Elsewhere"})
    await runs.run(SYSTEM, vault, _options())
    again = await MatchCandidate.get(id=pending.id)
    assert again.status is CandidateStatus.PENDING
    assert again.decided_at is None
    assert again.note_sealed is None


async def test_with_auto_merge_off_everything_waits_for_a_steward(
    vault: Vault, population: dict[uuid.UUID, int]
) -> None:
    profiles = await customers.count()

    evidence = await runs.run(
        SYSTEM,
        vault,
        runs.RunOptions(Thresholds(0.80, None), full=True),
    )

    assert evidence.auto_merged == 0
    assert evidence.queued == evidence.candidates > 0
    assert await customers.count() == profiles

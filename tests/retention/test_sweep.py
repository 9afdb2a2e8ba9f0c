"""The retention sweep with a moved clock: disposal as declared, holds, dry runs, archives,
evidence, and resumption without double work."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdlm.audit.models import AuditEntry
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.customers.models import Customer, Event, SourceRecord
from cdlm.holds import service as legal_holds
from cdlm.retention import archive, policies
from cdlm.retention import service as holds
from cdlm.retention import sweep as sweeping
from cdlm.retention.categories import handler_for
from cdlm.retention.models import Action, SweepEvidence, SweepRun, Trigger
from cdlm.retention.policies import PolicyChange
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.retention.support import NOW, ago, customer_with_events

COLLECTION = Trigger.SINCE_COLLECTION


@pytest.fixture
def store(short_tmp: Path) -> archive.LocalArchiveStore:
    return archive.LocalArchiveStore(short_tmp / "archive")


async def _policy(category: str, days: int, action: Action, trigger: Trigger = COLLECTION) -> None:
    await policies.create_policy(
        SYSTEM, category=category, period_days=days, trigger=trigger, action=action
    )


async def _types(customer_id: uuid.UUID) -> list[tuple[str, bool]]:
    rows = await Event.filter(customer_id=customer_id).order_by("occurred_at")
    return [(e.type, e.properties_sealed is not None) for e in rows]


async def test_data_past_its_period_is_disposed_of_and_held_data_is_kept(
    vault: Vault, store: archive.LocalArchiveStore
) -> None:
    ada = await customer_with_events(
        vault, "ada@example.com", events={"page_view": [400, 100], "purchase": [400]}
    )
    bob = await customer_with_events(vault, "bob@example.com", events={"page_view": [500]})
    await _policy("events", 365, Action.DELETE)
    await holds.place_hold(SYSTEM, reason="Litigation", customer_id=bob)
    with clock.frozen_at(NOW):
        await holds.place_hold(SYSTEM, reason="Tax", category="events.purchase")
        report = await sweeping.sweep(SYSTEM, vault, store)
    [outcome] = report.outcomes
    assert report.finished
    assert (outcome.disposed, outcome.skipped_held) == (1, 2)
    assert outcome.first_at == outcome.last_at == ago(400)
    assert len(outcome.digest) == 64
    assert await _types(ada) == [("purchase", True), ("page_view", True)]
    assert await Event.filter(customer_id=bob).count() == 1
    assert await AuditEntry.filter(action="retention.sweep").count() == 1
    evidence = await SweepEvidence.get(run_id=report.run_id)
    assert (evidence.category, evidence.action, evidence.period_days) == (
        "events",
        Action.DELETE,
        365,
    )
    assert evidence.done


async def test_a_dry_run_changes_nothing_and_forecasts_the_sweep(
    vault: Vault,
    store: archive.LocalArchiveStore,
    gql: GraphQLClient,
    admin_headers: dict[str, str],
) -> None:
    await customer_with_events(vault, "ada@example.com", events={"page_view": [400, 380, 10]})
    await _policy("events", 365, Action.DELETE)
    with clock.frozen_at(NOW):
        forecast = await sweeping.preview()
        answer = await gql(
            "{ retentionPreview { asOf outcomes { category eventType disposed skippedHeld "
            "digest } } }",
            None,
            admin_headers,
        )
    assert await Event.all().count() == 3
    assert await SweepRun.all().count() == 0
    [expected] = forecast.outcomes
    assert expected.disposed == 2
    preview = answer["data"]["retentionPreview"]
    assert preview["asOf"] == NOW.isoformat()
    assert preview["outcomes"] == [
        {
            "category": "EVENTS",
            "eventType": None,
            "disposed": 2,
            "skippedHeld": 0,
            "digest": expected.digest,
        }
    ]
    with clock.frozen_at(NOW):
        done = await sweeping.sweep(SYSTEM, vault, store)
    assert done.outcomes[0].disposed == 2
    assert done.outcomes[0].digest == expected.digest  # same rows, same batch


async def test_type_policies_override_the_general_one_and_archives_stay_readable_until_erasure(
    vault: Vault, store: archive.LocalArchiveStore
) -> None:
    ada = await customer_with_events(
        vault, "ada@example.com", events={"purchase": [800, 200], "page_view": [800]}
    )
    await _policy("events", 365, Action.DELETE)
    await _policy("events.purchase", 730, Action.ARCHIVE)
    with clock.frozen_at(NOW):
        report = await sweeping.sweep(SYSTEM, vault, store)
    outcomes = {o.category: o for o in report.outcomes}
    assert outcomes["events"].disposed == 1  # the page view; purchases have their own policy
    assert outcomes["events.purchase"].disposed == 1
    assert await _types(ada) == [("purchase", True)]
    [key] = outcomes["events.purchase"].archive_objects
    data = await store.get(key)
    assert b"purchase 800 days ago" not in data  # compressed and sealed
    [record] = await archive.unpack(vault, data)
    assert record is not None
    assert record["properties"]["note"] == "purchase 800 days ago"
    assert record["amount"] == "5.00"
    await vault.shred(ada)  # what an erasure does
    assert await archive.unpack(vault, data) == [None]


async def test_anonymizing_keeps_events_without_their_personal_properties(
    vault: Vault, store: archive.LocalArchiveStore
) -> None:
    ada = await customer_with_events(vault, "ada@example.com", events={"page_view": [400, 10]})
    await _policy("events", 365, Action.ANONYMIZE)
    with clock.frozen_at(NOW):
        first = await sweeping.sweep(SYSTEM, vault, store)
        again = await sweeping.sweep(SYSTEM, vault, store)
    assert first.outcomes[0].disposed == 1
    assert again.outcomes[0].disposed == 0  # nothing new to anonymize
    assert sorted(await _types(ada)) == [("page_view", False), ("page_view", True)]


async def test_inactive_customers_are_disposed_of_as_declared(
    vault: Vault, store: archive.LocalArchiveStore
) -> None:
    gone = await customer_with_events(
        vault, "gone@example.com", created_days_ago=900, events={"page_view": [900]}
    )
    shredded = await customer_with_events(
        vault, "old@example.com", created_days_ago=900, events={"page_view": [850]}
    )
    active = await customer_with_events(
        vault, "active@example.com", created_days_ago=900, events={"page_view": [5]}
    )
    await _policy("customers.inactive", 730, Action.DELETE, Trigger.SINCE_LAST_ACTIVITY)
    await holds.place_hold(SYSTEM, reason="Dispute", customer_id=shredded)
    with clock.frozen_at(NOW):
        report = await sweeping.sweep(SYSTEM, vault, store)
    assert (report.outcomes[0].disposed, report.outcomes[0].skipped_held) == (1, 1)
    assert not await Customer.exists(id=gone)
    assert await vault.customer_keys([gone]) == {}
    assert await Customer.exists(id=active)
    policy = (await policies.all_policies())[0]
    await policies.update_policy(SYSTEM, PolicyChange(policy.id, action=Action.CRYPTO_SHRED))
    await holds.release_hold(SYSTEM, (await legal_holds.holds())[0].id)
    with clock.frozen_at(NOW):
        await sweeping.sweep(SYSTEM, vault, store)
    row = await Customer.get(id=shredded)
    assert row.erased_at is not None
    assert await vault.customer_keys([shredded]) == {}
    assert await Event.filter(customer_id=shredded).count() == 1  # unreadable leftovers


async def test_anonymized_customers_keep_only_non_personal_facts(
    vault: Vault, store: archive.LocalArchiveStore
) -> None:
    old = await customer_with_events(
        vault, "old@example.com", created_days_ago=900, events={"purchase": [850]}
    )
    await _policy("customers.inactive", 730, Action.ANONYMIZE, Trigger.SINCE_LAST_ACTIVITY)
    with clock.frozen_at(NOW):
        await sweeping.sweep(SYSTEM, vault, store)
    row = await Customer.get(id=old)
    assert row.erased_at is not None
    assert row.present_fields == []
    assert await SourceRecord.filter(customer_id=old).count() == 0
    assert await _types(old) == [("purchase", False)]
    assert (await Event.get(customer_id=old)).amount is not None


async def test_an_interrupted_sweep_resumes_without_double_work(
    vault: Vault, store: archive.LocalArchiveStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await customer_with_events(
        vault, "ada@example.com", events={"page_view": [400, 401, 402, 403, 404]}
    )
    await _policy("events", 365, Action.ARCHIVE)
    real = handler_for
    batches = {"n": 0}

    def crashing(category: str, own: frozenset[str] = frozenset()) -> Any:
        handler = real(category, own)

        async def dispose(vault: Vault, action: Action, ids: list[str], keep: Any) -> int:
            batches["n"] += 1
            if batches["n"] == 2:
                raise ConnectionResetError("the database went away")
            return await handler.dispose(vault, action, ids, keep)

        return type(handler)(handler.due, dispose, handler.records)

    monkeypatch.setattr(sweeping, "handler_for", crashing)
    with clock.frozen_at(NOW), pytest.raises(ConnectionResetError):
        await sweeping.sweep(SYSTEM, vault, store, batch=2)
    evidence = await SweepEvidence.get()
    assert (evidence.disposed, evidence.batches, evidence.done) == (2, 1, False)
    assert await Event.all().count() == 3
    # The crashed batch rolled back, and its archive object with it.
    assert len(list(store.directory.rglob("*.jsonl.gz"))) == 1
    monkeypatch.setattr(sweeping, "handler_for", real)
    with clock.frozen_at(NOW):
        resumed = await sweeping.sweep(SYSTEM, vault, store, batch=2)
    assert resumed.finished
    assert resumed.run_id == evidence.run_id  # the same run, resumed
    [outcome] = resumed.outcomes
    assert outcome.disposed == 5
    assert await Event.all().count() == 0
    records = [
        r
        for key in outcome.archive_objects
        for r in await archive.unpack(vault, await store.get(key))
    ]
    assert len(records) == 5  # each archived once (the crashed batch's object was rewritten)
    assert len({r["id"] for r in records if r}) == 5
    assert len(outcome.archive_objects) == 3


async def test_a_time_budget_stops_a_sweep_and_the_next_call_finishes_it(
    vault: Vault, store: archive.LocalArchiveStore
) -> None:
    await customer_with_events(vault, "ada@example.com", events={"page_view": [400, 401, 402]})
    await _policy("events", 365, Action.DELETE)
    with clock.frozen_at(NOW):
        first = await sweeping.sweep(SYSTEM, vault, store, batch=1, max_seconds=0)
        forecast = await sweeping.preview()
    assert not first.finished
    assert first.outcomes[0].disposed == 1
    assert forecast.unfinished_run_id == first.run_id
    with clock.frozen_at(NOW):
        second = await sweeping.sweep(SYSTEM, vault, store, batch=1)
    assert second.finished
    assert second.outcomes[0].disposed == 3
    assert await SweepRun.all().count() == 1


async def test_request_data_and_bookkeeping_are_disposed_of(
    vault: Vault, store: archive.LocalArchiveStore
) -> None:
    from cdlm.idempotency.models import IdempotencyRecord
    from cdlm.ratelimit.models import RateLimitCounter

    await IdempotencyRecord.create(
        scope="s", key="k", fingerprint="f", result={}, created_at=ago(40)
    )
    await IdempotencyRecord.create(
        scope="s", key="new", fingerprint="f", result={}, created_at=ago(1)
    )
    await RateLimitCounter.create(key_digest="d", window_start=ago(3), count=2)
    await _policy("idempotency_records", 30, Action.DELETE)
    await _policy("rate_limit_counters", 2, Action.DELETE)
    with clock.frozen_at(NOW):
        report = await sweeping.sweep(SYSTEM, vault, store)
    assert {o.category: o.disposed for o in report.outcomes} == {
        "idempotency_records": 1,
        "rate_limit_counters": 1,
    }
    assert await IdempotencyRecord.filter(key="new").exists()


async def test_an_s3_archive_store(vault: Vault) -> None:
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(
            Bucket="cdlm-archive", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        store = archive.S3ArchiveStore("cdlm-archive", client=client)
        ada = await customer_with_events(vault, "ada@example.com", events={"purchase": [800]})
        await _policy("events", 365, Action.ARCHIVE)
        with clock.frozen_at(NOW):
            report = await sweeping.sweep(SYSTEM, vault, store)
        [key] = report.outcomes[0].archive_objects
        assert store.location == "s3://cdlm-archive"
        head = client.head_object(Bucket="cdlm-archive", Key=key)
        assert head["ContentType"] == "application/gzip"
        [record] = await archive.unpack(vault, await store.get(key))
        assert record is not None
        assert record["type"] == "purchase"
    assert not await Event.filter(customer_id=ada).exists()


async def test_two_sweeps_started_together_make_one_run_and_dispose_of_each_row_once(
    vault: Vault, store: archive.LocalArchiveStore
) -> None:
    import asyncio

    await customer_with_events(vault, "ada@example.com", events={"page_view": [400, 401, 402, 403]})
    await _policy("events", 365, Action.ARCHIVE)
    with clock.frozen_at(NOW):
        first, second = await asyncio.gather(
            sweeping.sweep(SYSTEM, vault, store, batch=1),
            sweeping.sweep(SYSTEM, vault, store, batch=1),
        )
    assert first.run_id == second.run_id
    assert await SweepRun.all().count() == 1
    evidence = await SweepEvidence.get()
    assert (evidence.disposed, evidence.archived, evidence.batches) == (4, 4, 4)
    assert len(evidence.archive_objects) == 4


async def test_a_resumed_run_never_applies_a_policy_changed_since_it_began(
    vault: Vault, store: archive.LocalArchiveStore
) -> None:
    await customer_with_events(vault, "ada@example.com", events={"page_view": [400, 401, 402]})
    await _policy("events", 365, Action.DELETE)
    with clock.frozen_at(NOW):
        await sweeping.sweep(SYSTEM, vault, store, batch=1, max_seconds=0)
    [policy] = await policies.all_policies()
    await policies.update_policy(SYSTEM, PolicyChange(policy.id, period_days=3650))
    with clock.frozen_at(NOW):
        resumed = await sweeping.sweep(SYSTEM, vault, store, batch=1)
    [outcome] = resumed.outcomes
    assert outcome.disposed == 1
    assert outcome.note is not None
    assert outcome.note == sweeping.POLICIES_CHANGED
    assert await Event.all().count() == 2


async def test_customers_with_an_open_request_are_not_disposed_of(
    vault: Vault,
    store: archive.LocalArchiveStore,
    gql: GraphQLClient,
    admin_headers: dict[str, str],
) -> None:
    from tests.dsr.support import file_request

    await customer_with_events(vault, "asks@example.com", created_days_ago=900, events={})
    await customer_with_events(vault, "quiet@example.com", created_days_ago=900, events={})
    await file_request(gql, admin_headers, "ACCESS", "asks@example.com")
    await _policy("customers.inactive", 730, Action.DELETE, Trigger.SINCE_LAST_ACTIVITY)
    with clock.frozen_at(NOW):
        report = await sweeping.sweep(SYSTEM, vault, store)
    assert (report.outcomes[0].disposed, report.outcomes[0].skipped_held) == (1, 1)
    assert await Customer.all().count() == 1
    audited = await AuditEntry.filter(action="retention.delete", target_type="customer").count()
    assert audited == 1


async def test_closed_requests_lose_their_requesters_details(
    vault: Vault,
    store: archive.LocalArchiveStore,
    gql: GraphQLClient,
    admin_headers: dict[str, str],
) -> None:
    from cdlm.dsr.models import DataSubjectRequest
    from tests.dsr.support import change, file_request, key

    with clock.frozen_at(ago(100)):
        filed = await file_request(gql, admin_headers, "ACCESS", "closed@example.com")
        await change(gql, admin_headers, filed["request"]["id"], "DENIED", "Unfounded.")
    open_one = await file_request(gql, admin_headers, "ERASURE", "open@example.com")
    await _policy("dsr.requests", 90, Action.CRYPTO_SHRED, Trigger.SINCE_REQUEST_COMPLETION)
    with clock.frozen_at(NOW):
        report = await sweeping.sweep(SYSTEM, vault, store)
    assert report.outcomes[0].disposed == 1
    closed = await DataSubjectRequest.get(id=key(filed["request"]["id"]))
    assert (closed.subject_sealed, closed.details_sealed, closed.subject_index) == (None, None, "")
    assert await vault.customer_keys([closed.id]) == {}
    still = await DataSubjectRequest.get(id=key(open_one["request"]["id"]))
    assert still.subject_sealed is not None


async def test_a_new_type_policy_stops_the_general_one_in_a_resumed_run(
    vault: Vault, store: archive.LocalArchiveStore
) -> None:
    await customer_with_events(vault, "ada@example.com", events={"purchase": [400, 401, 402]})
    await _policy("events", 365, Action.DELETE)
    with clock.frozen_at(NOW):
        await sweeping.sweep(SYSTEM, vault, store, batch=1, max_seconds=0)
    await _policy("events.purchase", 3650, Action.ARCHIVE)
    with clock.frozen_at(NOW):
        resumed = await sweeping.sweep(SYSTEM, vault, store, batch=1)
    [outcome] = resumed.outcomes
    assert outcome.disposed == 1
    assert outcome.note == sweeping.POLICIES_CHANGED
    assert await Event.all().count() == 2  # the new policy keeps purchases for ten years


async def test_a_batch_that_keeps_failing_stops_its_policy_not_every_sweep(
    vault: Vault, store: archive.LocalArchiveStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await customer_with_events(vault, "ada@example.com", events={"page_view": [400]})
    await _policy("events", 365, Action.DELETE)
    await _policy("idempotency_records", 30, Action.DELETE)
    real = handler_for

    def broken(category: str, own: frozenset[str] = frozenset()) -> Any:
        handler = real(category, own)
        if category != "events":
            return handler

        async def dispose(*_: Any) -> int:
            raise ValueError("a row this code cannot handle")

        return type(handler)(handler.due, dispose, handler.records)

    monkeypatch.setattr(sweeping, "handler_for", broken)
    with clock.frozen_at(NOW):
        for _ in range(sweeping.MAX_FAILURES - 1):
            with pytest.raises(ValueError, match="cannot handle"):
                await sweeping.sweep(SYSTEM, vault, store)
        report = await sweeping.sweep(SYSTEM, vault, store)
    assert report.finished
    outcomes = {o.category: o for o in report.outcomes}
    assert outcomes["events"].note is not None
    assert "3 failed tries" in outcomes["events"].note
    assert outcomes["idempotency_records"].done
    assert await Event.all().count() == 1


async def test_customers_active_again_since_they_were_found_are_kept(vault: Vault) -> None:
    from cdlm.retention.categories import handler_for as handlers

    old = await customer_with_events(vault, "old@example.com", created_days_ago=900, events={})
    cutoff = ago(730)
    handler = handlers("customers.inactive")
    with clock.frozen_at(NOW):
        [found] = await handler.due(cutoff, Action.DELETE, None, 10)
        await Customer.filter(id=old).update(updated_at=NOW)  # an import touched them
        assert handler.confirm is not None
        assert await handler.confirm([found], cutoff) == []


async def test_anonymizing_a_customer_keeps_what_a_hold_keeps_readable(
    vault: Vault, store: archive.LocalArchiveStore
) -> None:
    from cdlm.customers.rights import retention_owner

    old = await customer_with_events(
        vault,
        "old@example.com",
        created_days_ago=900,
        events={"purchase": [850], "page_view": [860]},
    )
    await holds.place_hold(SYSTEM, reason="Tax records", category="events.purchase")
    await _policy("customers.inactive", 730, Action.ANONYMIZE, Trigger.SINCE_LAST_ACTIVITY)
    with clock.frozen_at(NOW):
        report = await sweeping.sweep(SYSTEM, vault, store)
    assert report.outcomes[0].disposed == 1
    row = await Customer.get(id=old)
    assert row.erased_at is not None
    assert row.restricted_at is not None
    assert await vault.customer_keys([old]) == {}
    purchase = await Event.get(customer_id=old, type="purchase")
    owner = retention_owner(old)
    key = await vault.customer_key(owner)
    kept = vault.open(key, owner, "event-properties", purchase.properties_sealed)
    assert kept["note"] == "purchase 850 days ago"
    assert (await Event.get(customer_id=old, type="page_view")).properties_sealed is None

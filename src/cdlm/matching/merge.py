"""Merging two profiles of one person, and undoing it.

A merge moves everything of the merged profile to the survivor: source records, events,
identities, refused values, open requests, legal holds and identity conflicts (each sealed
value re-sealed for the survivor on the way). The survivor's profile and lineage are then
rebuilt from all source records, consent becomes the most restrictive of the two profiles'
decisions (appended to the ledger, :mod:`cdlm.consent.merging`), and the merged profile's data
key is kept only sealed under the survivor's (:meth:`Vault.absorb`), so one erasure shreds
everything of the person. The merged id stays as a redirect to the survivor.

An unmerge moves back what the merge moved (as far as it still exists), gives the merged
profile its key again, and assigns what arrived after the merge by the identifiers it came
with: a source record whose email, phone or external ids belong only to the merged profile's
identities goes back with it, with the identities and refused values it brought; everything
else (events carry no identifier, records naming both or neither) stays with the survivor.
Both profiles are rebuilt and their consent recomputed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.connection import get_connection
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from cdlm.audit import service as audit
from cdlm.consent import merging as consent
from cdlm.core import clock
from cdlm.core.errors import (
    Conflict,
    ErrorCode,
    InvalidStateTransition,
    NotFound,
    PolicyViolation,
    ValidationFailed,
)
from cdlm.core.identifiers import Identifier, IdentifierKind, InvalidIdentifier
from cdlm.core.identifiers import normalize_external_id as parse_external_id
from cdlm.core.locks import lock_names
from cdlm.core.principal import Principal
from cdlm.core.text import staff_text
from cdlm.core.transactions import retrying
from cdlm.core.vocabulary import LifecycleStage, SourceKind
from cdlm.customers import attributes as customer_attributes
from cdlm.customers import merging as customer_rows
from cdlm.customers.models import Customer, SourceRecord
from cdlm.customers.rebuild import rebuild
from cdlm.holds import service as legal_holds
from cdlm.identity import service as identity
from cdlm.identity.models import Identity
from cdlm.matching import digests
from cdlm.matching.conflicts import conflicts
from cdlm.matching.models import CandidateStatus, MatchCandidate, Merge, MergeKind, MovedRow
from cdlm.quality import refused
from cdlm.quality.models import InvalidValue
from cdlm.quality.validate import validate_profile
from cdlm.reassign import Table, reassign
from cdlm.vault import purposes as sealed_for
from cdlm.vault.service import Owner, Vault


@dataclass(frozen=True)
class MergeInput:
    """Merge ``merged_id`` into ``survivor_id``."""

    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    reason: str | None
    kind: MergeKind = MergeKind.MANUAL
    candidate_id: uuid.UUID | None = None
    probability: float | None = None


@dataclass(frozen=True)
class UnmergeInput:
    """Undo the merge ``merge_id``."""

    merge_id: uuid.UUID
    reason: str | None


#: Data subject requests, which a merge gives to the survivor. Named, not imported: dsr sits
#: above matching (an erasure forgets match records, an access copy lists merges).
REQUESTS = Table("dsr_requests")


@dataclass(frozen=True)
class _Move:
    kind: str
    table: Table
    condition: str = "TRUE"


#: What a merge moves, in this order; ``kind`` names the rows in :class:`MovedRow`.
MOVES: tuple[_Move, ...] = (
    _Move("source_record", customer_rows.SOURCE_RECORDS),
    _Move("event", customer_rows.EVENTS),
    _Move("identity", identity.TABLE),
    _Move("refused_value", refused.TABLE),
    _Move("request", REQUESTS),
    _Move("legal_hold", legal_holds.HOLDS, legal_holds.ACTIVE),
)


async def _lock_profiles(vault: Vault, ids: list[uuid.UUID]) -> dict[uuid.UUID, Customer]:
    """Lock the profiles' identifiers, then the rows, in the order ingestion does."""
    await lock_names(
        [
            row[1]
            for row in await Identity.filter(customer_id__in=ids).values_list("kind", "blind_index")
        ]
    )
    rows = await Customer.filter(id__in=sorted(ids)).order_by("id").select_for_update()
    return {row.id: row for row in rows}


def _check_mergeable(profile: Customer | None, field: str) -> Customer:
    if profile is None:
        raise NotFound("No customer has this id.", field=field)
    if profile.merged_into_id is not None:
        raise InvalidStateTransition(
            "This profile was already merged into another.",
            field=field,
            code=ErrorCode.ALREADY_MERGED,
        )
    if profile.erased_at is not None:
        raise InvalidStateTransition(
            "This customer was erased.", field=field, code=ErrorCode.CUSTOMER_ERASED
        )
    if profile.restricted_at is not None:
        raise PolicyViolation(
            "Processing of this customer is restricted (GDPR Art. 18): it may be stored, not "
            "merged.",
            field=field,
            code=ErrorCode.PROCESSING_RESTRICTED,
        )
    return profile


async def _still_sure(vault: Vault, sides: dict[uuid.UUID, tuple[Customer, Owner]]) -> None:
    """An automatic merge checks again, on the locked profiles, what a run decided on values
    read earlier: no legal hold placed since, no hard conflict from a change since."""
    if await legal_holds.held_customers(list(sides)):
        raise PolicyViolation("A legal hold was placed on a profile of this pair.")
    tokens = await digests.external_tokens(list(sides))
    one, other = (
        digests.record_of(c, vault.open(o.key, c, sealed_for.PROFILE, row.profile_sealed), tokens)
        for c, (row, o) in sides.items()
    )
    if conflicts(one, other):
        raise Conflict("A profile of this pair changed since it was scored.")


def _pair(one: uuid.UUID, other: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    return (one, other) if one < other else (other, one)


async def _moved(merge_id: uuid.UUID, moved: dict[str, list[uuid.UUID]]) -> None:
    """Remember the rows a merge moved, by kind (one statement)."""
    kinds = [kind for kind, ids in moved.items() for _ in ids]
    if kinds:
        await get_connection("default").execute_query(
            'INSERT INTO "merge_moved_rows" ("merge_id", "kind", "row_id") '
            "SELECT $1, k, r FROM unnest($2::text[], $3::uuid[]) AS u(k, r)",
            [merge_id, kinds, [i for ids in moved.values() for i in ids]],
        )


async def merge_locked(
    actor: Principal, vault: Vault, change: MergeInput, trust: dict[SourceKind, int] | None
) -> Merge:
    """The merge itself, in the caller's transaction (used by the API, the review queue and
    automatic merges)."""
    if change.survivor_id == change.merged_id:
        raise ValidationFailed(
            "A customer cannot be merged with itself.",
            field="input.mergedId",
            code=ErrorCode.SAME_CUSTOMER,
        )
    await vault.ready()
    profiles = await _lock_profiles(vault, [change.survivor_id, change.merged_id])
    survivor = _check_mergeable(profiles.get(change.survivor_id), "input.survivorId")
    merged = _check_mergeable(profiles.get(change.merged_id), "input.mergedId")
    left, right = _pair(survivor.id, merged.id)
    refused_pair = await MatchCandidate.filter(
        left_id=left, right_id=right, status=CandidateStatus.NOT_A_MATCH
    ).exists()
    if refused_pair and change.kind is not MergeKind.REVIEW:
        raise Conflict(
            "A steward decided these profiles are two people; resolve the candidate to merge.",
            field="input.mergedId",
            code=ErrorCode.MARKED_NOT_A_MATCH,
        )
    keys = await vault.customer_keys([survivor.id, merged.id])
    source, target = Owner(merged.id, keys[merged.id]), Owner(survivor.id, keys[survivor.id])
    if change.kind is MergeKind.AUTOMATIC:
        await _still_sure(vault, {survivor.id: (survivor, target), merged.id: (merged, source)})
    now = clock.now()
    record = Merge(
        id=uuid.uuid4(),
        survivor_id=survivor.id,
        merged_id=merged.id,
        kind=change.kind,
        candidate_id=change.candidate_id,
        probability=change.probability,
        merged_at=now,
        merged_by_kind=actor.kind.value,
        merged_by_id=actor.id,
        reason_sealed=(
            vault.seal(target.key, survivor.id, sealed_for.MERGE_REASON, change.reason)
            if change.reason
            else None
        ),
        merged_state={
            "created_at": merged.created_at.isoformat(),
            "lifecycle_stage": merged.lifecycle_stage.value,
            "last_activity_at": (
                merged.last_activity_at.isoformat() if merged.last_activity_at else None
            ),
        },
    )
    await record.save()
    moved: dict[str, list[uuid.UUID]] = {}
    for move in MOVES:
        moved[move.kind] = await reassign(
            vault, move.table, source, target, condition=move.condition
        )
    conflicts = await identity.retarget_conflicts(merged.id, survivor.id, now)
    for change_kind, ids in conflicts.items():
        moved[f"conflict_{change_kind}"] = ids
    redirected = await get_connection("default").execute_query_dict(
        'UPDATE "customers" SET "merged_into_id" = $2 WHERE "merged_into_id" = $1 RETURNING "id"',
        [merged.id, survivor.id],
    )
    moved["redirect"] = [row["id"] for row in redirected]
    await consent.merge(actor, survivor.id, merged.id)
    moved["absorbed_key"] = await vault.absorb(source, target)
    await _moved(record.id, moved)
    if merged.last_activity_at and (
        survivor.last_activity_at is None or merged.last_activity_at > survivor.last_activity_at
    ):
        survivor.last_activity_at = merged.last_activity_at
    await rebuild(vault, survivor, target.key, trust, now)
    await Customer.filter(id=merged.id).update(
        merged_into_id=survivor.id,
        profile_sealed=b"",
        present_fields=[],
        lineage={},
        source_systems=[],
        completeness=0.0,
        validity=1.0,
        quality_score=0.0,
        updated_at=now,
    )
    await customer_attributes.forget([merged.id])  # it answers with the survivor's now
    await _settle_candidates(survivor.id, merged.id, record, now)
    await audit.record_many(
        actor,
        "customer.merge",
        target_type="customer",
        target_ids=[survivor.id, merged.id],
        fields=["profile"],
    )
    return record


async def _settle_candidates(
    survivor_id: uuid.UUID, merged_id: uuid.UUID, record: Merge, now: datetime
) -> None:
    left, right = _pair(survivor_id, merged_id)
    await MatchCandidate.filter(left_id=left, right_id=right).update(
        status=CandidateStatus.MERGED, merge_id=record.id, updated_at=now
    )
    # Pairs with the merged profile are now pairs with the survivor: the next run scores them.
    await MatchCandidate.filter(
        Q(left_id=merged_id) | Q(right_id=merged_id), status=CandidateStatus.PENDING
    ).update(status=CandidateStatus.SUPERSEDED, updated_at=now)
    # "Two people" said of the merged profile and another holds for the survivor too; the
    # survivor's values changed, so a run may propose the pair again, for a steward only.
    await get_connection("default").execute_query(
        'INSERT INTO "match_candidates" ("id", "left_id", "right_id", "status", "probability", '
        '"match_weight", "comparisons", "conflicts", "model_version", "run_id", "found_at", '
        '"updated_at", "left_digest", "right_digest", "decided_at", "decided_by_kind", '
        '"decided_by_id") '
        "SELECT gen_random_uuid(), LEAST(o, $2), GREATEST(o, $2), 'not_a_match', c.probability, "
        "c.match_weight, c.comparisons, c.conflicts, c.model_version, c.run_id, c.found_at, $3, "
        "'', '', c.decided_at, c.decided_by_kind, c.decided_by_id "
        'FROM "match_candidates" AS c, LATERAL (SELECT CASE WHEN c.left_id = $1 '
        "THEN c.right_id ELSE c.left_id END AS o) AS other "
        "WHERE (c.left_id = $1 OR c.right_id = $1) AND c.status = 'not_a_match' AND o <> $2 "
        'ON CONFLICT ("left_id", "right_id") DO NOTHING',
        [merged_id, survivor_id, now],
    )


async def merge(
    actor: Principal,
    vault: Vault,
    change: MergeInput,
    trust: dict[SourceKind, int] | None = None,
) -> Merge:
    """The ``mergeCustomers`` operation: checked, one transaction (retried after a deadlock),
    audited. A refusal leaves both profiles as they were."""
    if change.kind is MergeKind.MANUAL:
        change = MergeInput(
            change.survivor_id,
            change.merged_id,
            staff_text(change.reason, "input.reason", required=True),
            change.kind,
            change.candidate_id,
            change.probability,
        )

    async def work() -> Merge:
        async with in_transaction():
            return await merge_locked(actor, vault, change, trust)

    return await retrying(work)


# ------------------------------------------------------------------------------ unmerge


async def _moved_ids(merge_id: uuid.UUID) -> dict[str, list[uuid.UUID]]:
    found: dict[str, list[uuid.UUID]] = {}
    for kind, row_id in await MovedRow.filter(merge_id=merge_id).values_list("kind", "row_id"):
        found.setdefault(str(kind), []).append(uuid.UUID(str(row_id)))
    return found


def _record_identifiers(vault: Vault, payload: dict[str, Any]) -> set[str]:
    """Blind indexes of the identifiers a source record came with."""
    profile = {k: v for k, v in (payload.get("profile") or {}).items() if isinstance(v, str)}
    values = validate_profile({k: v for k, v in profile.items() if k in ("email", "phone")}).values
    found = [Identifier(IdentifierKind(k), "", v) for k, v in values.items()]
    for raw in payload.get("external_ids") or []:
        try:
            found.append(parse_external_id(str(raw)))
        except InvalidIdentifier:
            continue
    return {vault.blind_index(i.index_kind, i.value) for i in found}


async def _arrived_with_merged(
    vault: Vault, survivor: Owner, merge: Merge, merged_indexes: set[str]
) -> list[uuid.UUID]:
    """Source records the survivor received after the merge whose identifiers all belong to
    the merged profile's side (not those another merge into the survivor brought)."""
    others = (
        await Merge.filter(survivor_id=survivor.id, unmerged_at__isnull=True)
        .exclude(id=merge.id)
        .values_list("id", flat=True)
    )
    brought = set(
        await MovedRow.filter(merge_id__in=list(others), kind="source_record").values_list(
            "row_id", flat=True
        )
    )
    later = await SourceRecord.filter(customer_id=survivor.id, received_at__gt=merge.merged_at)
    going = []
    for record in later:
        if record.id in brought:
            continue
        if record.source_kind is SourceKind.STAFF:
            continue
        payload = vault.open(
            survivor.key, survivor.id, sealed_for.source_record(record.id), record.payload_sealed
        )
        indexes = _record_identifiers(vault, payload)
        if indexes and indexes <= merged_indexes:
            going.append(record.id)
    return going


async def unmerge_locked(
    actor: Principal, vault: Vault, change: UnmergeInput, trust: dict[SourceKind, int] | None
) -> Merge:
    """The unmerge itself, in the caller's transaction."""
    record = await Merge.filter(id=change.merge_id).select_for_update().first()
    if record is None:
        raise NotFound("No merge has this id.", field="input.mergeId")
    if record.unmerged_at is not None:
        raise InvalidStateTransition(
            "This merge was already undone.", field="input.mergeId", code=ErrorCode.ALREADY_UNMERGED
        )
    await vault.ready()
    profiles = await _lock_profiles(vault, [record.survivor_id, record.merged_id])
    survivor, merged = profiles.get(record.survivor_id), profiles.get(record.merged_id)
    if survivor is None or survivor.erased_at is not None or merged is None:
        raise InvalidStateTransition(
            "The person was erased since: there is nothing left to tell apart.",
            field="input.mergeId",
            code=ErrorCode.CUSTOMER_ERASED,
        )
    if survivor.merged_into_id is not None:
        raise InvalidStateTransition(
            "The survivor was merged into another profile since: undo that merge first.",
            field="input.mergeId",
            code=ErrorCode.ALREADY_MERGED,
        )
    now = clock.now()
    moved = await _moved_ids(record.id)
    target = Owner(survivor.id, await vault.customer_key(survivor.id))
    key = await vault.release(merged.id, target, moved.get("absorbed_key", []))
    restored = Owner(merged.id, key)
    merged_indexes = set(
        await Identity.filter(id__in=moved.get("identity", [])).values_list(
            "blind_index", flat=True
        )
    )
    later_records = await _arrived_with_merged(
        vault, target, record, {str(i) for i in merged_indexes}
    )
    back_records = moved.get("source_record", []) + later_records
    await reassign(vault, customer_rows.SOURCE_RECORDS, target, restored, ids=back_records)
    await reassign(vault, customer_rows.EVENTS, target, restored, ids=moved.get("event", []))
    later_identities = await Identity.filter(
        customer_id=survivor.id, source_record_id__in=later_records
    ).values_list("id", flat=True)
    await reassign(
        vault,
        identity.TABLE,
        target,
        restored,
        ids=moved.get("identity", []) + [uuid.UUID(str(i)) for i in later_identities],
    )
    later_refused = await InvalidValue.filter(
        customer_id=survivor.id, source_record_id__in=later_records
    ).values_list("id", flat=True)
    await reassign(
        vault,
        refused.TABLE,
        target,
        restored,
        ids=moved.get("refused_value", []) + [uuid.UUID(str(i)) for i in later_refused],
    )
    for move in MOVES[4:]:
        await reassign(vault, move.table, target, restored, ids=moved.get(move.kind, []))
    await identity.restore_conflicts(
        merged.id,
        {k.removeprefix("conflict_"): v for k, v in moved.items() if k.startswith("conflict_")},
    )
    await Customer.filter(id__in=moved.get("redirect", [])).update(merged_into_id=merged.id)
    state = record.merged_state
    merged.merged_into_id = None
    merged.lifecycle_stage = LifecycleStage(state["lifecycle_stage"])
    merged.last_activity_at = (
        datetime.fromisoformat(state["last_activity_at"]) if state["last_activity_at"] else None
    )
    await merged.save(update_fields=["merged_into_id", "lifecycle_stage", "last_activity_at"])
    merged_values = await rebuild(vault, merged, key, trust, now)
    survivor_values = await rebuild(vault, survivor, target.key, trust, now)
    await consent.unmerge(actor, survivor.id, merged.id, record.merged_at)
    await _remember_two_people(
        actor, vault, record, {merged.id: merged_values, survivor.id: survivor_values}, now
    )
    record.unmerged_at = now
    record.unmerged_by_kind = actor.kind.value
    record.unmerged_by_id = actor.id
    record.unmerge_reason_sealed = (
        vault.seal(target.key, survivor.id, sealed_for.UNMERGE_REASON, change.reason)
        if change.reason
        else None
    )
    await record.save()
    await audit.record_many(
        actor,
        "customer.unmerge",
        target_type="customer",
        target_ids=[survivor.id, merged.id],
        fields=["profile"],
    )
    return record


async def _remember_two_people(
    actor: Principal,
    vault: Vault,
    merge: Merge,
    values: dict[uuid.UUID, dict[str, str]],
    now: datetime,
) -> None:
    """An unmerge says two people: the pair is NOT_A_MATCH, with digests of the profiles as
    rebuilt, so no run merges them again unless one changes (and then only a steward)."""
    tokens = await digests.external_tokens(list(values))
    digest = {c: digests.digest(vault, digests.record_of(c, v, tokens)) for c, v in values.items()}
    left, right = _pair(merge.survivor_id, merge.merged_id)
    await get_connection("default").execute_query(
        'INSERT INTO "match_candidates" ("id", "left_id", "right_id", "status", "probability", '
        '"match_weight", "comparisons", "conflicts", "model_version", "run_id", "found_at", '
        '"updated_at", "left_digest", "right_digest", "decided_at", "decided_by_kind", '
        '"decided_by_id", "merge_id") '
        "VALUES ($1, $2, $3, 'not_a_match', $4, 0, '[]', '[]', 0, NULL, $5, $5, $6, $7, $5, $8, "
        '$9, $10) ON CONFLICT ("left_id", "right_id") DO UPDATE SET "status" = \'not_a_match\', '
        '"left_digest" = EXCLUDED."left_digest", "right_digest" = EXCLUDED."right_digest", '
        '"decided_at" = EXCLUDED."decided_at", "decided_by_kind" = EXCLUDED."decided_by_kind", '
        '"decided_by_id" = EXCLUDED."decided_by_id", "updated_at" = EXCLUDED."updated_at"',
        [
            uuid.uuid4(),
            left,
            right,
            merge.probability or 0.0,
            now,
            digest[left],
            digest[right],
            actor.kind.value,
            actor.id,
            merge.id,
        ],
    )


async def unmerge(
    actor: Principal,
    vault: Vault,
    change: UnmergeInput,
    trust: dict[SourceKind, int] | None = None,
) -> Merge:
    """The ``unmergeCustomer`` operation: checked, one transaction (retried after a
    deadlock), audited."""
    change = UnmergeInput(change.merge_id, staff_text(change.reason, "input.reason", required=True))

    async def work() -> Merge:
        async with in_transaction():
            return await unmerge_locked(actor, vault, change, trust)

    return await retrying(work)

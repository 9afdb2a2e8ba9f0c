"""Acquisition: one customer record from a source, resolved, validated and merged.

``ingest_customer`` is the unit the API, the importer and tests share: it validates the input,
resolves identity, applies survivorship, and writes the profile, identities, source record and
refused values, all in the caller's transaction.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from cdlm.audit import service as audit
from cdlm.core import clock
from cdlm.core.errors import ErrorCode, FieldIssue, ValidationFailed
from cdlm.core.identifiers import Identifier, IdentifierKind, InvalidIdentifier
from cdlm.core.identifiers import normalize_external_id as parse_external_id
from cdlm.core.principal import Principal
from cdlm.core.vocabulary import LawfulBasis, LifecycleStage, SourceKind
from cdlm.customers import attributes
from cdlm.customers.models import Customer, SourceRecord
from cdlm.customers.survivorship import Provenance, survive
from cdlm.idempotency import service as idempotency
from cdlm.identity import service as identity
from cdlm.quality import refused
from cdlm.quality import score as quality
from cdlm.quality.fields import INPUT_PATHS
from cdlm.quality.validate import validate_profile
from cdlm.vault import purposes as sealed_for
from cdlm.vault.service import Vault

if TYPE_CHECKING:
    from cdlm.identity.models import Identity, IdentityConflict
    from cdlm.quality.models import InvalidValue
    from cdlm.vault.models import CustomerKey

SOURCE_SYSTEM = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
PURPOSE = re.compile(r"^[a-z][a-z0-9_.-]{0,99}$")
MAX_EXTERNAL_IDS = 10
FUTURE_TOLERANCE = timedelta(minutes=5)


class Outcome(StrEnum):
    """What an ingest did to the customer base."""

    CREATED = "created"
    MATCHED = "matched"


@dataclass(frozen=True)
class Source:
    """Provenance of incoming data."""

    system: str
    kind: SourceKind
    collected_at: datetime
    lawful_basis: LawfulBasis
    purpose: str


@dataclass
class CustomerIngest:
    """One record from a source."""

    source: Source
    profile: dict[str, str | None] = field(default_factory=dict)
    external_ids: list[str] = field(default_factory=list)
    lifecycle_stage: LifecycleStage | None = None


@dataclass
class IngestResult:
    """What happened, with every value that was refused or not attached."""

    customer_id: uuid.UUID
    outcome: Outcome
    matched_rule: str | None
    source_record_id: uuid.UUID
    issues: list[FieldIssue]

    def to_json(self) -> dict[str, Any]:
        """Ids and codes only (it is remembered for idempotent replays)."""
        return {
            "customer_id": str(self.customer_id),
            "outcome": self.outcome.value,
            "matched_rule": self.matched_rule,
            "source_record_id": str(self.source_record_id),
            "issues": [[i.field, i.code.value, i.message] for i in self.issues],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IngestResult:
        return cls(
            customer_id=uuid.UUID(data["customer_id"]),
            outcome=Outcome(data["outcome"]),
            matched_rule=data["matched_rule"],
            source_record_id=uuid.UUID(data["source_record_id"]),
            issues=[FieldIssue(f, ErrorCode(c), m) for f, c, m in data["issues"]],
        )


def check_source(source: Source, prefix: str = "input.source") -> list[FieldIssue]:
    """Problems with provenance (these refuse the whole record)."""
    issues = []
    if source.kind is SourceKind.STAFF:
        issues.append(
            FieldIssue(
                f"{prefix}.kind",
                ErrorCode.POLICY_VIOLATION,
                "The staff kind is reserved for rectification with updateCustomer.",
            )
        )
    if not SOURCE_SYSTEM.fullmatch(source.system):
        issues.append(
            FieldIssue(
                f"{prefix}.system",
                ErrorCode.INVALID_FORMAT,
                "Source systems are lower-case names such as crm or web-shop.",
            )
        )
    if not PURPOSE.fullmatch(source.purpose):
        issues.append(
            FieldIssue(
                f"{prefix}.purpose",
                ErrorCode.INVALID_FORMAT,
                "Purposes are lower-case codes such as marketing.advertising.",
            )
        )
    if source.collected_at.tzinfo is None:
        issues.append(
            FieldIssue(f"{prefix}.collectedAt", ErrorCode.INVALID_FORMAT, "Give a time zone.")
        )
    elif clock.to_utc(source.collected_at) is None:
        issues.append(
            FieldIssue(
                f"{prefix}.collectedAt",
                ErrorCode.IMPLAUSIBLE,
                "The time is out of range once in UTC.",
            )
        )
    elif source.collected_at > clock.now() + FUTURE_TOLERANCE:
        issues.append(
            FieldIssue(
                f"{prefix}.collectedAt",
                ErrorCode.IMPLAUSIBLE,
                "Collection cannot be in the future.",
            )
        )
    return issues


def _identifiers(
    values: dict[str, str], external_ids: list[str], issues: list[FieldIssue]
) -> tuple[list[Identifier], dict[Identifier, str]]:
    found: list[Identifier] = []
    paths: dict[Identifier, str] = {}
    if "email" in values:
        email = Identifier(IdentifierKind.EMAIL, "", values["email"])
        found.append(email)
        paths[email] = "input.profile.email"
    if "phone" in values:
        phone = Identifier(IdentifierKind.PHONE, "", values["phone"])
        found.append(phone)
        paths[phone] = "input.profile.phone"
    for position, raw in enumerate(external_ids):
        path = f"input.externalIds.{position}"
        try:
            parsed = parse_external_id(raw)
        except InvalidIdentifier as problem:
            issues.append(FieldIssue(path, problem.code, problem.message))
            continue
        if parsed not in paths:
            found.append(parsed)
            paths[parsed] = path
    return found, paths


async def open_invalid_fields(customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
    """Fields whose latest refused values no valid value has replaced yet (one query)."""
    return await refused.open_fields(customer_ids)


@dataclass
class _Prepared:
    record: CustomerIngest
    values: dict[str, str]
    rejected: dict[str, str]
    issues: list[FieldIssue]
    identifiers: list[Identifier]
    paths: dict[Identifier, str]


def _prepare(ingest: CustomerIngest) -> _Prepared:
    issues = check_source(ingest.source)
    if len(ingest.external_ids) > MAX_EXTERNAL_IDS:
        issues.append(
            FieldIssue(
                "input.externalIds",
                ErrorCode.TOO_MANY_ITEMS,
                f"At most {MAX_EXTERNAL_IDS} external ids.",
            )
        )
    if issues:
        raise ValidationFailed.from_issues(issues)
    validated = validate_profile(ingest.profile)
    issues = list(validated.issues)
    identifiers, paths = _identifiers(validated.values, ingest.external_ids, issues)
    if not identifiers:
        issues.append(
            FieldIssue(
                "input",
                ErrorCode.REQUIRED,
                "A record needs a valid email, phone or external id to identify the person.",
            )
        )
        raise ValidationFailed.from_issues(issues)
    return _Prepared(
        ingest, validated.values, validated.rejected, issues, identity.ordered(identifiers), paths
    )


@dataclass
class _Profile:
    """One customer as the batch sees it, written once at the end."""

    customer: Customer
    key: bytes
    values: dict[str, str]
    open_invalid: set[str]
    created: bool
    touched: bool = False


def _rejected_issue(prepared: _Prepared, name: str) -> FieldIssue:
    suffix = f".{INPUT_PATHS[name]}"
    return next(i for i in prepared.issues if i.field.endswith(suffix))


async def _load_profiles(vault: Vault, customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, _Profile]:
    profiles: dict[uuid.UUID, _Profile] = {}
    if not customer_ids:
        return profiles
    # Locked in id order, as every writer of customer rows does, and without the key lock
    # (nothing here changes an id): rows that only reference a customer, such as a batch of
    # events checking its foreign keys, neither wait for this nor make it wait.
    rows = await Customer.filter(id__in=customer_ids).order_by("id").select_for_update(no_key=True)
    keys = await vault.customer_keys(customer_ids)
    invalid = await open_invalid_fields(customer_ids)
    for row in rows:
        key = keys[row.id]
        values = vault.open(key, row.id, sealed_for.PROFILE, row.profile_sealed)
        profiles[row.id] = _Profile(row, key, values, invalid[row.id], created=False)
    return profiles


class _ValuesView(Mapping[uuid.UUID, Mapping[str, str]]):
    """Each profile's current values, as the batch has them so far (a live view)."""

    def __init__(self, profiles: dict[uuid.UUID, _Profile]) -> None:
        self._profiles = profiles

    def __getitem__(self, customer_id: uuid.UUID) -> Mapping[str, str]:
        return self._profiles[customer_id].values

    def __iter__(self) -> Iterator[uuid.UUID]:
        return iter(self._profiles)

    def __len__(self) -> int:
        return len(self._profiles)


class _Writes:
    """Rows a batch inserts, gathered to be written with one statement per table."""

    def __init__(self) -> None:
        self.keys: list[CustomerKey] = []
        self.sources: list[SourceRecord] = []
        self.identities: list[Identity] = []
        self.conflicts: list[IdentityConflict] = []
        self.invalid: list[InvalidValue] = []
        self.resolved: list[tuple[uuid.UUID, str]] = []
        self.pending_invalid: dict[tuple[uuid.UUID, str], list[InvalidValue]] = {}
        # (Rows of other domains are built and saved through those domains' services.)

    async def flush(self, profiles: dict[uuid.UUID, _Profile], now: datetime) -> None:
        created: list[Customer] = []
        updated: list[Customer] = []
        for profile in profiles.values():
            if profile.touched:
                (created if profile.created else updated).append(profile.customer)
        await Vault.save_customer_keys(self.keys)
        if created:
            await Customer.bulk_create(created)
        if updated:
            await Customer.bulk_update(
                updated,
                fields=[
                    "profile_sealed",
                    "present_fields",
                    "lineage",
                    "source_systems",
                    "updated_at",
                    "completeness",
                    "validity",
                    "quality_score",
                    "lifecycle_stage",
                ],
            )
        await attributes.refresh(
            [
                (c.id, attributes.derive(p.values, c.source_systems, now.date()))
                for p in profiles.values()
                if p.touched
                for c in (p.customer,)
            ],
            now,
        )
        if self.sources:
            await SourceRecord.bulk_create(self.sources)
        await identity.save(self.identities)
        await identity.save_conflicts(self.conflicts)
        await refused.resolve(self.resolved, now)  # before the batch's own rows go in
        await refused.save(self.invalid)


def rescore(
    customer: Customer,
    values: dict[str, str],
    open_invalid: set[str],
    now: datetime,
    last_update: datetime | None = None,
) -> None:
    """Store the quality score of ``customer``'s profile; freshness counts from
    ``last_update``, by default the newest collection in its lineage."""
    if last_update is None:
        last_update = quality.last_update(customer.lineage)
    scored = quality.score(values, open_invalid, last_update, now)
    customer.completeness = scored.completeness
    customer.validity = scored.validity
    customer.quality_score = scored.score


def _finish(vault: Vault, profile: _Profile, now: datetime) -> None:
    customer = profile.customer
    customer.profile_sealed = vault.seal(
        profile.key, customer.id, sealed_for.PROFILE, profile.values
    )
    customer.present_fields = sorted(profile.values)
    customer.updated_at = now
    rescore(customer, profile.values, profile.open_invalid, now)


def _apply(
    vault: Vault,
    prepared: _Prepared,
    profile: _Profile,
    rule: str | None,
    outcome: Outcome,
    attach: list[Identifier],
    indexes: dict[Identifier, str],
    writes: _Writes,
    now: datetime,
    trust: dict[SourceKind, int] | None,
) -> uuid.UUID:
    """Merge one record into its customer's in-memory profile; returns the source record id."""
    record, customer = prepared.record, profile.customer
    customer_id = customer.id
    source_record_id = uuid.uuid4()
    provenance = Provenance(
        str(source_record_id), record.source.system, record.source.kind, record.source.collected_at
    )
    lineage = dict(customer.lineage)
    survive(profile.values, lineage, prepared.values, provenance, trust)
    customer.lineage = lineage
    if record.source.system not in customer.source_systems:
        customer.source_systems = sorted([*customer.source_systems, record.source.system])
    if record.lifecycle_stage is not None:
        customer.lifecycle_stage = record.lifecycle_stage
    for name in prepared.values:
        if name in profile.open_invalid:
            profile.open_invalid.discard(name)
            # Refused earlier in this batch (not written yet): resolved in memory; refused
            # before the batch: resolved by one statement, run before the new rows go in.
            for pending in writes.pending_invalid.pop((customer_id, name), []):
                pending.resolved_at = now
            writes.resolved.append((customer_id, name))
    for name, raw in prepared.rejected.items():
        problem = _rejected_issue(prepared, name)
        profile.open_invalid.add(name)
        row = refused.refused_value(
            customer_id,
            source_record_id,
            name,
            problem.code.value,
            problem.message,
            vault.seal(profile.key, customer_id, sealed_for.invalid_value(name), raw),
            now,
        )
        writes.invalid.append(row)
        writes.pending_invalid.setdefault((customer_id, name), []).append(row)
    payload = {
        "profile": {k: v for k, v in record.profile.items() if v is not None},
        "external_ids": record.external_ids,
        "lifecycle_stage": record.lifecycle_stage.value if record.lifecycle_stage else None,
    }
    writes.sources.append(
        SourceRecord(
            id=source_record_id,
            customer_id=customer_id,
            source_system=record.source.system,
            source_kind=record.source.kind,
            collected_at=record.source.collected_at,
            received_at=now,
            lawful_basis=record.source.lawful_basis,
            purpose=record.source.purpose,
            payload_sealed=vault.seal(
                profile.key, customer_id, sealed_for.source_record(source_record_id), payload
            ),
            outcome=outcome.value,
            matched_rule=rule,
        )
    )
    for identifier in attach:
        writes.identities.append(
            identity.identity_row(
                customer_id,
                identifier,
                indexes[identifier],
                vault.seal(profile.key, customer_id, sealed_for.IDENTITY, identifier.value),
                source_record_id,
                now,
            )
        )
    profile.touched = True
    return source_record_id


def suppressed_refusal() -> ValidationFailed:
    """The refusal of a record carrying an identifier of a person who was erased."""
    return ValidationFailed(
        "The person this record identifies asked to be erased; it is not taken in.",
        field="input",
        code=ErrorCode.SUPPRESSED,
    )


def restricted_refusal() -> ValidationFailed:
    """The refusal of a record about a person whose processing is restricted."""
    return ValidationFailed(
        "Processing of the person this record identifies is restricted (GDPR Art. 18): what is "
        "held is kept, nothing new is taken in until the restriction is lifted.",
        field="input",
        code=ErrorCode.PROCESSING_RESTRICTED,
    )


def _refuse_conflicting_values(item: _Prepared, notes: list[FieldIssue]) -> None:
    """An email or phone that identifies another customer is not this person's: keep it out of
    the profile as a refused value (with the conflict as its reason)."""
    for note in notes:
        if note.code is not ErrorCode.IDENTITY_CONFLICT:
            continue
        for name in ("email", "phone"):
            if note.field == f"input.profile.{INPUT_PATHS[name]}" and name in item.values:
                del item.values[name]
                item.rejected[name] = str(item.record.profile.get(name) or "")
                item.issues.append(note)


async def ingest_batch(
    vault: Vault, records: list[CustomerIngest], trust: dict[SourceKind, int] | None = None
) -> list[IngestResult | ValidationFailed]:
    """Validate, resolve and merge records in the caller's transaction.

    The number of statements is fixed per batch, not per record. Records are resolved in
    order, each seeing what the earlier ones attached. A record whose provenance is invalid, or
    that has no usable identifier, comes back as its :class:`ValidationFailed` (nothing of it
    is written); invalid profile values are refused one by one and reported in its issues.
    """
    prepared: list[_Prepared | ValidationFailed] = []
    for record in records:
        try:
            prepared.append(_prepare(record))
        except ValidationFailed as refusal:
            prepared.append(refusal)
    usable = [p for p in prepared if isinstance(p, _Prepared)]
    if not usable:
        return list(prepared)  # type: ignore[arg-type]
    now = clock.now()
    await vault.ready()
    every = {i for p in usable for i in p.identifiers}
    indexes = identity.blind_indexes(vault, every)  # once per batch, passed on from here
    await identity.lock(indexes.values())
    # Checked under the identifier locks, which erasure takes to suppress: no race.
    erased = await identity.suppressed(indexes.values())
    if erased:
        prepared = [
            suppressed_refusal()
            if isinstance(p, _Prepared) and any(indexes[i] in erased for i in p.identifiers)
            else p
            for p in prepared
        ]
    owned = await identity.owners_of(indexes)
    existing = sorted(set(owned.values()))
    held = await identity.held_counts(existing)
    profiles = await _load_profiles(vault, existing)
    writes = _Writes()
    current_values = _ValuesView(profiles)
    results: list[IngestResult | ValidationFailed] = []
    for item in prepared:
        if isinstance(item, ValidationFailed):
            results.append(item)
            continue
        resolution = identity.decide(
            item.identifiers,
            owned,
            held,
            item.paths,
            item.values,
            current_values,
        )
        matched = profiles.get(resolution.customer_id) if resolution.customer_id else None
        if matched is not None and matched.customer.restricted_at is not None:
            results.append(restricted_refusal())
            continue
        _refuse_conflicting_values(item, resolution.notes)
        if resolution.customer_id is None:
            customer_id = uuid.uuid4()
            key, key_row = vault.new_customer_key(customer_id)
            writes.keys.append(key_row)
            customer = Customer(
                id=customer_id,
                created_at=now,
                lifecycle_stage=item.record.lifecycle_stage or LifecycleStage.LEAD,
                source_systems=[],
                lineage={},
            )
            profiles[customer_id] = _Profile(customer, key, {}, set(), created=True)
            held[customer_id] = Counter()
            outcome = Outcome.CREATED
        else:
            customer_id = resolution.customer_id
            outcome = Outcome.MATCHED
        for identifier in resolution.attach:
            owned[identifier] = customer_id
            held[customer_id][(identifier.kind, identifier.namespace)] += 1
        source_record_id = _apply(
            vault,
            item,
            profiles[customer_id],
            resolution.rule,
            outcome,
            resolution.attach,
            indexes,
            writes,
            now,
            trust,
        )
        writes.conflicts.extend(
            identity.conflict_rows(
                customer_id, resolution.passed_over, indexes, source_record_id, now
            )
        )
        notes = [n for n in resolution.notes if n not in item.issues]
        results.append(
            IngestResult(
                customer_id, outcome, resolution.rule, source_record_id, item.issues + notes
            )
        )
    for profile in profiles.values():
        if profile.touched:
            _finish(vault, profile, now)
    await writes.flush(profiles, now)
    return results


async def ingest_customer(
    vault: Vault, ingest: CustomerIngest, trust: dict[SourceKind, int] | None = None
) -> IngestResult:
    """One record (in the caller's transaction); a refusal raises :class:`ValidationFailed`."""
    (outcome,) = await ingest_batch(vault, [ingest], trust)
    if isinstance(outcome, ValidationFailed):
        raise outcome
    return outcome


def _request_fingerprint(ingest: CustomerIngest) -> str:
    return idempotency.fingerprint(
        {
            "source": {
                "system": ingest.source.system,
                "kind": ingest.source.kind.value,
                "collected_at": ingest.source.collected_at.isoformat(),
                "lawful_basis": ingest.source.lawful_basis.value,
                "purpose": ingest.source.purpose,
            },
            "profile": ingest.profile,
            "external_ids": ingest.external_ids,
            "lifecycle_stage": ingest.lifecycle_stage,
        }
    )


@dataclass(frozen=True)
class Ingested:
    """An ingest's result and whether it replayed an earlier call."""

    result: IngestResult
    replayed: bool


async def ingest_one(
    actor: Principal,
    vault: Vault,
    ingest: CustomerIngest,
    idempotency_key: str | None = None,
    trust: dict[SourceKind, int] | None = None,
) -> Ingested:
    """The ``ingestCustomer`` operation: idempotent, audited, one transaction."""

    async def run() -> IngestResult:
        result = await ingest_customer(vault, ingest, trust)
        await audit.record(
            actor,
            f"customer.ingest.{result.outcome.value}",
            target_type="customer",
            target_id=result.customer_id,
            fields=[n for n, v in ingest.profile.items() if v is not None],
        )
        return result

    outcome = await idempotency.run_once(
        vault,
        idempotency.scope_for("ingestCustomer", actor),
        idempotency_key,
        _request_fingerprint(ingest),
        run,
        idempotency.Codec(IngestResult.to_json, IngestResult.from_json),
    )
    return Ingested(outcome.result, outcome.replayed)

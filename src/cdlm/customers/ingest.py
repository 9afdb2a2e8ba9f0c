"""Acquisition: one customer record from a source, resolved, validated and merged.

``ingest_customer`` is the unit the API, the importer and tests share: it validates the input,
resolves identity, applies survivorship, and writes the profile, identities, source record and
refused values, all in the caller's transaction.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from tortoise.transactions import in_transaction

from cdlm import clock
from cdlm.audit import service as audit
from cdlm.auth.principal import Principal
from cdlm.customers.models import Customer, LawfulBasis, LifecycleStage, SourceKind, SourceRecord
from cdlm.customers.survivorship import Provenance, survive
from cdlm.errors import ErrorCode, FieldIssue, ValidationFailed
from cdlm.idempotency import service as idempotency
from cdlm.identity import service as identity
from cdlm.identity.identifiers import Identifier, IdentifierKind, InvalidIdentifier
from cdlm.identity.identifiers import normalize_external_id as parse_external_id
from cdlm.identity.models import Identity
from cdlm.quality import score as quality
from cdlm.quality.models import InvalidValue
from cdlm.quality.validate import validate_profile
from cdlm.vault.service import Vault

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
    if not SOURCE_SYSTEM.match(source.system):
        issues.append(
            FieldIssue(
                f"{prefix}.system",
                ErrorCode.INVALID_FORMAT,
                "Source systems are lower-case names such as crm or web-shop.",
            )
        )
    if not PURPOSE.match(source.purpose):
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
        path = f"input.externalIds[{position}]"
        try:
            parsed = parse_external_id(raw)
        except InvalidIdentifier as problem:
            issues.append(FieldIssue(path, problem.code, problem.message))
            continue
        if parsed not in paths:
            found.append(parsed)
            paths[parsed] = path
    return found, paths


async def _open_invalid_fields(customer_id: uuid.UUID) -> set[str]:
    rows = await InvalidValue.filter(customer_id=customer_id, resolved_at__isnull=True).values_list(
        "field", flat=True
    )
    return {str(name) for name in rows}


async def ingest_customer(vault: Vault, ingest: CustomerIngest) -> IngestResult:
    """Validate, resolve and merge one record (in the caller's transaction).

    Invalid profile values are refused individually and reported; the record itself is refused
    (:class:`ValidationFailed`, nothing written) only when its provenance is invalid or no
    usable identifier is left.
    """
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

    await vault.ready()
    resolution = await identity.resolve(vault, identifiers, paths)
    issues.extend(resolution.notes)
    now = clock.now()
    source_record_id = uuid.uuid4()
    provenance = Provenance(
        source_record_id=str(source_record_id),
        source_system=ingest.source.system,
        source_kind=ingest.source.kind,
        collected_at=ingest.source.collected_at,
    )
    if resolution.customer_id is None:
        customer_id = uuid.uuid4()
        key = await vault.create_customer_key(customer_id)
        customer = Customer(
            id=customer_id,
            created_at=now,
            lifecycle_stage=ingest.lifecycle_stage or LifecycleStage.LEAD,
            source_systems=[],
            lineage={},
        )
        values: dict[str, str] = {}
        outcome = Outcome.CREATED
    else:
        customer_id = resolution.customer_id
        customer = await Customer.filter(id=customer_id).select_for_update().get()
        key = await vault.customer_key(customer_id)
        values = vault.open(key, customer_id, "profile", customer.profile_sealed)
        if ingest.lifecycle_stage is not None:
            customer.lifecycle_stage = ingest.lifecycle_stage
        outcome = Outcome.MATCHED

    lineage = dict(customer.lineage)
    survive(values, lineage, validated.values, provenance)
    customer.lineage = lineage
    customer.profile_sealed = vault.seal(key, customer_id, "profile", values)
    customer.present_fields = sorted(values)
    if ingest.source.system not in customer.source_systems:
        customer.source_systems = sorted([*customer.source_systems, ingest.source.system])
    customer.updated_at = now
    if outcome is Outcome.MATCHED and validated.values:
        await InvalidValue.filter(
            customer_id=customer_id, field__in=list(validated.values), resolved_at__isnull=True
        ).update(resolved_at=now)
    refused = set(validated.rejected)
    open_invalid = refused | (
        await _open_invalid_fields(customer_id) if outcome is Outcome.MATCHED else set()
    )
    last_update = max(
        (datetime.fromisoformat(str(entry["collected_at"])) for entry in lineage.values()),
        default=None,
    )
    scored = quality.score(values, open_invalid, last_update, now)
    customer.completeness = scored.completeness
    customer.validity = scored.validity
    customer.quality_score = scored.score
    await customer.save(force_create=outcome is Outcome.CREATED)

    payload = {
        "profile": {k: v for k, v in ingest.profile.items() if v is not None},
        "external_ids": ingest.external_ids,
        "lifecycle_stage": ingest.lifecycle_stage.value if ingest.lifecycle_stage else None,
    }
    await SourceRecord.create(
        id=source_record_id,
        customer_id=customer_id,
        source_system=ingest.source.system,
        source_kind=ingest.source.kind,
        collected_at=ingest.source.collected_at,
        received_at=now,
        lawful_basis=ingest.source.lawful_basis,
        purpose=ingest.source.purpose,
        payload_sealed=vault.seal(key, customer_id, f"source:{source_record_id}", payload),
        outcome=outcome.value,
        matched_rule=resolution.rule,
    )
    if resolution.attach:
        await Identity.bulk_create(
            [
                Identity(
                    id=uuid.uuid4(),
                    customer_id=customer_id,
                    kind=identifier.kind,
                    namespace=identifier.namespace,
                    blind_index=resolution.indexes[identifier],
                    value_sealed=vault.seal(key, customer_id, "identity", identifier.value),
                    source_record_id=source_record_id,
                    created_at=now,
                )
                for identifier in resolution.attach
            ]
        )
    if validated.rejected:
        by_field = {issue.field: issue for issue in validated.issues}
        rejects = []
        for name, raw in validated.rejected.items():
            issue = next(i for path, i in by_field.items() if path.endswith(_input_suffix(name)))
            rejects.append(
                InvalidValue(
                    id=uuid.uuid4(),
                    customer_id=customer_id,
                    source_record_id=source_record_id,
                    field=name,
                    code=issue.code.value,
                    message=issue.message,
                    value_sealed=vault.seal(key, customer_id, f"invalid:{name}", raw),
                    created_at=now,
                )
            )
        await InvalidValue.bulk_create(rejects)
    return IngestResult(customer_id, outcome, resolution.rule, source_record_id, issues)


def _input_suffix(name: str) -> str:
    from cdlm.quality.fields import INPUT_PATHS

    return INPUT_PATHS[name]


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
    actor: Principal, vault: Vault, ingest: CustomerIngest, idempotency_key: str | None = None
) -> Ingested:
    """The ``ingestCustomer`` operation: idempotent, audited, one transaction."""

    async def run() -> dict[str, Any]:
        result = await ingest_customer(vault, ingest)
        await audit.record(
            actor,
            f"customer.ingest.{result.outcome.value}",
            target_type="customer",
            target_id=result.customer_id,
            fields=[n for n, v in ingest.profile.items() if v is not None],
        )
        return result.to_json()

    outcome = await idempotency.run_once(
        idempotency.scope_for("ingestCustomer", actor),
        idempotency_key,
        _request_fingerprint(ingest),
        run,
    )
    return Ingested(IngestResult.from_json(outcome.result), outcome.replayed)


async def ingest_many(
    actor: Principal, vault: Vault, records: list[CustomerIngest], batch_label: str
) -> list[IngestResult | ValidationFailed]:
    """Ingest records in one transaction (one audit entry); a refused record is returned as its
    error and does not stop the others (each runs in a savepoint)."""
    results: list[IngestResult | ValidationFailed] = []
    async with in_transaction():
        for record in records:
            try:
                async with in_transaction():
                    results.append(await ingest_customer(vault, record))
            except ValidationFailed as error:
                results.append(error)
        await audit.record(
            actor,
            "customer.ingest.batch",
            target_type="import_batch",
            target_id=batch_label,
            fields=sorted({n for r in records for n, v in r.profile.items() if v is not None}),
        )
    return results

"""Segment exports: a segment's members written to a file for one purpose, consent enforced.

An export evaluates the segment now, then keeps only the members the purpose may process now
(the consent service's one check, :func:`cdlm.consent.service.answers`: restricted and erased
customers never), and writes only the fields the purpose's fideslang data categories cover
(:func:`cdlm.core.vocabulary.covers`, the data map's rule). Each row starts with the customer
id (``customerId``), a pseudonymous key that is no personal value.

Refusals (:class:`PolicyViolation` on ``input.purposeCode``, nothing written):

- the purpose is not declared: no lawful basis is recorded for it;
- the purpose is notice-only: its processing rests on another lawful basis the person was only
  told of, so an export would hand out the data of everyone who did not object; an export is
  made only for a purpose the person decides on (opt-in or opt-out);
- the purpose's data categories cover none of the exportable fields.

The file is built in memory (decrypted values never touch a disk), sealed under a key of the
export's own and fetched through a short-lived download link, the one access exports use
(:func:`cdlm.dsr.access.issue_link`, ``GET /exports/<token>``). Every export is audited
(``segment.export``, target the export, with the fields written); its counts are kept on its
row (:class:`SegmentExport`), which is never changed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from tortoise.transactions import in_transaction

from cdlm.analytics.segments import service
from cdlm.analytics.segments.models import Segment, SegmentExport
from cdlm.audit import service as audit
from cdlm.auth.settings import AuthSettings
from cdlm.config import Settings
from cdlm.consent import service as consent
from cdlm.consent.models import Mechanism, Purpose
from cdlm.core import clock
from cdlm.core.errors import NotFound, PolicyViolation
from cdlm.core.principal import Principal
from cdlm.core.vocabulary import covers
from cdlm.customers import attributes
from cdlm.customers import service as customers
from cdlm.dsr import access
from cdlm.dsr.models import DownloadToken
from cdlm.quality.fields import PROFILE
from cdlm.vault.service import Vault

#: Members read (ids, consent, profiles) per batch.
BATCH = 500
#: The first column of every file.
ID_COLUMN = "customerId"


class ExportFormat(StrEnum):
    """How the file is written."""

    CSV = "csv"
    JSON_LINES = "json_lines"


@dataclass(frozen=True)
class ExportableField:
    """One column an export may hold: its name in the file (the API path below ``Customer``),
    its fideslang data category, and where its value comes from."""

    column: str
    category: str
    profile_field: str | None = None  #: key in the sealed profile
    attribute: str | None = None  #: column of the analysis attributes


#: Every field an export may hold, in file order: the profile, then the analysis attributes.
EXPORTABLE: tuple[ExportableField, ...] = (
    *(ExportableField(f"profile.{f.api_path}", f.category, profile_field=f.name) for f in PROFILE),
    *(
        ExportableField(f"analytics.{a.api_path}", a.category, attribute=a.column)
        for a in attributes.ATTRIBUTES
    ),
)


def allowed_fields(purpose: Purpose) -> list[ExportableField]:
    """The fields the purpose's data categories cover, in file order."""
    return [f for f in EXPORTABLE if any(covers(c, f.category) for c in purpose.data_categories)]


@dataclass(frozen=True)
class SegmentExportRequest:
    """What to export: a segment's members, for a purpose, in a format. ``path`` is where the
    input sits (error paths start there)."""

    segment_id: uuid.UUID
    purpose_code: str
    format: ExportFormat
    path: str = "input"


@dataclass(frozen=True)
class ExportedSegment:
    """The export made, and its download link (shown once: only its hash is kept)."""

    export: SegmentExport
    download_url: str
    expires_at: datetime


async def _exportable_purpose(code: str, field: str) -> tuple[Purpose, list[ExportableField]]:
    """The purpose and the fields it allows, or the rule that refuses the export."""
    found = {p.code: p for p in await consent.all_purposes()}.get(code)
    if found is None:
        raise PolicyViolation(
            "No purpose has this code, so no lawful basis is recorded for the export.",
            field=field,
        )
    if found.mechanism is Mechanism.NOTICE_ONLY:
        raise PolicyViolation(
            "This purpose is notice-only: people were told of it but do not decide on it, "
            "so its data is not exported; export for a purpose people opt in or out of.",
            field=field,
        )
    fields = allowed_fields(found)
    if not fields:
        raise PolicyViolation(
            "This purpose's data categories cover none of the exportable fields.", field=field
        )
    return found, fields


async def _members(segment: Segment) -> list[uuid.UUID]:
    """Every member of the segment now, in id order."""
    definition = service.definition_of(segment)
    found: list[uuid.UUID] = []
    after: uuid.UUID | None = None
    while True:
        page = await service.members(definition, service.MembersPage(BATCH, after=after))
        found += page.ids
        if not page.has_next_page or not page.ids:
            return found
        after = page.ids[-1]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _write(fmt: ExportFormat, columns: list[str], rows: list[dict[str, Any]]) -> bytes:
    """The file, in memory."""
    if fmt is ExportFormat.CSV:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(
            {c: "" if (v := row.get(c)) is None else _plain(v) for c in columns} for row in rows
        )
        return buffer.getvalue().encode()
    lines = (
        json.dumps({c: _plain(row.get(c)) for c in columns}, ensure_ascii=False) for row in rows
    )
    return "".join(f"{line}\n" for line in lines).encode()


async def _rows(
    vault: Vault, ids: Sequence[uuid.UUID], fields: list[ExportableField]
) -> list[dict[str, Any]]:
    """One row per customer (decrypted in memory), in the order of ``ids``."""
    wanted_profile = any(f.profile_field for f in fields)
    wanted_attributes = any(f.attribute for f in fields)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(ids), BATCH):
        batch = list(ids[start : start + BATCH])
        profiles = await customers.open_profiles(vault, batch) if wanted_profile else {}
        values = await attributes.values_of(batch) if wanted_attributes else {}
        for customer_id in batch:
            profile = profiles.get(customer_id, {})
            scores = values.get(customer_id, {})
            row: dict[str, Any] = {ID_COLUMN: str(customer_id)}
            for f in fields:
                if f.profile_field is not None:
                    row[f.column] = profile.get(f.profile_field)
                elif f.attribute is not None:
                    row[f.column] = scores.get(f.attribute)
            rows.append(row)
    return rows


async def _permitted(ids: list[uuid.UUID], purpose: Purpose) -> list[uuid.UUID]:
    """Those of ``ids`` the purpose may process now, in order (the one check)."""
    kept: list[uuid.UUID] = []
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        answered = await consent.answers(batch, [purpose])
        kept += [i for i in batch if answered[i][0].permitted]
    return kept


async def export_segment(
    actor: Principal,
    vault: Vault,
    auth: AuthSettings,
    settings: Settings,
    request: SegmentExportRequest,
) -> ExportedSegment:
    """Export the segment's members for the purpose (see the module's note), audited."""
    segment = await service.segment(request.segment_id)
    if segment is None:
        raise NotFound("No segment has this id.", field=f"{request.path}.segmentId")
    purpose, fields = await _exportable_purpose(request.purpose_code, f"{request.path}.purposeCode")
    members = await _members(segment)
    kept = await _permitted(members, purpose)
    columns = [ID_COLUMN, *(f.column for f in fields)]
    content = _write(request.format, columns, await _rows(vault, kept, fields))
    export_id = uuid.uuid4()
    async with in_transaction():
        key = await vault.create_customer_key(export_id)
        export = await SegmentExport.create(
            id=export_id,
            segment=segment,
            purpose_code=purpose.code,
            format=request.format.value,
            created_at=clock.now(),
            created_by=f"{actor.kind.value}:{actor.id or actor.name}",
            members_evaluated=len(members),
            members_exported=len(kept),
            left_out_for_consent=len(members) - len(kept),
            exported_fields=columns,
            content_sealed=vault.seal_json(key, export_id, access.SEGMENT_EXPORT, content),
            size_bytes=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
        )
        await audit.record(
            actor,
            "segment.export",
            target_type="segment_export",
            target_id=export_id,
            fields=[f.profile_field or f.column for f in fields],
        )
        link = await access.issue_link(auth, settings, segment_export_id=export_id)
    return ExportedSegment(export, link.url, link.expires_at)


async def exports_by_ids(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, SegmentExport]:
    """Segment exports by id (one query)."""
    return {e.id: e for e in await SegmentExport.filter(id__in=list(ids))}


@dataclass(frozen=True)
class RecipientFlow:
    """Exports made for one purpose: a flow of personal data out of cdlm."""

    purpose_code: str
    exports: int
    members_exported: int
    last_at: datetime
    fields: list[str]


async def recipient_flows() -> dict[str, RecipientFlow]:
    """Per purpose code, the segment exports made for it (for the records of processing)."""
    flows: dict[str, RecipientFlow] = {}
    for e in await SegmentExport.all().order_by("created_at"):
        before = flows.get(e.purpose_code)
        flows[e.purpose_code] = RecipientFlow(
            e.purpose_code,
            (before.exports if before else 0) + 1,
            (before.members_exported if before else 0) + e.members_exported,
            e.created_at,
            sorted({*(before.fields if before else []), *e.exported_fields}),
        )
    return flows


async def destroy_unreachable(vault: Vault) -> int:
    """Destroy the files of segment exports no link can fetch any more (every link expired,
    revoked or used up): the export's key is shredded and its sealed file deleted, so a person
    erased later is in no file cdlm keeps. The row stays, with its counts and fields, as the
    record of what was disclosed for which purpose (GDPR Art. 19)."""
    now = clock.now()
    live = DownloadToken.filter(
        segment_export_id__isnull=False,
        revoked_at__isnull=True,
        expires_at__gt=now,
        downloads__lt=access.MAX_DOWNLOADS,
    ).values_list("segment_export_id", flat=True)
    reachable = set(await live)
    kept = await SegmentExport.filter(content_sealed__isnull=False).values_list("id", flat=True)
    stale = [uuid.UUID(str(e)) for e in kept if e not in reachable]
    for export_id in stale:
        await vault.shred(export_id)
    if stale:
        await SegmentExport.filter(id__in=stale).update(content_sealed=None)
    return len(stale)

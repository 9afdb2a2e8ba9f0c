"""Reading the audit trail's read records in tests: chained first, then found by subject."""

from __future__ import annotations

import uuid

from cdlm.audit import sequencer
from cdlm.audit.models import AuditEntry


async def read_records(action: str, subject: str | uuid.UUID | None = None) -> list[AuditEntry]:
    """The chained records of ``action`` (pending ones are chained first), oldest first; with
    ``subject``, those about that customer or request."""
    await sequencer.chain_all()
    entries = list(await AuditEntry.filter(action=action).order_by("sequence"))
    if subject is None:
        return entries
    wanted = uuid.UUID(str(subject))
    return [e for e in entries if wanted in (e.subject_ids or []) or e.target_id == str(wanted)]


async def subjects_read(action: str) -> int:
    """How many subjects the records of ``action`` cover, counted once per record."""
    return sum(len(e.subject_ids or []) for e in await read_records(action))

"""DataLoader batch functions of the audit trail (bound per request in the context)."""

from __future__ import annotations

import uuid

from cdlm.audit import service
from cdlm.audit.models import AuditEntry


async def audit_entries_by_id(ids: list[uuid.UUID]) -> list[AuditEntry | None]:
    """Chained audit entries by id, in order."""
    return await service.entries_by_ids(ids)

"""A request's personal reads, recorded together when the request ends."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cdlm.audit import service as audit
from cdlm.core.principal import Principal


@dataclass(frozen=True)
class ReadKind:
    """What was read: the action recorded, the kind of target and the personal fields."""

    action: str
    target_type: str
    fields: tuple[str, ...]


class RequestReads:
    """The personal reads of one request, noted as its fields resolve."""

    def __init__(self) -> None:
        self._reads: dict[ReadKind, set[uuid.UUID]] = {}

    def note(
        self,
        target_ids: Iterable[uuid.UUID],
        fields: Iterable[str],
        *,
        action: str = "customer.read",
        target_type: str = "customer",
    ) -> None:
        """Note a read of ``fields`` of these targets (nothing when no personal field)."""
        kind = ReadKind(action, target_type, tuple(sorted(set(fields))))
        ids = set(target_ids)
        if kind.fields and ids:
            self._reads.setdefault(kind, set()).update(ids)

    def take(self) -> list[tuple[ReadKind, list[uuid.UUID]]]:
        """The reads noted so far, forgotten here once taken."""
        taken = [(kind, sorted(ids)) for kind, ids in self._reads.items()]
        self._reads.clear()
        return taken


async def record(actor: Principal, reads: Sequence[tuple[ReadKind, Sequence[uuid.UUID]]]) -> None:
    """Write the reads a request noted: one audit record per kind of read (usually one per
    request), without the audit lock; the sequencer chains them within seconds."""
    for kind, ids in reads:
        await audit.record_read(
            actor, ids, kind.fields, action=kind.action, target_type=kind.target_type
        )

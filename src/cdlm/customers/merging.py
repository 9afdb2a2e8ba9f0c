"""What a merge moves of the customer rows themselves: source records and events."""

from __future__ import annotations

from cdlm.reassign import SealedColumn, Table
from cdlm.vault import purposes as sealed_for

SOURCE_RECORDS = Table(
    "source_records",
    sealed=SealedColumn("payload_sealed", lambda row: sealed_for.source_record(row["id"])),
)
EVENTS = Table(
    "events", sealed=SealedColumn("properties_sealed", lambda _: sealed_for.EVENT_PROPERTIES)
)

"""What a merge moves of the customer rows themselves: source records and events."""

from __future__ import annotations

from cdlm.reassign import SealedColumn, Table

SOURCE_RECORDS = Table(
    "source_records",
    sealed=SealedColumn("payload_sealed", lambda row: f"source:{row['id']}"),
)
EVENTS = Table("events", sealed=SealedColumn("properties_sealed", lambda _: "event-properties"))

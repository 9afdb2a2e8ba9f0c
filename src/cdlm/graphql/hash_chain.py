"""The report of re-computing a hash chain: one type for the audit trail and the consent
ledger."""

from datetime import timedelta

import strawberry

from cdlm.core.chain import ChainProblem
from cdlm.graphql.enums import describe_enum

describe_enum(
    ChainProblem,
    "How the first broken link of a hash chain is broken.",
    {
        ChainProblem.PREVIOUS_HASH_MISMATCH: "The entry does not point to the hash of the entry "
        "before it: an entry was removed, inserted or reordered.",
        ChainProblem.CONTENT_MISMATCH: "The entry's content no longer gives its hash: it was "
        "changed after it was written.",
    },
    name="HashChainProblem",
)


@strawberry.type(
    description=(
        "Result of re-computing a hash chain (the audit trail or the consent ledger) from its "
        "first entry: whether every entry is intact and where the first break is."
    )
)
class HashChainReport:
    ok: bool = strawberry.field(description="True when every entry checked is intact.")
    entries_checked: int = strawberry.field(description="How many entries were re-computed.")
    head_hash: str = strawberry.field(
        description="Hash of the last intact entry (hex SHA-256); record it elsewhere to "
        "detect a truncation later."
    )
    first_broken_sequence: int | None = strawberry.field(
        description="Position (sequence) of the first broken entry; null when ok."
    )
    first_broken_id: strawberry.ID | None = strawberry.field(
        description="Global id of the first broken entry; null when ok."
    )
    problem: ChainProblem | None = strawberry.field(
        description="How the first broken entry is broken; null when ok."
    )
    pending_entries: int = strawberry.field(
        description="Entries written but not chained yet (audit read records, chained by the "
        "sequencer within seconds): neither checked, missing nor broken. Always 0 for the "
        "consent ledger, whose entries are chained when written."
    )
    oldest_pending_seconds: float | None = strawberry.field(
        description="Seconds the oldest pending entry has waited; null when none is pending."
    )

    @classmethod
    def of(
        cls,
        *,
        ok: bool,
        entries_checked: int,
        head_hash: str,
        first_broken_sequence: int | None = None,
        first_broken_id: strawberry.ID | None = None,
        problem: ChainProblem | None = None,
        pending_entries: int = 0,
        oldest_pending: timedelta | None = None,
    ) -> "HashChainReport":
        """A report; ``oldest_pending`` as a duration."""
        return cls(
            ok=ok,
            entries_checked=entries_checked,
            head_hash=head_hash,
            first_broken_sequence=first_broken_sequence,
            first_broken_id=first_broken_id,
            problem=problem,
            pending_entries=pending_entries,
            oldest_pending_seconds=(
                oldest_pending.total_seconds() if oldest_pending is not None else None
            ),
        )

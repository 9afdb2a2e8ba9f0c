"""The report of re-computing a hash chain: one type for the audit trail and the consent
ledger."""

from datetime import datetime, timedelta

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
        ChainProblem.UNKEYED_AFTER_KEYED: "An entry hashed without the ledger key (plain "
        "SHA-256, as before ledgers were keyed) comes after a keyed one: it was forged.",
        ChainProblem.UNKNOWN_KEY: "The entry names a ledger key this installation does not "
        "hold (CDLM_LEDGER_KEY lost an old key), so it cannot be checked.",
        ChainProblem.CHECKPOINT_MISMATCH: "The entry a checkpoint recorded is gone, has another "
        "hash, or is preceded by another number of entries: the ledger was cut short or "
        "rewritten through it.",
        ChainProblem.CHECKPOINT_MISSING: "A checkpoint of this position is missing from the "
        "write-once store (or is not one this installation wrote).",
    },
    name="HashChainProblem",
)


@strawberry.type(
    description=(
        "Result of re-computing a hash chain (the audit trail or the consent ledger) from its "
        "newest checkpoint in the write-once store (or its first entry when there is none): "
        "whether every entry is intact and where the first break is."
    )
)
class HashChainReport:
    ok: bool = strawberry.field(description="True when every entry checked is intact.")
    entries_checked: int = strawberry.field(
        description="How many entries were re-computed (those after the checkpoint, if any)."
    )
    head_hash: str = strawberry.field(
        description="Hash of the last intact entry (hex HMAC-SHA256 under the ledger key; "
        "SHA-256 for entries written before ledgers were keyed)."
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
    checkpoint_sequence: int | None = strawberry.field(
        default=None,
        description="Position (sequence) of the checkpoint verification started from; null "
        "when it started from the first entry.",
    )
    checkpointed_at: datetime | None = strawberry.field(
        default=None,
        description="When that checkpoint was written; null when there was none.",
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
        checkpoint_sequence: int | None = None,
        checkpointed_at: datetime | None = None,
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
            checkpoint_sequence=checkpoint_sequence,
            checkpointed_at=checkpointed_at,
        )

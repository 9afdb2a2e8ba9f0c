"""Hash chains for append-only ledgers (the audit trail, the consent ledger).

Each entry's hash is SHA-256 over its canonical content and the previous entry's hash; writers
append under a transaction-scoped advisory lock so concurrent writers queue up
(:func:`cdlm.core.locks.lock_and_read_head`). Pure rules: no I/O here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

GENESIS_HASH = "0" * 64


def entry_hash(content: dict[str, Any], prev_hash: str) -> str:
    """SHA-256 of ``content`` (canonical JSON) chained to ``prev_hash``."""
    canonical = json.dumps(
        {**content, "prev_hash": prev_hash}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class ChainProblem(StrEnum):
    """How a link of a hash chain is broken."""

    PREVIOUS_HASH_MISMATCH = "PREVIOUS_HASH_MISMATCH"
    CONTENT_MISMATCH = "CONTENT_MISMATCH"


@dataclass(frozen=True)
class BrokenLink:
    """Where a chain first breaks."""

    position: int
    problem: ChainProblem


def check(
    entries: Sequence[Any], previous: str, content: Callable[[Any], dict[str, Any]]
) -> tuple[str, BrokenLink | None]:
    """Walk ``entries`` from ``previous``; returns the last good hash and the first break."""
    for position, entry in enumerate(entries):
        if entry.prev_hash != previous:
            return previous, BrokenLink(position, ChainProblem.PREVIOUS_HASH_MISMATCH)
        if entry_hash(content(entry), entry.prev_hash) != entry.hash:
            return previous, BrokenLink(position, ChainProblem.CONTENT_MISMATCH)
        previous = entry.hash
    return previous, None

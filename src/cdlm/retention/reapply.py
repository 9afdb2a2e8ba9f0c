"""Re-applying the erasure register to a restored database.

A backup (or an RDS snapshot, or a point-in-time restore) taken before an erasure still holds
the person's wrapped data key, which the master key unwraps. After a restore every registered
erasure is carried out again, by the steps that did it the first time: the data key is
destroyed, what the erasure deleted is deleted, and the identifiers are suppressed again.
Idempotent: an erasure the restored copy already holds changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.transactions import in_transaction

from cdlm.dsr import erasure
from cdlm.erasures.register import ErasureRegister, flush
from cdlm.retention import customer_disposal
from cdlm.vault.service import Vault


@dataclass(frozen=True)
class Reapplied:
    """What re-applying did (counts only)."""

    records: int
    re_erased: int
    already_erased: int
    identifiers_suppressed: int


async def reapply_erasures(
    vault: Vault, register: ErasureRegister, since: datetime | None = None
) -> Reapplied:
    """Carry out again every erasure the register holds (since ``since``), oldest first, each
    in its own transaction. Erasures committed but not yet registered are registered first."""
    await vault.ready()
    await flush(register)
    records = register.since(since)
    re_erased = suppressed = 0
    for record in records:
        async with in_transaction():
            if record.action == "erasure":
                found, new = await erasure.reapply(vault, record)
                suppressed += new
            else:
                found = await customer_disposal.reapply(vault, record)
        re_erased += found
    return Reapplied(len(records), re_erased, len(records) - re_erased, suppressed)

"""Retention disposal of whole customers (``customers.inactive``).

What matching keeps about a customer and the profiles merged into it (candidates, merges and
the rows they moved: ids, scores and keyed digests) goes first, then the customer data itself
(:mod:`cdlm.customers.disposal`), in the sweep's transaction. Matching sits above customers,
so it is composed here rather than called from customers.
"""

from __future__ import annotations

import uuid

from cdlm.customers import disposal, rights
from cdlm.customers import service as customers
from cdlm.erasures import register
from cdlm.matching import forget as matching
from cdlm.vault.models import CustomerKey
from cdlm.vault.service import Vault


async def _forget_matching(ids: list[str], action: str | None, keep: rights.Keep) -> None:
    """Candidates and merges naming the customers or the profiles merged into them go; each
    disposal is noted for the erasure register (in the sweep's transaction) unless ``action``
    is None (a registered disposal carried out again)."""
    for text in ids:
        customer_id = uuid.UUID(text)
        await matching.forget([customer_id, *await customers.absorbed(customer_id)])
        if action is not None:
            await register.note(customer_id, action, kept=keep.categories)


_DISPOSALS = {
    "delete": disposal.delete_customers,
    "anonymize": disposal.anonymize_customers,
    "crypto_shred": disposal.crypto_shred_customers,
}


async def reapply(vault: Vault, record: register.ErasureRecord) -> bool:
    """Carry out a registered disposal of a whole customer again, by the same steps (after a
    restore brought the customer back); True when their data key was still there."""
    if not await CustomerKey.exists(customer_id=record.customer_id):
        return False  # shredded already (or never in this copy): nothing reads as them
    keep = rights.Keep.of(set(record.kept))
    ids = [str(record.customer_id)]
    await _forget_matching(ids, None, keep)
    await _DISPOSALS[record.action](vault, ids, keep)
    return True


async def delete_customers(vault: Vault, ids: list[str], keep: rights.Keep) -> int:
    """Crypto-shred and delete whole customers (what ``keep`` names stays, restricted)."""
    await _forget_matching(ids, "delete", keep)
    return await disposal.delete_customers(vault, ids, keep)


async def anonymize_customers(vault: Vault, ids: list[str], keep: rights.Keep) -> int:
    """Keep the customers as non-personal records (see
    :func:`cdlm.customers.disposal.anonymize_customers`)."""
    await _forget_matching(ids, "anonymize", keep)
    return await disposal.anonymize_customers(vault, ids, keep)


async def crypto_shred_customers(vault: Vault, ids: list[str], keep: rights.Keep) -> int:
    """Destroy the customers' keys (see :func:`cdlm.customers.disposal.crypto_shred_customers`)."""
    await _forget_matching(ids, "crypto_shred", keep)
    return await disposal.crypto_shred_customers(vault, ids, keep)

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
from cdlm.matching import forget as matching
from cdlm.vault.service import Vault


async def _forget_matching(ids: list[str]) -> None:
    """Candidates and merges naming the customers or the profiles merged into them go."""
    for text in ids:
        customer_id = uuid.UUID(text)
        await matching.forget([customer_id, *await customers.absorbed(customer_id)])


async def delete_customers(vault: Vault, ids: list[str], keep: rights.Keep) -> int:
    """Crypto-shred and delete whole customers (what ``keep`` names stays, restricted)."""
    await _forget_matching(ids)
    return await disposal.delete_customers(vault, ids, keep)


async def anonymize_customers(vault: Vault, ids: list[str], keep: rights.Keep) -> int:
    """Keep the customers as non-personal records (see
    :func:`cdlm.customers.disposal.anonymize_customers`)."""
    await _forget_matching(ids)
    return await disposal.anonymize_customers(vault, ids, keep)


async def crypto_shred_customers(vault: Vault, ids: list[str], keep: rights.Keep) -> int:
    """Destroy the customers' keys (see :func:`cdlm.customers.disposal.crypto_shred_customers`)."""
    await _forget_matching(ids)
    return await disposal.crypto_shred_customers(vault, ids, keep)

"""A profile as matching compares it, and the keyed digest that notices when that changes."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import astuple

from tortoise.connection import get_connection

from cdlm.matching.features import MatchRecord, match_record
from cdlm.vault.service import Vault


async def external_tokens(
    customer_ids: Collection[uuid.UUID] | None = None,
) -> dict[uuid.UUID, list[str]]:
    """Each customer's external ids as ``namespace:digest`` tokens (keyed digests, never the
    ids), for everyone or only ``customer_ids``."""
    rows = await get_connection("default").execute_query_dict(
        'SELECT "customer_id", "namespace", "blind_index" FROM "identities" '
        "WHERE \"kind\" = 'external_id' "
        'AND ($1::uuid[] IS NULL OR "customer_id" = ANY($1::uuid[]))',
        [list(customer_ids) if customer_ids is not None else None],
    )
    found: dict[uuid.UUID, list[str]] = {}
    for row in rows:
        found.setdefault(row["customer_id"], []).append(
            f"{row['namespace']}:{row['blind_index'][:24]}"
        )
    return found


def record_of(
    customer_id: uuid.UUID, values: Mapping[str, str], tokens: Mapping[uuid.UUID, list[str]]
) -> MatchRecord:
    """The normalized record of one decrypted profile."""
    return match_record(str(customer_id), values, tokens.get(customer_id, ()))


def digest(vault: Vault, record: MatchRecord) -> str:
    """Keyed digest of what is compared of a profile: a change of it re-opens a pair a
    steward said is two people (for review, never for an automatic merge)."""
    return vault.blind_index("match-record", repr(astuple(record)[1:]))

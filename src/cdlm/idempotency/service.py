"""Run an operation once per idempotency key; later calls with the key get the first result.

The key is scoped by operation and caller. Clients put all sorts of things in keys (emails
among them), so only a keyed digest of the key is stored (HMAC under the installation's index
key, like blind indexes): the key itself never reaches the database. The request's fingerprint
(a digest of its input) is stored with the result: reusing a key for a different request is
refused instead of silently returning the wrong result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from tortoise.transactions import in_transaction

from cdlm.core import clock
from cdlm.core.errors import Conflict, ErrorCode, ValidationFailed
from cdlm.core.locks import lock_names
from cdlm.core.principal import Principal
from cdlm.core.transactions import retrying
from cdlm.disposal import Candidate, DatedRows, delete_rows, due_rows
from cdlm.idempotency.models import IdempotencyRecord
from cdlm.vault.service import Vault

MAX_KEY_LENGTH = 200


def fingerprint(payload: Any) -> str:
    """Digest of a request made of JSON-like values (dict keys in any order give the same
    digest; other values count by their ``str``). The walk is iterative: a request nested
    deeper than Python's recursion limit is digested like any other."""
    digest = hashlib.sha256()
    pending: list[Any] = [payload]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            keys = sorted(item, key=str)
            digest.update(b"{%d" % len(keys))
            for key in reversed(keys):  # popped in sorted order
                pending.append(item[key])
                pending.append(str(key))
        elif isinstance(item, list | tuple):
            digest.update(b"[%d" % len(item))
            pending.extend(reversed(item))
        else:
            encoded = str(item).encode("utf-8", "surrogatepass")
            digest.update(_SCALAR_TAGS.get(type(item), b"o") + b"%d:" % len(encoded) + encoded)
    return digest.hexdigest()


_SCALAR_TAGS: dict[type, bytes] = {
    str: b"s", int: b"i", float: b"f", bool: b"b", type(None): b"n"
}  # fmt: skip


def scope_for(operation: str, actor: Principal) -> str:
    """Keys are per operation and per caller: two callers cannot collide."""
    return f"{operation}:{actor.kind.value}:{actor.id or actor.name}"


T = TypeVar("T")


@dataclass(frozen=True)
class Codec(Generic[T]):
    """How an operation's result is remembered: ``to_json`` makes the JSON-ready value stored
    when it first runs, ``from_json`` reads that value back when a call replays it."""

    to_json: Callable[[T], Any]
    from_json: Callable[[Any], T]


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """The result, and whether it is a replay of an earlier call."""

    result: T
    replayed: bool


async def run_once(
    vault: Vault,
    scope: str,
    key: str | None,
    request_fingerprint: str,
    operation: Callable[[], Awaitable[T]],
    codec: Codec[T],
) -> Outcome[T]:
    """Run ``operation`` in a transaction, or return the result remembered for ``key``.

    Without a key the operation simply runs. With one, concurrent calls wait for each other.
    The first call returns the operation's own result (stored through ``codec``); only a
    replay decodes the stored one. A transaction that PostgreSQL aborts for a deadlock or
    serialization failure is run again (:func:`cdlm.core.transactions.retrying`).
    """
    if key is not None and (not key.strip() or len(key) > MAX_KEY_LENGTH):
        raise ValidationFailed(
            f"An idempotency key has 1 to {MAX_KEY_LENGTH} characters.", field="idempotencyKey"
        )
    digest = None
    if key is not None:
        await vault.ready()
        digest = key_digest(vault, scope, key)
    return await retrying(lambda: _run_once(scope, digest, request_fingerprint, operation, codec))


def key_digest(vault: Vault, scope: str, key: str) -> str:
    """What is stored of an idempotency key: a keyed digest, bound to its scope."""
    return vault.blind_index("idempotency-key", f"{scope}\x00{key}")


async def _run_once(
    scope: str,
    digest: str | None,
    request_fingerprint: str,
    operation: Callable[[], Awaitable[T]],
    codec: Codec[T],
) -> Outcome[T]:
    if digest is None:
        async with in_transaction():
            return Outcome(await operation(), replayed=False)
    async with in_transaction():
        await lock_names([f"{scope}\x00{digest}"])
        existing = await IdempotencyRecord.get_or_none(scope=scope, key=digest)
        if existing is not None:
            if existing.fingerprint != request_fingerprint:
                raise Conflict(
                    "This idempotency key was used for a different request.",
                    field="idempotencyKey",
                    code=ErrorCode.IDEMPOTENCY_MISMATCH,
                )
            return Outcome(codec.from_json(existing.result), replayed=True)
        result = await operation()
        await IdempotencyRecord.create(
            scope=scope,
            key=digest,
            fingerprint=request_fingerprint,
            result=codec.to_json(result),
            created_at=clock.now(),
        )
        return Outcome(result, replayed=False)


async def records_due(cutoff: datetime, after: str | None, limit: int) -> list[Candidate]:
    """Remembered results older than ``cutoff`` (a replay after that runs again)."""
    return await due_rows(
        DatedRows(IdempotencyRecord, "created_at", id_type=int), cutoff, after, limit
    )


async def delete_records(ids: list[str]) -> int:
    """Forget remembered results."""
    return await delete_rows(IdempotencyRecord, ids, id_type=int)

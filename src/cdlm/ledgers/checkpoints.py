"""Checkpoints: a ledger's heads written to a write-once store outside the database, so a later
rewrite or truncation of the ledger is detected.

A ledger is striped (:mod:`cdlm.core.stripes`): a checkpoint records each stripe's head
(sequence, hash, count, key id), which merges the independent chains into one sealed state, and
as its position the newest of those heads (the highest sequence; ``count`` is the total). A
checkpoint is a small JSON document named ``<ledger>/<position, 20 digits>.json`` (so names
sort by position), under ``checkpoints/`` in the ledger bucket on AWS or in
``CDLM_CHECKPOINT_DIR`` locally. Each names the checkpoint before it with the SHA-256 of its
document (the checkpoints form a chain of their own) and carries an HMAC under the ledger key,
so one forged by someone allowed to write the store is refused. No personal data: positions,
hashes and counts only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from cdlm.config import Settings
from cdlm.core import chain
from cdlm.core.writeonce import DirectoryStore, S3ObjectLockStore, WriteOnceStore

FORMAT = 2
#: Format 1 (before striping) recorded one head: read as the head of stripe 0.
FORMATS = (1, 2)
#: Where checkpoints go in the ledger bucket (beside the erasure register).
S3_PREFIX = "checkpoints/"


class CheckpointInvalid(ValueError):
    """A stored document is not a checkpoint this installation wrote (malformed, or its MAC
    does not verify under the ledger key)."""


@dataclass(frozen=True)
class StripeHead:
    """One stripe's newest entry: its sequence, hash and key id, and the stripe's count up to
    and including it."""

    stripe: int
    sequence: int
    hash: str
    count: int
    key_id: str | None

    def as_data(self) -> dict[str, Any]:
        """The head as stored in a checkpoint."""
        return {
            "stripe": self.stripe,
            "sequence": self.sequence,
            "hash": self.hash,
            "count": self.count,
            "key_id": self.key_id,
        }


def heads_checkpoint(
    ledger: str, heads: tuple[StripeHead, ...], checkpointed_at: datetime
) -> Checkpoint:
    """A checkpoint of these stripe heads (at least one): its position is the newest head."""
    newest = max(heads, key=lambda head: head.sequence)
    return Checkpoint(
        ledger=ledger,
        sequence=newest.sequence,
        hash=newest.hash,
        count=sum(head.count for head in heads),
        key_id=newest.key_id,
        checkpointed_at=checkpointed_at,
        stripes=tuple(sorted(heads, key=lambda head: head.stripe)),
    )


@dataclass(frozen=True)
class Checkpoint:
    """A ledger's heads as they were at ``checkpointed_at``: its position (the newest head's
    sequence, hash and key id), the total count, and every stripe's head."""

    ledger: str
    sequence: int
    hash: str
    count: int
    key_id: str | None
    checkpointed_at: datetime
    previous: str | None = None
    previous_digest: str | None = None
    stripes: tuple[StripeHead, ...] = ()

    def heads(self) -> dict[int, StripeHead]:
        """Each stripe's head, by stripe."""
        return {head.stripe: head for head in self.stripes}

    @property
    def name(self) -> str:
        """Its name in the store."""
        return name_of(self.ledger, self.sequence)

    def _fields(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "ledger": self.ledger,
            "sequence": self.sequence,
            "hash": self.hash,
            "count": self.count,
            "key_id": self.key_id,
            "checkpointed_at": self.checkpointed_at.isoformat(),
            "previous": self.previous,
            "previous_digest": self.previous_digest,
            "stripes": [head.as_data() for head in self.stripes],
        }

    def document(self, keys: chain.Keyring) -> bytes:
        """The stored form, sealed with an HMAC under the current ledger key."""
        fields = self._fields()
        mac = keys.mac(_canonical(fields))
        return _canonical({**fields, "mac_key_id": keys.current, "mac": mac})

    @classmethod
    def parse(cls, document: bytes, keys: chain.Keyring) -> Checkpoint:
        """A stored checkpoint, checked (its format and its MAC)."""
        try:
            data = json.loads(document)
            mac, mac_key_id = data.pop("mac"), data.pop("mac_key_id")
            if data.get("format") not in FORMATS:
                raise CheckpointInvalid("not a checkpoint of a known format")
            expected = keys.mac(_canonical(data), mac_key_id)
            if not hmac.compare_digest(expected, str(mac)):
                raise CheckpointInvalid("the checkpoint's MAC does not verify")
            stripes: tuple[StripeHead, ...]
            if data["format"] == 1:
                stripes = (
                    StripeHead(
                        0,
                        int(data["sequence"]),
                        str(data["hash"]),
                        int(data["count"]),
                        data["key_id"],
                    ),
                )
            else:
                stripes = tuple(
                    StripeHead(
                        int(head["stripe"]),
                        int(head["sequence"]),
                        str(head["hash"]),
                        int(head["count"]),
                        head["key_id"],
                    )
                    for head in data["stripes"]
                )
            return cls(
                ledger=str(data["ledger"]),
                sequence=int(data["sequence"]),
                hash=str(data["hash"]),
                count=int(data["count"]),
                key_id=data["key_id"],
                checkpointed_at=datetime.fromisoformat(data["checkpointed_at"]),
                previous=data["previous"],
                previous_digest=data["previous_digest"],
                stripes=stripes,
            )
        except chain.UnknownKey:
            raise CheckpointInvalid("the checkpoint is sealed under an unknown key") from None
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            if isinstance(error, CheckpointInvalid):
                raise
            raise CheckpointInvalid("the document is not a checkpoint") from None


def _canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def name_of(ledger: str, sequence: int) -> str:
    """The store name of ``ledger``'s checkpoint at ``sequence``."""
    return f"{ledger}/{sequence:020d}.json"


def digest(document: bytes) -> str:
    """SHA-256 of a stored document (hex)."""
    return hashlib.sha256(document).hexdigest()


class CheckpointStore:
    """The checkpoints of the ledgers in a write-once store."""

    def __init__(self, store: WriteOnceStore, keys: chain.Keyring) -> None:
        self.store = store
        self.keys = keys

    @property
    def location(self) -> str:
        """Where the store is."""
        return self.store.location

    def names(self, ledger: str) -> list[str]:
        """Names of ``ledger``'s checkpoints, oldest first."""
        return [n for n in self.store.names(f"{ledger}/") if n.endswith(".json")]

    def read(self, name: str) -> tuple[Checkpoint, str] | None:
        """The checkpoint of that name and its document's digest; None when absent. Raises
        :class:`CheckpointInvalid` for a document that is not a valid checkpoint."""
        document = self.store.get(name)
        if document is None:
            return None
        checkpoint = Checkpoint.parse(document, self.keys)
        if checkpoint.name != name:
            raise CheckpointInvalid("the checkpoint is stored under another name")
        return checkpoint, digest(document)

    def write(self, checkpoint: Checkpoint) -> tuple[Checkpoint, str]:
        """Store ``checkpoint`` (never replacing one); returns what the store holds under its
        name and the document's digest (the one given, or one found there already)."""
        document = checkpoint.document(self.keys)
        if self.store.put(checkpoint.name, document):
            return checkpoint, digest(document)
        found = self.read(checkpoint.name)
        if found is None:  # pragma: no cover - a write-once store does not lose a name
            raise OSError(f"checkpoint {checkpoint.name} is neither new nor stored")
        return found

    def following(
        self, latest: tuple[Checkpoint, str] | None, checkpoint: Checkpoint
    ) -> Checkpoint:
        """``checkpoint`` linked to ``latest`` (the checkpoint before it, with its digest)."""
        if latest is None:
            return replace(checkpoint, previous=None, previous_digest=None)
        return replace(checkpoint, previous=latest[0].name, previous_digest=latest[1])


def store_from(settings: Settings, keys: chain.Keyring) -> CheckpointStore:
    """The installation's checkpoints: the S3 bucket with Object Lock ``CDLM_LEDGER_BUCKET``
    names (prefix ``checkpoints/``), else the directory ``CDLM_CHECKPOINT_DIR``."""
    store: WriteOnceStore
    if settings.ledger_bucket:
        store = S3ObjectLockStore(
            settings.ledger_bucket, S3_PREFIX, retention_days=settings.ledger_retention_days
        )
    else:
        store = DirectoryStore(settings.checkpoint_dir)
    return CheckpointStore(store, keys)

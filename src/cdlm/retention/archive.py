"""The archive: gzip-compressed JSONL objects in a local directory or an S3 bucket.

Each line holds one record sealed under its customer's data key (purpose
``archive:<category>``), so an erasure, which destroys that key, makes archived copies
unreadable too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import os
import uuid
from pathlib import Path
from typing import Any, Protocol

from cdlm.config import ConfigError, Settings
from cdlm.vault import purposes as sealed_for
from cdlm.vault.service import Vault


class ArchiveStore(Protocol):
    """Where archive objects go."""

    @property
    def location(self) -> str: ...

    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...


def _private_folders(folder: Path) -> None:
    """Create ``folder`` and each missing folder above it with mode 0700.

    ``Path.mkdir(parents=True, mode=...)`` gives the mode to the last folder only, the others
    get the umask's default (often 0755).
    """
    missing: list[Path] = []
    current = folder
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    for each in reversed(missing):
        try:
            each.mkdir(mode=0o700)
        except FileExistsError:  # made meanwhile by a concurrent writer: fine if a folder
            if not each.is_dir():
                raise


#: A temporary file of our own: created now (never an existing file), never through a link.
_PARTIAL_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class LocalArchiveStore:
    """Archive objects as files under a directory (owner-only permissions: each folder it
    creates is 0700, each object 0600)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def location(self) -> str:
        return str(self.directory)

    def _path(self, key: str) -> Path:
        path = (self.directory / key).resolve()
        if self.directory.resolve() not in path.parents:
            raise ValueError("archive keys stay inside the archive directory")
        return path

    def _put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        _private_folders(path.parent)
        partial = path.with_name(path.name + ".partial")
        # A leftover of an interrupted write, or anything planted there (a symlink is removed,
        # not followed); should one appear again before the open, O_EXCL refuses it.
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        descriptor = os.open(partial, _PARTIAL_FLAGS, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)  # whole objects only, even after a crash

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)


class S3ArchiveStore:
    """Archive objects in an S3 bucket (needs the aws extra)."""

    def __init__(self, bucket: str, *, client: Any = None) -> None:
        if client is None:
            try:
                import boto3
            except ImportError:  # pragma: no cover - depends on the installed extras
                raise ConfigError(
                    "CDLM_ARCHIVE_BUCKET", "needs the aws extra: pip install 'cdlm[aws]'"
                ) from None
            client = boto3.client("s3")
        self.bucket = bucket
        self._client = client

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}"

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(
            self._client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType="application/gzip",
        )

    async def get(self, key: str) -> bytes:
        answer = await asyncio.to_thread(self._client.get_object, Bucket=self.bucket, Key=key)
        body: bytes = answer["Body"].read()
        return body

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=key)


def archive_store_from(settings: Settings) -> ArchiveStore:
    """The S3 bucket ``CDLM_ARCHIVE_BUCKET`` names, or the local ``CDLM_ARCHIVE_DIR``."""
    if settings.archive_bucket:
        return S3ArchiveStore(settings.archive_bucket)
    return LocalArchiveStore(settings.archive_dir)


async def pack(
    vault: Vault, category: str, records: list[tuple[uuid.UUID, dict[str, Any]]]
) -> tuple[bytes, int]:
    """Records as a gzip-compressed JSONL object, each sealed under its customer's key, and
    how many were written (records whose key is already destroyed are unreadable: left out)."""
    keys = await vault.customer_keys({customer_id for customer_id, _ in records})
    lines = []
    for customer_id, record in records:
        key = keys.get(customer_id)
        if key is None:
            continue
        sealed = vault.seal(key, customer_id, sealed_for.archived(category), record)
        lines.append(
            json.dumps(
                {
                    "customer_id": str(customer_id),
                    "category": category,
                    "sealed": base64.b64encode(sealed).decode(),
                },
                separators=(",", ":"),
            )
        )
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0), len(lines)


async def unpack(vault: Vault, data: bytes) -> list[dict[str, Any] | None]:
    """The records of an archive object; None for those whose key has been destroyed."""
    lines = [json.loads(line) for line in gzip.decompress(data).decode().splitlines() if line]
    keys = await vault.customer_keys({uuid.UUID(line["customer_id"]) for line in lines})
    records: list[dict[str, Any] | None] = []
    for line in lines:
        customer_id = uuid.UUID(line["customer_id"])
        key = keys.get(customer_id)
        records.append(
            vault.open(
                key,
                customer_id,
                sealed_for.archived(line["category"]),
                base64.b64decode(line["sealed"]),
            )
            if key is not None
            else None
        )
    return records

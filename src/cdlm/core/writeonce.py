"""Write-once stores outside the database: a local directory, or an S3 bucket with Object Lock.

What is put under a name is never replaced: a second ``put`` of that name returns False and
leaves the first content. The erasure register and the ledgers' checkpoints are kept this way.

- :class:`DirectoryStore`: one file per name, written atomically (a temporary file in the same
  directory, fsynced, then hard-linked to its name, which fails if the name exists).
- :class:`S3ObjectLockStore`: one object per name under a prefix, written with
  ``If-None-Match: *`` (refused if the key exists) into a bucket that must have Object Lock on,
  each object locked in compliance mode for ``retention_days`` (or by the bucket's default
  retention). Reads take the first version of a key, so a later version or a delete marker put
  over it (by someone allowed to write the bucket) hides nothing. boto3 is imported only when
  such a store is made.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol


class StoreError(OSError):
    """The store could not be read or written (S3 answered with an error, or is unusable)."""


class WriteOnceStore(Protocol):
    """Content kept under names, never rewritten."""

    @property
    def location(self) -> str:
        """Where the store is (a path or ``s3://bucket/prefix``), safe to log."""
        ...

    def put(self, name: str, content: bytes) -> bool:
        """Keep ``content`` under ``name``; False (nothing written) when the name is taken."""
        ...

    def get(self, name: str) -> bytes | None:
        """The content first put under ``name``; None when there is none."""
        ...

    def names(self, prefix: str = "") -> list[str]:
        """Every name starting with ``prefix``, sorted."""
        ...


def _check_name(name: str) -> None:
    parts = name.split("/")
    if not name or any(part in ("", ".", "..") or part.startswith(".") for part in parts):
        raise ValueError(f"not a store name: {name!r}")


class DirectoryStore:
    """A write-once store in a local directory (names may hold ``/``: subdirectories)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def location(self) -> str:
        """The directory."""
        return str(self.directory)

    def put(self, name: str, content: bytes) -> bool:
        """Keep ``content`` under ``name`` (atomically; never replacing a file)."""
        _check_name(name)
        final = self.directory / name
        folder = final.parent
        folder.mkdir(parents=True, exist_ok=True)
        if final.exists():
            return False
        descriptor, temporary = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, final)  # never replaces an existing file
            except FileExistsError:
                return False
        finally:
            os.unlink(temporary)
        _sync_directory(folder)
        return True

    def get(self, name: str) -> bytes | None:
        """The file's content, or None."""
        _check_name(name)
        try:
            return (self.directory / name).read_bytes()
        except FileNotFoundError:
            return None

    def names(self, prefix: str = "") -> list[str]:
        """Names of the files (hidden temporary files left out), sorted."""
        if not self.directory.is_dir():
            return []
        found = (
            path.relative_to(self.directory).as_posix()
            for path in self.directory.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        )
        return sorted(name for name in found if name.startswith(prefix))


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class S3ObjectLockStore:
    """A write-once store in an S3 bucket with Object Lock, under ``prefix``."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        *,
        retention_days: int | None = None,
        client: Any = None,
    ) -> None:
        if client is None:
            import boto3  # the aws extra; only where such a store is used

            client = boto3.client("s3")
        self.bucket = bucket
        self.prefix = prefix
        self.retention_days = retention_days
        self._client = client
        self._checked = False

    @property
    def location(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}"

    def _call(self, operation: str, **arguments: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._client, operation)(**arguments)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            raise StoreError(f"S3 {operation} on {self.bucket} failed ({code})") from None
        except BotoCoreError as error:
            raise StoreError(f"S3 {operation} failed ({type(error).__name__})") from None

    def check_object_lock(self) -> None:
        """Refuse a bucket where objects would not be locked: Object Lock off, or neither a
        retention per object nor a default retention of the bucket."""
        answer = self._call("get_object_lock_configuration", Bucket=self.bucket)
        configuration = answer.get("ObjectLockConfiguration", {})
        if configuration.get("ObjectLockEnabled") != "Enabled":
            raise StoreError(f"the bucket {self.bucket} does not have Object Lock enabled")
        if self.retention_days is None and "DefaultRetention" not in configuration.get("Rule", {}):
            raise StoreError(
                f"the bucket {self.bucket} has no default retention and none is set per object"
            )
        self._checked = True

    def put(self, name: str, content: bytes) -> bool:
        """Keep ``content`` under ``name``, locked; False when the key exists."""
        _check_name(name)
        if not self._checked:
            self.check_object_lock()
        if self._first_version(name) is not None:
            return False
        arguments: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.prefix + name,
            "Body": content,
            "ContentType": "application/json",
            "IfNoneMatch": "*",
            "ChecksumAlgorithm": "SHA256",
        }
        if self.retention_days is not None:
            arguments["ObjectLockMode"] = "COMPLIANCE"
            arguments["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(
                days=self.retention_days
            )
        from botocore.exceptions import ClientError

        try:
            self._client.put_object(**arguments)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False  # written meanwhile by someone else
            raise StoreError(f"S3 put_object on {self.bucket} failed ({code})") from None
        return True

    def _first_version(self, name: str) -> str | None:
        key = self.prefix + name
        answer = self._call("list_object_versions", Bucket=self.bucket, Prefix=key)
        versions = [v for v in answer.get("Versions", []) if v["Key"] == key]
        if not versions:
            return None
        # Listed newest first; of versions written within the same second, the last listed.
        first = min(reversed(versions), key=lambda v: v["LastModified"])
        return str(first["VersionId"])

    def get(self, name: str) -> bytes | None:
        """The first version put under ``name`` (whatever was put or deleted over it)."""
        _check_name(name)
        version = self._first_version(name)
        if version is None:
            return None
        answer = self._call(
            "get_object", Bucket=self.bucket, Key=self.prefix + name, VersionId=version
        )
        body: bytes = answer["Body"].read()
        return body

    def names(self, prefix: str = "") -> list[str]:
        """Every key under the store's prefix starting with ``prefix`` (deleted ones too:
        their locked versions remain), sorted."""
        found: set[str] = set()
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        while True:
            answer = self._call("list_object_versions", **arguments)
            found.update(v["Key"][len(self.prefix) :] for v in answer.get("Versions", []))
            if not answer.get("IsTruncated"):
                return sorted(found)
            arguments["KeyMarker"] = answer["NextKeyMarker"]
            arguments["VersionIdMarker"] = answer.get("NextVersionIdMarker", "")

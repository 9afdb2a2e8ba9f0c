"""Bulk import of customers from S3 (``CDLM_IMPORT_BUCKET``), run on Lambda in slices.

An object landing under ``incoming/`` (``.csv``, ``.jsonl`` or ``.ndjson``; its provenance in
its metadata: ``source-system``, ``source-kind``, ``lawful-basis``, ``purpose``) is imported by
the customer importer (:func:`cdlm.customers.importer.import_rows`: batches, one transaction
each with its checkpoint, resumable by the content's digest, one run at a time per content).
The object is streamed, never held whole in memory nor written to disk. :func:`run` stops
between batches when its time is up and says ``continue``: the Lambda handler then sends a
continuation message (SQS, ``CDLM_IMPORT_QUEUE_URL``) that invokes it again; the next slice
streams the object again, skips the committed lines and goes on.

Written back under ``results/<name>/``, where ``<name>`` is the object's key after
``incoming/``: ``progress.json`` (status, counts, last committed line, finished) after every
slice and about every 30 seconds, and the refused lines in ``rejects/<first line>.jsonl``, one
object per batch with refusals: line number, field and reason code, never the values. A file
that cannot be imported (format, size, missing provenance, changed while imported) gets a
``progress.json`` saying why (``status: refused``); the object stays where it is.

Safe on S3 redelivery: the run is found again by the content's digest (a finished one is left
as it is; an unfinished one resumes from its checkpoint), and a second slice of the same
content while one is running is told ``busy`` at once.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any, Final

from cdlm.core import clock
from cdlm.core.principal import Principal
from cdlm.core.vocabulary import LawfulBasis, SourceKind
from cdlm.customers.importer import (
    KNOWN_COLUMNS,
    SUFFIXES,
    ImportOptions,
    ImportRefused,
    ImportSummary,
    RowsImport,
    UnknownColumns,
    import_rows,
    read_stream,
)
from cdlm.customers.models import ImportRun
from cdlm.vault.service import Vault

log = logging.getLogger(__name__)

INCOMING: Final = "incoming/"
RESULTS: Final = "results/"
#: Seconds between progress writes within a slice.
PROGRESS_EVERY: Final = 30.0
#: Metadata keys (``x-amz-meta-*``) carrying the provenance of every record of the file.
METADATA: Final = ("source-system", "source-kind", "lawful-basis", "purpose")


@dataclass(frozen=True)
class S3Object:
    """One version of an object: ``etag`` pins its content across slices."""

    bucket: str
    key: str
    etag: str

    @property
    def if_match(self) -> str:
        """The ETag as an ``If-Match`` header wants it (quoted)."""
        return f'"{self.etag}"'

    @property
    def name(self) -> str:
        """The key after ``incoming/``."""
        return self.key.removeprefix(INCOMING)

    @property
    def results(self) -> str:
        """Where its results go."""
        return f"{RESULTS}{self.name}/"


@dataclass(frozen=True)
class BulkImport:
    """One slice of the import of ``object``: ``digest`` when an earlier slice computed it,
    ``seconds`` of work at most (it stops after the batch that passes them)."""

    object: S3Object
    seconds: float
    max_bytes: int
    batch_size: int = 250
    trust: dict[SourceKind, int] | None = None
    digest: str | None = None


@dataclass
class Progress:
    """``results/<name>/progress.json``: what happened to the file so far."""

    object: str
    etag: str
    status: str  #: running, finished, refused
    finished: bool = False
    last_line: int = 0
    lines_read: int = 0
    created: int = 0
    matched: int = 0
    rejected: int = 0
    rejects: str | None = None
    reason: str | None = None
    updated_at: str = field(default_factory=lambda: clock.now().isoformat())


@dataclass(frozen=True)
class SliceResult:
    """``status``: ``finished``; ``continue`` (send the continuation); ``refused`` (see the
    progress file); ``busy`` (another slice holds the file: try later); ``superseded`` (the
    key holds a newer object now, imported by its own event)."""

    status: str
    digest: str | None = None
    progress: Progress | None = None


class _Body(io.RawIOBase):
    """A streaming S3 body as a readable raw stream (read in chunks, as it arrives)."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk: bytes = self._body.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        self._body.close()
        super().close()


def _put_json(s3: Any, obj: S3Object, name: str, value: dict[str, Any]) -> None:
    s3.put_object(
        Bucket=obj.bucket,
        Key=obj.results + name,
        Body=json.dumps(value, indent=1).encode(),
        ContentType="application/json",
    )


@dataclass(frozen=True)
class S3Rejects:
    """Refused lines as objects ``results/<name>/rejects/<first line>.jsonl``, one per batch
    with refusals (written before the batch commits; a batch that did not commit is
    forgotten by :meth:`keep_up_to` when the run resumes)."""

    s3: Any
    obj: S3Object

    @property
    def prefix(self) -> str:
        """Where the parts are."""
        return self.obj.results + "rejects/"

    def _parts(self) -> Iterator[tuple[int, str]]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.obj.bucket, Prefix=self.prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                stem = PurePosixPath(item["Key"]).stem
                if stem.isdigit():
                    yield int(stem), item["Key"]

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            self.s3.delete_objects(
                Bucket=self.obj.bucket,
                Delete={"Objects": [{"Key": key} for key in keys[start : start + 1000]]},
            )

    def start(self) -> None:
        """Remove the parts of an earlier run of this key."""
        self._delete([key for _, key in self._parts()])

    def keep_up_to(self, last_line: int) -> None:
        """Remove parts of batches after ``last_line`` (they did not commit)."""
        self._delete([key for first, key in self._parts() if first > last_line])

    def write(self, first_line: int, lines: list[str]) -> None:
        """One part for the batch starting at ``first_line``."""
        self.s3.put_object(
            Bucket=self.obj.bucket,
            Key=f"{self.prefix}{first_line:012d}.jsonl",
            Body="".join(lines).encode(),
            ContentType="application/x-ndjson",
        )


def _refuse(s3: Any, obj: S3Object, reason: str, digest: str | None = None) -> SliceResult:
    progress = Progress(object=obj.key, etag=obj.etag, status="refused", reason=reason)
    _put_json(s3, obj, "progress.json", asdict(progress))
    log.warning("bulk import refused", extra={"object": obj.key, "reason": reason})
    return SliceResult("refused", digest, progress)


def _options(metadata: dict[str, str], batch_size: int, trust: Any) -> ImportOptions | str:
    missing = [name for name in METADATA if not metadata.get(name, "").strip()]
    if missing:
        return f"the object's metadata lacks {', '.join(missing)} (x-amz-meta-*)"
    try:
        kind = SourceKind(metadata["source-kind"].strip())
    except ValueError:
        return "source-kind is not a known source kind"
    try:
        basis = LawfulBasis(metadata["lawful-basis"].strip())
    except ValueError:
        return "lawful-basis is not a known lawful basis"
    system = metadata["source-system"].strip()
    if len(system) > 64:
        return "source-system has more than 64 characters"
    return ImportOptions(
        source_system=system,
        source_kind=kind,
        lawful_basis=basis,
        purpose=metadata["purpose"].strip()[:200],
        batch_size=batch_size,
        trust=trust,
    )


def _is_missing(error: Exception, *codes: str) -> bool:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code")) in codes


async def run(
    actor: Principal,
    vault: Vault,
    job: BulkImport,
    *,
    s3: Any,
    monotonic: Callable[[], float] = time.monotonic,
) -> SliceResult:
    """One slice of the import of ``job.object`` (``s3``: a boto3 S3 client)."""
    obj = job.object
    started = monotonic()
    suffix = PurePosixPath(obj.key).suffix.lower()
    if not obj.key.startswith(INCOMING) or not obj.name:
        return _refuse(s3, obj, "only objects under incoming/ are imported")
    if suffix not in SUFFIXES:
        return _refuse(s3, obj, "files must end in .csv, .jsonl or .ndjson")
    try:
        head = s3.head_object(Bucket=obj.bucket, Key=obj.key, IfMatch=obj.if_match)
    except Exception as error:
        if _is_missing(error, "412", "PreconditionFailed"):
            return SliceResult("superseded")  # a newer upload of the key has its own event
        if _is_missing(error, "404", "NoSuchKey", "NotFound"):
            return _refuse(s3, obj, "the object is gone")
        raise
    if head["ContentLength"] > job.max_bytes:
        return _refuse(
            s3, obj, f"the object has {head['ContentLength']} bytes; at most {job.max_bytes}"
        )
    options = _options(
        {k.lower(): v for k, v in head.get("Metadata", {}).items()}, job.batch_size, job.trust
    )
    if isinstance(options, str):
        return _refuse(s3, obj, options)

    def body() -> io.BufferedReader:
        got = s3.get_object(Bucket=obj.bucket, Key=obj.key, IfMatch=obj.if_match)
        return io.BufferedReader(_Body(got["Body"]), buffer_size=1 << 16)

    digest = job.digest
    if digest is None:
        hashed = hashlib.sha256()
        with body() as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                hashed.update(chunk)
        digest = hashed.hexdigest()

    rejects = S3Rejects(s3, obj)
    last_write = [monotonic()]

    def should_stop(run: ImportRun) -> bool:
        now = monotonic()
        if now - last_write[0] >= PROGRESS_EVERY:
            last_write[0] = now
            _put_json(s3, obj, "progress.json", asdict(_progress(obj, run, rejects)))
        return now - started >= job.seconds

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        with body() as stream:
            yield from read_stream(stream, suffix)

    try:
        summary = await import_rows(
            actor,
            vault,
            RowsImport(
                digest=digest,
                name=obj.name,
                rows=rows,
                options=options,
                rejects=rejects,
                should_stop=should_stop,
            ),
        )
    except UnknownColumns as refused:
        # Counted, not named: a file without a header row has a record for one.
        known = ", ".join(sorted(KNOWN_COLUMNS))
        reason = f"the header has {refused.count} unknown column(s); known columns: {known}"
        return _refuse(s3, obj, reason, digest)
    except ImportRefused as refused:
        done = await ImportRun.get_or_none(file_digest=digest)
        if "being imported" in str(refused):
            return SliceResult("busy", digest)
        if done is not None and done.finished_at is not None:
            if done.file_name == obj.name[:255]:  # a redelivery: the results stand
                return SliceResult("finished", digest, _progress(obj, done, rejects))
            return _refuse(s3, obj, f"the same content was imported already as {done.file_name}")
        return _refuse(s3, obj, str(refused), digest)
    run_row = await ImportRun.get(file_digest=digest)
    progress = _progress(obj, run_row, rejects, summary)
    _put_json(s3, obj, "progress.json", asdict(progress))
    return SliceResult("finished" if summary.finished else "continue", digest, progress)


def _progress(
    obj: S3Object, run: ImportRun, rejects: S3Rejects, summary: ImportSummary | None = None
) -> Progress:
    finished = run.finished_at is not None
    return Progress(
        object=obj.key,
        etag=obj.etag,
        status="finished" if finished else "running",
        finished=finished,
        last_line=run.last_line,
        lines_read=summary.total_lines if summary else run.last_line,
        created=run.created,
        matched=run.matched,
        rejected=run.rejected,
        rejects=rejects.prefix if run.rejected else None,
    )


@dataclass(frozen=True)
class Delivery:
    """One object to work on, from an S3 event or a continuation message (``message_id``: the
    SQS message, reported as failed for a retry when the slice could not run now)."""

    object: S3Object
    digest: str | None = None
    message_id: str | None = None


def _from_s3_records(records: list[Any], message_id: str | None) -> list[Delivery]:
    from urllib.parse import unquote_plus

    found = []
    for record in records:
        if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
            continue
        s3 = record["s3"]
        found.append(
            Delivery(
                S3Object(
                    bucket=s3["bucket"]["name"],
                    key=unquote_plus(s3["object"]["key"]),
                    etag=str(s3["object"]["eTag"]).strip('"'),
                ),
                message_id=message_id,
            )
        )
    return found


def deliveries(event: dict[str, Any]) -> list[Delivery]:
    """The objects an invocation's ``event`` names: S3 notifications (direct, or through
    SQS) and continuation messages."""
    found: list[Delivery] = []
    for record in event.get("Records", []):
        source = record.get("eventSource")
        if source == "aws:s3":
            found.extend(_from_s3_records([record], None))
        elif source == "aws:sqs":
            body = json.loads(record["body"])
            if "continue" in body:
                more = body["continue"]
                found.append(
                    Delivery(
                        S3Object(more["bucket"], more["key"], more["etag"]),
                        digest=more.get("digest"),
                        message_id=record["messageId"],
                    )
                )
            else:  # an S3 notification sent to the queue (a test event names no records)
                found.extend(_from_s3_records(body.get("Records", []), record["messageId"]))
    return found


def continuation(obj: S3Object, digest: str | None) -> str:
    """The body of the message that continues the import of ``obj``."""
    return json.dumps(
        {"continue": {"bucket": obj.bucket, "key": obj.key, "etag": obj.etag, "digest": digest}}
    )

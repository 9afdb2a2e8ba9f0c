"""Bulk import from S3: how many records one Lambda slice imports, and what slicing costs.

A CSV of ``--rows`` distinct people (full profiles) is put in moto's S3 (in process; the bytes
come from memory, so this measures cdlm and PostgreSQL, not the network), then imported by
:func:`cdlm.jobs.bulk_import.run` as the Lambda handler runs it: once in one slice, and once
more (a fresh database) in slices of ``--slice-seconds`` each, as an import continued through
the queue. Prints records/s, the slices taken, the peak RSS of the process (the object is
streamed: it should not grow with the file) and the records one 15-minute invocation would
import at that rate (minus the handler's 60 s margin).

``python -m bench.bulk_import [--rows N] [--slice-seconds S] [--batch N]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time
from typing import Any

from bench.support import benchmark_workspace, report

BUCKET = "cdlm-bench-import"
KEY = "incoming/bench/people.csv"
HEADER = "email,given_name,family_name,phone,country,birth_date,external_ids\n"
PROVENANCE = {
    "source-system": "bench",
    "source-kind": "import",
    "lawful-basis": "contract",
    "purpose": "essential.service",
}


def people(rows: int) -> bytes:
    """``rows`` distinct people (no two share an identifier)."""
    lines = [HEADER]
    for n in range(rows):
        lines.append(
            f"person{n}@example.com,Given{n},Family{n},+44 7911 {100000 + n:06d},GB,"
            f"19{50 + n % 50}-0{1 + n % 9}-1{n % 9},bench:{n}\n"
        )
    return "".join(lines).encode()


async def _import(rows: int, body: bytes, slice_seconds: float | None, batch: int) -> None:
    import boto3
    from moto import mock_aws

    from cdlm.core.principal import SYSTEM
    from cdlm.jobs import bulk_import as job

    async with benchmark_workspace() as (_, _settings, vault):
        with mock_aws():
            s3 = boto3.client("s3", region_name="us-east-1")
            s3.create_bucket(Bucket=BUCKET)
            etag = s3.put_object(Bucket=BUCKET, Key=KEY, Body=body, Metadata=PROVENANCE)["ETag"]
            obj = job.S3Object(BUCKET, KEY, etag.strip('"'))
            digest: str | None = None
            slices = 0
            started = time.perf_counter()
            while True:
                slices += 1
                outcome = await job.run(
                    SYSTEM,
                    vault,
                    job.BulkImport(
                        obj,
                        seconds=slice_seconds if slice_seconds is not None else 1e9,
                        max_bytes=len(body) + 1,
                        batch_size=batch,
                        digest=digest,
                    ),
                    s3=s3,
                )
                digest = outcome.digest
                if outcome.status != "continue":
                    break
            seconds = time.perf_counter() - started
            assert outcome.status == "finished", outcome
            progress: Any = outcome.progress
            per_second = rows / seconds
            report(
                "bulk import: " + ("one slice" if slice_seconds is None else "sliced"),
                {
                    "rows": rows,
                    "mib": round(len(body) / 2**20, 1),
                    "batch": batch,
                    "slice_s": slice_seconds or 0,
                    "slices": slices,
                    "created": progress.created,
                    "rejected": progress.rejected,
                    "seconds": round(seconds, 1),
                    "rows_per_s": round(per_second),
                    "rows_per_15min_invocation": round(per_second * (900 - 60)),
                    "peak_rss_mib": round(
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                    ),
                },
            )


async def run(rows: int = 5000, slice_seconds: float = 5.0, batch: int = 250) -> None:
    """Both imports of the same file, each into a fresh database."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    body = people(rows)
    await _import(rows, body, None, batch)
    await _import(rows, body, slice_seconds, batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--slice-seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=250)
    options = parser.parse_args()
    asyncio.run(run(options.rows, options.slice_seconds, options.batch))


if __name__ == "__main__":
    main()

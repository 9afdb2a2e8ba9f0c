"""Speed and memory of match runs at scale, through the real command.

Labelled people (:mod:`bench.people`) are ingested through the acquisition service until about
``--profiles`` profiles exist; then ``cdlm match run --full --train`` runs as a separate process
against that database (wall time and the child's peak RSS are measured), 1,000 more records
arrive (new people and noisy records of known ones), and ``cdlm match run`` runs incrementally.
Targets: a full run over 100,000 profiles in at most 5 minutes and 2 GiB RSS on 2 cores; an
incremental run for 1,000 new profiles in at most 30 s.

``python -m bench.match_performance [--profiles N]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from tortoise.transactions import in_transaction

from bench.people import LabelledRecord, people
from bench.support import benchmark_workspace, report
from cdlm.config import DatabaseTarget, Settings
from cdlm.core import clock
from cdlm.core.vocabulary import LawfulBasis, SourceKind
from cdlm.customers.ingest import CustomerIngest, Source, ingest_batch
from cdlm.customers.models import Customer
from cdlm.matching.models import MatchRun
from cdlm.vault.service import Vault

BATCH = 500


async def _ingest(vault: Vault, records: list[LabelledRecord]) -> None:
    origin = Source("crm", SourceKind.CRM, clock.now(), LawfulBasis.CONTRACT, "essential.service")
    for start in range(0, len(records), BATCH):
        async with in_transaction():
            await ingest_batch(
                vault,
                [
                    CustomerIngest(origin, dict(r.profile), list(r.external_ids))
                    for r in records[start : start + BATCH]
                ],
            )


def _url(target: DatabaseTarget) -> str:
    where = f"@:{target.port}/{target.database}?host={target.host}"
    if not target.host.startswith("/"):
        where = f"@{target.host}:{target.port}/{target.database}"
    return f"postgresql://{target.user}:{target.password}{where}"


def _command(settings: Settings, workdir: Path, *args: str) -> tuple[float, float, str]:
    """Run ``cdlm`` against the bench database: (seconds, peak RSS MiB of the child, output)."""
    assert settings.database is not None
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CDLM_")},
        "DATABASE_URL": _url(settings.database),
        "CDLM_ENV": "test",
        "CDLM_DATA_DIR": str(workdir),
        "CDLM_MASTER_KEY_FILE": str(settings.master_key_file),
        "CDLM_TOKEN_SECRET": "b" * 40,
        "CDLM_LOG_LEVEL": "WARNING",
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cdlm", "match", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode != 0:
        raise SystemExit(f"cdlm match {' '.join(args)} failed: {done.stderr[-2000:]}")
    return elapsed, max(peak, before) / 1024, done.stdout.strip()


async def run(profiles: int = 100_000) -> None:
    # About 2 records a person survive deterministic matching as 1.12 profiles.
    population = people(int(profiles / 1.12), seed=3)
    async with benchmark_workspace() as (workdir, settings, vault):
        started = time.perf_counter()
        await _ingest(vault, population)
        count = await Customer.filter(merged_into_id__isnull=True).count()
        report(
            "match performance: ingest",
            {
                "records": len(population),
                "profiles": count,
                "seconds": round(time.perf_counter() - started, 1),
            },
        )
        seconds, rss, _ = _command(settings, workdir, "run", "--full", "--train")
        full = await MatchRun.all().order_by("-started_at").first()
        assert full is not None
        report(
            "match performance: full run (cdlm match run --full --train)",
            {
                "profiles": full.profiles,
                "compared_pairs": full.compared_pairs,
                "candidates": full.candidates,
                "auto_merged": full.auto_merged,
                "seconds": round(seconds, 1),
                "peak_rss_mib": round(rss),
            },
        )
        # The next incremental run scores again the survivors of the full run's merges (they
        # changed after it began); measure the arrivals after that one.
        seconds, _, _ = _command(settings, workdir, "run")
        settling = await MatchRun.all().order_by("-started_at").first()
        assert settling is not None
        report(
            "match performance: incremental run after the full run",
            {
                "focus": settling.focus,
                "auto_merged": settling.auto_merged,
                "seconds": round(seconds, 1),
            },
        )
        known = population[:300]
        fresh = people(900, seed=99)[:700]
        arrivals = [
            LabelledRecord(f"late-{r.record_id}", r.person, {**r.profile, "city": "Leeds"})
            for r in known
        ] + fresh
        await _ingest(vault, arrivals)
        seconds, _, _ = _command(settings, workdir, "run")
        incremental = await MatchRun.all().order_by("-started_at").first()
        assert incremental is not None
        report(
            "match performance: incremental run (1,000 records)",
            {
                "profiles": incremental.profiles,
                "focus": incremental.focus,
                "compared_pairs": incremental.compared_pairs,
                "candidates": incremental.candidates,
                "auto_merged": incremental.auto_merged,
                "seconds": round(seconds, 1),
                "run_seconds": round(incremental.duration_seconds, 1),
            },
        )
        print(json.dumps({"full_status": full.status.value}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", type=int, default=100_000)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    asyncio.run(run(args.profiles))


if __name__ == "__main__":
    main()

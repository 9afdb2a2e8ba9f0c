"""Run the benchmarks: ``python -m bench`` (or ``make bench``) runs them all, in this order;
``python -m bench read_path customer_360`` runs only those named."""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
from collections.abc import Callable
from types import ModuleType

#: name -> how to run it (each module is imported only when it runs).
BENCHMARKS: dict[str, Callable[[], None]] = {
    "request_latency": lambda: _run_async("request_latency"),
    "api_key_auth": lambda: _run_async("api_key_auth"),
    "customer_360": lambda: _run_async("customer_360"),
    "concurrent_events": lambda: _run_async("concurrent_events"),
    "ingest_coercion": lambda: _run_async("ingest_coercion"),
    "dsr_execution": lambda: _run_async("dsr_execution"),
    "retention_sweep": lambda: _run_async("retention_sweep"),
    "job_locks": lambda: _run_async("job_locks"),
    "lambda_invocations": lambda: _run_async("lambda_invocations"),
    "request_bodies": lambda: _run_async("request_bodies"),
    "graphql_http_audit": lambda: _run_async("graphql_http_audit"),
    "ledgers": lambda: _run_async("ledgers"),
    "match_engine": lambda: _module("match_engine").run(
        15_000, review=0.80, auto=0.95, seed=7, max_pairs=2_000_000
    ),
    "match_accuracy": lambda: _run_async("match_accuracy"),
    "match_performance": lambda: _run_async("match_performance"),
    "read_path": lambda: _run_async("read_path"),
    "analytics_refresh": lambda: _module("analytics_refresh").run_default(),
    "recommendations": lambda: _module("recommendations").run_default(),
    "funnels": lambda: _module("funnels").run_default(),
    "dashboard": lambda: _module("dashboard").run_default(),
    "event_partitions": lambda: _module("event_partitions").run_default(),
    "feedback_scoring": lambda: _module("feedback_scoring").run(),
    "bulk_import": lambda: _run_async("bulk_import"),
}

#: Those taking their sizes as options (``python -m bench.NAME --help``).
SIZED = (
    "analytics_refresh, bulk_import, concurrent_events, customer_360, dashboard, "
    "event_partitions, funnels, ingest_coercion, ledgers, match_*, read_path, recommendations"
)


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"bench.{name}")


def _run_async(name: str) -> None:
    asyncio.run(_module(name).run())


def main() -> None:
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(__doc__)
        print(f"benchmarks: {', '.join(BENCHMARKS)}")
        print(f"sizes and other options: python -m bench.NAME --help, NAME one of {SIZED}")
        return
    names = sys.argv[1:] or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise SystemExit(
            f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}"
        )
    logging.disable(logging.INFO)
    for name in names:
        BENCHMARKS[name]()


if __name__ == "__main__":
    main()

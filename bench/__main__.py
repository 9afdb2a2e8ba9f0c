"""Run every benchmark: ``python -m bench`` (or ``make bench``)."""

from __future__ import annotations

import asyncio
import logging

from bench import (
    api_key_auth,
    concurrent_events,
    customer_360,
    dsr_execution,
    graphql_http_audit,
    lambda_invocations,
    match_accuracy,
    match_engine,
    match_performance,
    request_bodies,
    request_latency,
    retention_sweep,
)


def main() -> None:
    logging.disable(logging.INFO)
    asyncio.run(request_latency.run())
    asyncio.run(api_key_auth.run())
    asyncio.run(customer_360.run())
    asyncio.run(concurrent_events.run())
    asyncio.run(dsr_execution.run())
    asyncio.run(retention_sweep.run())
    asyncio.run(lambda_invocations.run())
    asyncio.run(request_bodies.run())
    asyncio.run(graphql_http_audit.run())
    match_engine.run(15_000, review=0.80, auto=0.95, seed=7, max_pairs=2_000_000)
    asyncio.run(match_accuracy.run())
    asyncio.run(match_performance.run())


if __name__ == "__main__":
    main()

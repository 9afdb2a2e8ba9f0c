"""What the typed ``ingestEvents`` input costs: this tree (API 1.0, ``[EventInput!]!``) against
the previous release (a list of ``EventRecord`` JSON scalars read by hand), same events.

``python -m bench.ingest_coercion [--batches N] [--customers N] [--baseline COMMIT]
[--no-baseline]`` (or ``python -m bench ingest_coercion``).

Each release runs in a process of its own with its own source tree (the baseline checked out in
a temporary git worktree, as :mod:`bench.read_path` does), on its own database (migrated by its
``cdlm migrate``, admin API key from its ``cdlm bootstrap``), with the in-process ASGI app
(``create_app`` over httpx, no server). It creates ``--customers`` customers through
``ingestCustomer`` and sends ``--batches`` batches of 1,000 events (the most a batch takes)
twice, each release with the document and ids its API takes (:mod:`bench.dialects`):

- ``stored``: the whole mutation, events stored (checked, sealed, copied into PostgreSQL);
- ``input only``: the events service replaced by one that accepts every event without touching
  the database, so what is left is reading the request: JSON, parsing and validating the
  document, coercing the variables (GraphQL input coercion of every ``EventInput`` field and
  conversion to Python objects in 1.0; the JSON scalar and ``event_input.parse_event`` before),
  the idempotency fingerprint and the answer.

Printed per release and phase: events/s, CPU ms per 1,000-event batch (the process's CPU: app
and in-process client; PostgreSQL's is not counted) and wall ms per batch; then the CPU of the
typed input against the JSON scalar. Nothing is asserted about time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench import dialects
from bench.read_path import BASELINE, Release, baseline_tree, current_tree, report

BATCH = 1000
BATCHES = 20
CUSTOMERS = 50
WARMUP_BATCHES = 2
BOOTSTRAP_EMAIL = "bench@example.com"
#: The id every event gets when nothing is stored.
NIL = uuid.UUID(int=1)
INGEST_CUSTOMER = """
mutation IngestCustomer($input: IngestCustomerInput!) {
  ingestCustomer(input: $input) {
    __typename
    ... on CustomerIngested { customerId }
    ... on UserError { code message field }
  }
}
"""


# ------------------------------------------------------------------------------ each release


def _customer(number: int) -> dict[str, Any]:
    return {
        "source": {
            "system": "crm",
            "kind": "CRM",
            "collectedAt": "2026-06-01T12:00:00+00:00",
            "lawfulBasis": "CONTRACT",
            "purpose": "essential.service",
        },
        "profile": {
            "givenName": f"Given{number}",
            "familyName": f"Family{number}",
            "email": f"person.{number}@example.com",
        },
        "externalIds": [f"crm:{100_000 + number}"],
    }


async def _post(http: Any, document: str, variables: dict[str, Any], field: str) -> Any:
    response = await http.post("/graphql", json={"query": document, "variables": variables})
    body = response.json()
    answer = (body.get("data") or {}).get(field)
    if response.status_code != 200 or body.get("errors") or not answer:
        raise SystemExit(f"unexpected answer ({response.status_code}): {response.text[:2000]}")
    return answer


async def _measure(
    http: Any, dialect: dialects.Dialect, batches: list[list[dict[str, Any]]], stored: bool
) -> dict[str, Any]:
    """Send ``batches`` one after the other; events/s and CPU and wall ms per batch."""
    events = 0
    cpu = time.process_time()
    wall = time.perf_counter()
    for batch in batches:
        answer = await _post(
            http, dialect.ingest_events, dialect.ingest_variables(batch), "ingestEvents"
        )
        if answer["__typename"] != "EventsIngested" or answer["rejected"]:
            raise SystemExit(f"the batch was not taken whole: {json.dumps(answer)[:2000]}")
        if stored and answer["accepted"] != len(batch):
            raise SystemExit(f"not every event was stored: {json.dumps(answer)[:2000]}")
        events += answer["accepted"]
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    return {
        "events": events,
        "batches": len(batches),
        "events_per_s": round(events / wall),
        "cpu_ms_per_batch": round(cpu * 1000 / len(batches), 1),
        "wall_ms_per_batch": round(wall * 1000 / len(batches), 1),
    }


async def child(relay: bool, key: str, batches: int, customers: int) -> dict[str, Any]:
    """Run in the release's own process (its ``cdlm`` only): both phases; their numbers."""
    import httpx

    from bench import synthetic
    from cdlm.app import create_app
    from cdlm.config import load_settings
    from cdlm.customers import events as event_service
    from cdlm.db.lifecycle import close_orm, init_orm
    from cdlm.vault.keys import provider_from_settings
    from cdlm.vault.service import Vault

    dialect = dialects.API_1_0 if relay else dialects.BEFORE_1_0
    settings = load_settings()
    assert settings.database is not None, "DATABASE_URL must be set"
    orm = await init_orm(settings.database, settings)
    numbers: dict[str, Any] = {}
    try:
        vault = Vault(provider_from_settings(settings))
        await vault.ready()
        app = create_app(settings, vault=vault)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://bench",
            headers={"Authorization": f"Bearer {key}"},
            timeout=300,
        ) as http:
            ids = []
            for number in range(customers):
                answer = await _post(
                    http, INGEST_CUSTOMER, {"input": _customer(number)}, "ingestCustomer"
                )
                ids.append(answer["customerId"])  # as this release shows (and takes) it
            events = synthetic.events(ids, (WARMUP_BATCHES + batches) * BATCH)
            sent = [events[start : start + BATCH] for start in range(0, len(events), BATCH)]
            await _measure(http, dialect, sent[:WARMUP_BATCHES], stored=True)
            numbers["stored"] = await _measure(http, dialect, sent[WARMUP_BATCHES:], stored=True)

            async def accept_all(
                actor: Any, vault: Any, items: list[Any], *args: Any, **kwargs: Any
            ) -> tuple[Any, bool]:
                """Every event accepted, nothing stored (the same id for all)."""
                accepted = dict.fromkeys(range(len(items)), NIL)
                return event_service.BatchResult(accepted=accepted), False

            event_service.ingest_events = accept_all
            await _measure(http, dialect, sent[:WARMUP_BATCHES], stored=False)
            numbers["input_only"] = await _measure(
                http, dialect, sent[WARMUP_BATCHES:], stored=False
            )
    finally:
        await close_orm(orm)
    return numbers


# ------------------------------------------------------------------------------ the run


def _environment(url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDLM_") and k != "DATABASE_URL"}
    env.update(
        {
            "CDLM_ENV": "test",
            "CDLM_TOKEN_SECRET": "ingest-coercion-benchmark-token-secret-0123",
            "CDLM_DATA_DIR": str(data_dir),
            "CDLM_LOG_LEVEL": "WARNING",
            "DATABASE_URL": url,
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        }
    )
    return env


async def _release_numbers(
    release: Release, base: Any, workdir: Path, batches: int, customers: int
) -> dict[str, Any]:
    """Migrate a database of its own with the release's ``cdlm migrate``, bootstrap an admin
    key, and run :func:`child` in the release's process."""
    from bench.graphql_http_audit import database_url
    from cdlm.db.lifecycle import drop_database, ensure_database

    target = base.with_database(f"{base.database}_{release.name}")
    await ensure_database(target)
    try:
        env = _environment(database_url(target), workdir / release.name)
        release.run(env, "cdlm", "migrate")
        output = release.run(env, "cdlm", "bootstrap", "--email", BOOTSTRAP_EMAIL)
        key = re.search(r"API key:\s*(\S+)", output)
        if key is None:
            raise SystemExit(f"{release.name}: no API key in cdlm bootstrap's output")
        relay = "--relay" if release.dialect.relay else "--json"
        answer = release.run(
            env,
            "bench.ingest_coercion",
            "--child",
            relay,
            "--key",
            key.group(1),
            "--batches",
            str(batches),
            "--customers",
            str(customers),
        )
        return dict(json.loads(answer.strip().splitlines()[-1]))
    finally:
        await drop_database(target)


async def run(
    batches: int = BATCHES,
    customers: int = CUSTOMERS,
    baseline: str | None = BASELINE,
) -> None:
    from bench.support import benchmark_database

    results: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cdlm-ingest-")))
        releases = [current_tree()]
        if baseline is not None:
            releases.insert(0, stack.enter_context(baseline_tree(baseline, workdir)))
        shown = {}
        for release in releases:
            shown[release.name] = (
                release.commit[:12] if release.name == "baseline" else release.commit
            )
            shown[f"{release.name}_api"] = release.dialect.name
        report("ingest input: releases", shown)
        async with benchmark_database() as base:
            for release in releases:
                numbers = await _release_numbers(release, base, workdir, batches, customers)
                results[release.name] = numbers
                for phase, shown in (("stored", "stored"), ("input_only", "input only")):
                    report(f"ingest input: {release.name} {shown}", numbers[phase])
    if "baseline" in results:
        typed, scalar = results["current"]["input_only"], results["baseline"]["input_only"]
        report(
            "ingest input: typed / JSON scalar",
            {
                "input_cpu_ms_per_batch": (
                    f"{typed['cpu_ms_per_batch']}/{scalar['cpu_ms_per_batch']}"
                ),
                "cpu_ratio": round(typed["cpu_ms_per_batch"] / scalar["cpu_ms_per_batch"], 2),
                "extra_cpu_us_per_event": round(
                    (typed["cpu_ms_per_batch"] - scalar["cpu_ms_per_batch"]) * 1000 / BATCH, 1
                ),
                "stored_events_per_s": (
                    f"{results['current']['stored']['events_per_s']}/"
                    f"{results['baseline']['stored']['events_per_s']}"
                ),
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=BATCHES, help="1,000-event batches")
    parser.add_argument("--customers", type=int, default=CUSTOMERS, help="the events name them")
    parser.add_argument("--baseline", default=BASELINE, help="commit of the previous release")
    parser.add_argument("--no-baseline", action="store_true", help="this tree only")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--relay", dest="relay", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", dest="relay", action="store_false", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    if args.child:
        numbers = asyncio.run(child(args.relay, args.key, args.batches, args.customers))
        print(json.dumps(numbers), flush=True)
        sys.exit(0)
    asyncio.run(run(args.batches, args.customers, None if args.no_baseline else args.baseline))


if __name__ == "__main__":
    main()

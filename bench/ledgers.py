"""The ledgers: keyed hashing, concurrent appends to the striped chains, and verification in
full versus from the newest checkpoint.

Prints, for audit entries (``audit.record``) and consent decisions (``consent.record``), the
appends per second and their latency with 1 and with ``--writers`` concurrent writers (each
append locks only its stripe, :mod:`cdlm.core.stripes`: the audit entry's target's, the consent
customer's, so writers about different records rarely queue), the SQL statements per append,
and the time to verify a trail of ``--entries`` audit entries in full and from a checkpoint
with 100 entries after it (what ``verifyAuditChain`` does per request now).

``python -m bench.ledgers [--entries N] [--writers N] [--appends N]`` (``--help``).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from dataclasses import replace
from pathlib import Path

from tortoise.connection import get_connection

from bench.support import benchmark_workspace, percentiles, report
from cdlm.audit import service as audit
from cdlm.consent import service as consent
from cdlm.consent.models import Decision, Mechanism, Method
from cdlm.core import chain, clock
from cdlm.core.principal import SYSTEM
from cdlm.core.vocabulary import LawfulBasis, SourceKind
from cdlm.customers.ingest import CustomerIngest, Source, ingest_one
from cdlm.jobs import ledger_checkpoint
from cdlm.ledgers import verify as ledgers
from cdlm.ledgers.checkpoints import store_from
from cdlm.vault.service import Vault

ENTRIES = 100_000
WRITERS = 8
APPENDS = 400


def _hashing() -> None:
    content = {"id": str(uuid.uuid4()), "action": "customer.update", "fields": ["email"]}
    keys = chain.keyring()
    rounds = 20_000
    started = time.perf_counter()
    for _ in range(rounds):
        chain.entry_hash(content, chain.GENESIS_HASH)
    plain = (time.perf_counter() - started) / rounds * 1e6
    started = time.perf_counter()
    for _ in range(rounds):
        keys.sign(content, chain.GENESIS_HASH)
    keyed = (time.perf_counter() - started) / rounds * 1e6
    report(
        "entry hash (SHA-256 vs HMAC)", {"sha256_us": round(plain, 2), "hmac_us": round(keyed, 2)}
    )


class _Statements:
    """Counts statements sent through the pool's connections while on."""

    def __init__(self) -> None:
        self.count = 0

    def __enter__(self) -> _Statements:
        from tortoise.backends.asyncpg.client import AsyncpgDBClient

        self._patched = []
        for name in ("execute_query", "execute_query_dict", "execute_insert", "execute_many"):
            original = getattr(AsyncpgDBClient, name)

            def counted(*args: object, __original=original, **kwargs: object) -> object:  # type: ignore[no-untyped-def]
                self.count += 1
                return __original(*args, **kwargs)

            setattr(AsyncpgDBClient, name, counted)
            self._patched.append((name, original))
        return self

    def __exit__(self, *_: object) -> None:
        from tortoise.backends.asyncpg.client import AsyncpgDBClient

        for name, original in self._patched:
            setattr(AsyncpgDBClient, name, original)


async def _appends(label: str, writers: int, appends: int, append: object) -> None:
    samples: list[float] = []

    async def writer(number: int) -> None:
        for n in range(appends // writers):
            started = time.perf_counter()
            await append(number, n)  # type: ignore[operator]
            samples.append((time.perf_counter() - started) * 1000)

    with _Statements() as statements:
        started = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(writers)))
        elapsed = time.perf_counter() - started
    numbers = percentiles(samples)
    report(
        f"{label}, {writers} writer(s)",
        {
            "appends_per_s": round(len(samples) / elapsed),
            "p50_ms": numbers["p50_ms"],
            "p99_ms": numbers["p99_ms"],
            "statements_each": round(statements.count / len(samples), 1),
        },
    )


async def _consent_setup(vault: Vault, customers: int) -> list[uuid.UUID]:
    await consent.create_purpose(
        SYSTEM,
        consent.PurposeDefinition(
            code="newsletter",
            name="Newsletter",
            description="The newsletter.",
            lawful_basis=LawfulBasis.CONSENT,
            mechanism=Mechanism.OPT_IN,
            data_use="marketing.communications.email",
            data_categories=["user.contact.email"],
            sale_or_sharing=False,
            notice_text="We send a newsletter.",
        ),
    )
    source = Source("crm", SourceKind.CRM, clock.now(), LawfulBasis.CONTRACT, "essential.service")
    ids = []
    for n in range(customers):
        made = await ingest_one(
            SYSTEM, vault, CustomerIngest(source=source, profile={"email": f"p{n}@example.com"})
        )
        ids.append(made.result.customer_id)
    return ids


async def run(entries: int = ENTRIES, writers: int = WRITERS, appends: int = APPENDS) -> None:
    """Run the ledger benchmarks (see the module)."""
    async with benchmark_workspace() as (workdir, settings, vault):
        _hashing()

        async def audit_append(writer: int, n: int) -> None:
            await audit.record(SYSTEM, "job.run", target_type="job", target_id=f"{writer}-{n}")

        for count in (1, writers):
            await _appends("audit.record", count, appends, audit_append)

        people = await _consent_setup(vault, writers * 4)
        decisions = (Decision.GRANTED, Decision.WITHDRAWN)

        async def consent_append(writer: int, n: int) -> None:
            # Each writer its own customers (no row lock shared); their stripes may meet.
            customer = people[writer * 4 + n % 4]
            await consent.record(
                SYSTEM,
                vault,
                consent.ConsentRecording(
                    customer,
                    [consent.Choice("newsletter", decisions[n // 4 % 2], 1)],
                    consent.Capture(Method.API),
                ),
            )

        for count in (1, writers):
            await _appends("consent.record", count, appends, consent_append)

        # A long trail, written 1000 entries per statement.
        written = await get_connection("default").execute_query_dict(
            'SELECT count(*) AS "n" FROM "audit_entries"'
        )
        missing = max(entries - int(written[0]["n"]), 0)
        for start in range(0, missing, 1000):
            ids = [f"bulk-{i}" for i in range(start, min(start + 1000, missing))]
            await audit.record_many(SYSTEM, "job.run", target_type="job", target_ids=ids)
        mine = replace(settings, checkpoint_dir=Path(workdir) / "checkpoints")
        store = store_from(mine, chain.keyring())
        started = time.perf_counter()
        full = await ledgers.verify(ledgers.AUDIT, store, full=True)
        full_s = time.perf_counter() - started
        assert full.ok
        started = time.perf_counter()
        reports = await ledger_checkpoint.run(mine)
        job_s = time.perf_counter() - started
        assert reports is not None
        assert all(r.ok for r in reports)
        for n in range(100):
            await audit_append(0, n)
        samples = []
        for _ in range(20):
            started = time.perf_counter()
            since = await ledgers.verify(ledgers.AUDIT, store)
            samples.append((time.perf_counter() - started) * 1000)
        assert since.ok
        assert since.entries_checked == 100
        report(
            f"verify {full.count} audit entries",
            {
                "full_s": round(full_s, 2),
                "checkpoint_job_s": round(job_s, 2),
                "from_checkpoint_p50_ms": percentiles(samples)["p50_ms"],
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=ENTRIES, help="audit trail length")
    parser.add_argument("--writers", type=int, default=WRITERS, help="concurrent writers")
    parser.add_argument("--appends", type=int, default=APPENDS, help="appends per measurement")
    options = parser.parse_args()
    asyncio.run(run(options.entries, options.writers, options.appends))


if __name__ == "__main__":
    main()

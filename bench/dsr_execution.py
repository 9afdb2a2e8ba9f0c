"""Data subject requests on a real PostgreSQL: how long it takes to answer them.

Customers each have a profile, identities and ``EVENTS_EACH`` events. Prints the time to carry
out an access request (collect everything, seal it, issue an argon2id-hashed link) and an
erasure (plan, suppress, shred, delete), per request, and the export size; then the time of a
self-service submission and of its verification (argon2id at production cost).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bench.support import benchmark_workspace, percentiles, report
from cdlm.auth.settings import auth_settings
from cdlm.core.identifiers import IdentifierKind
from cdlm.core.principal import SYSTEM
from cdlm.core.vocabulary import LawfulBasis, SourceKind
from cdlm.customers.events import EventIngest, store_events
from cdlm.customers.ingest import CustomerIngest, Source, ingest_one
from cdlm.dsr import execution, intake
from cdlm.dsr.models import AccessExport, RequestType, VerificationCode, VerificationMethod
from cdlm.dsr.notifier import Message
from cdlm.dsr.service import decide
from cdlm.dsr.workflow import Status
from cdlm.vault.service import Vault

PEOPLE = 20
EVENTS_EACH = 500
SUBMISSIONS = 10


class Inbox:
    """A notifier that keeps the last message (the benchmark reads the code from it)."""

    def __init__(self) -> None:
        self.last: Message | None = None

    async def send(self, message: Message) -> None:
        self.last = message


async def run() -> None:
    async with benchmark_workspace() as (_, settings, vault):
        auth = auth_settings(settings)
        inbox = Inbox()
        emails = [f"person{n}@example.com" for n in range(PEOPLE)]
        await _people(vault, emails)

        access_ms, erasure_ms, sizes = [], [], []
        for email in emails:
            for kind, samples in (
                (RequestType.ACCESS, access_ms),
                (RequestType.ERASURE, erasure_ms),
            ):
                filed = await intake.file_request(
                    SYSTEM,
                    vault,
                    settings,
                    inbox,
                    intake.Filing(
                        kind,
                        intake.Subject(IdentifierKind.EMAIL, email),
                        VerificationMethod.IDENTITY_DOCUMENT,
                    ),
                )
                await decide(SYSTEM, vault, inbox, filed.request_id, Status.APPROVED, None)
                started = time.perf_counter()
                done = await execution.execute(
                    SYSTEM, vault, auth, settings, inbox, filed.request_id
                )
                samples.append((time.perf_counter() - started) * 1000)
                assert done.status is Status.COMPLETED, done.reason
                if kind is RequestType.ACCESS:
                    export = await AccessExport.get(request_id=filed.request_id)
                    sizes.append(export.size_bytes)
        report(
            f"dsr access ({EVENTS_EACH} events)",
            {**percentiles(access_ms), "kb": round(sum(sizes) / len(sizes) / 1024, 1)},
        )
        report(f"dsr erasure ({EVENTS_EACH} events)", percentiles(erasure_ms))

        submit_ms, verify_ms = [], []
        for n in range(SUBMISSIONS):
            started = time.perf_counter()
            received = await intake.submit(
                vault,
                auth,
                settings,
                inbox,
                intake.RequestSubmission(
                    RequestType.ACCESS,
                    intake.Subject(IdentifierKind.EMAIL, f"asker{n}@example.org"),
                    client_address=f"198.51.100.{n}",
                ),
            )
            submit_ms.append((time.perf_counter() - started) * 1000)
            assert inbox.last is not None
            code = inbox.last.text.split("request is ")[1][:6]
            started = time.perf_counter()
            await intake.verify(vault, auth, received.request_id, code, f"198.51.100.{n}")
            verify_ms.append((time.perf_counter() - started) * 1000)
        assert await VerificationCode.filter(used_at__isnull=False).count() == SUBMISSIONS
        report("dsr submit (argon2id code hash)", percentiles(submit_ms))
        report("dsr verify (argon2id check)", percentiles(verify_ms))


async def _people(vault: Vault, emails: list[str]) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n, email in enumerate(emails):
        created = await ingest_one(
            SYSTEM,
            vault,
            CustomerIngest(
                source=Source(
                    "crm", SourceKind.CRM, start, LawfulBasis.CONTRACT, "essential.service"
                ),
                profile={"email": email, "given_name": f"Given{n}", "family_name": f"Family{n}"},
                external_ids=[f"crm:{n + 1000}"],
            ),
        )
        await store_events(
            vault,
            [
                EventIngest(
                    type="purchase" if i % 3 == 0 else "page.view",
                    occurred_at=start + timedelta(minutes=i),
                    source_system="web",
                    customer_id=created.result.customer_id,
                    amount=Decimal("9.99") if i % 3 == 0 else None,
                    currency="EUR" if i % 3 == 0 else None,
                    properties={"path": f"/products/{i}", "n": i},
                )
                for i in range(EVENTS_EACH)
            ],
        )

"""Dashboard: the time of ``dashboard`` over a large installation, and a realistic report.

Synthetic customers (created over the year, more of them lately, from five acquisition
sources, 1% restricted), their events (page and product views, carts, e-mail opens and
purchases in EUR and USD), consent decisions for two purposes (through the consent service, a
sample), data subject requests (most completed, some late), weekly retention sweeps, refused
values being resolved, and a quality snapshot each week while the scores improve are loaded
straight into the tables with SQL (placeholder sealed values: nothing is ever decrypted), then
the dashboard of the whole year is computed by DAY, WEEK and MONTH, several times each:

- load time, and p50/max milliseconds of a dashboard per interval (its statements are
  constant: ``tests/insight/test_dashboard.py`` counts them).

``python -m bench.dashboard --customers 100000 --events 1000000`` (the defaults);
``--report report.html`` also writes the report of the last 26 weeks by week, and
``--screenshot docs/report.png`` photographs it in headless Chromium (DevTools
``Page.captureScreenshot``; the README's picture is made with ``--customers 20000 --events
300000 --screenshot docs/report.png``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tortoise.connection import get_connection

from bench.support import benchmark_workspace, report
from cdlm.analytics.journeys import service as journeys
from cdlm.config import AnalyticsSettings
from cdlm.consent import service as consent
from cdlm.consent.models import Decision, Mechanism, Method
from cdlm.core import clock
from cdlm.core.periods import Interval
from cdlm.core.principal import SYSTEM
from cdlm.core.vocabulary import LawfulBasis
from cdlm.insight import service, snapshots
from cdlm.insight.api import revenue_rules
from cdlm.vault.service import Vault

DAYS = 365
SOURCES = ["webshop", "mobile_app", "crm", "helpdesk", "partner_feed"]
FIELDS = ["given_name", "family_name", "email", "phone", "birth_date", "address_line1",
          "city", "postal_code", "country"]  # fmt: skip
CONSENTING = 2000
#: The funnel the report shows.
FUNNEL = ("page.view", "product.view", "cart.update", "purchase")


async def load(customers: int, events: int, start: datetime, end: datetime) -> None:
    """Customers, attributes, events, source records and refused values, requests and sweeps,
    with SQL only."""
    client = get_connection("default")
    days = (end - start).days
    async with client.acquire_connection() as connection:
        await connection.execute(
            "CREATE TABLE bench_people (n int PRIMARY KEY, id uuid, created_at timestamptz, "
            "source text)"
        )
        await connection.execute(
            "INSERT INTO bench_people SELECT n, gen_random_uuid(), "
            "$1::timestamptz + sqrt(random() + 0 * n) * $2 * interval '1 day', "
            "($3::text[])[1 + floor(power(random(), 1.6) * 5)::int] "
            "FROM generate_series(0, $4 - 1) AS n",
            start,
            days,
            SOURCES,
            customers,
        )
        await connection.execute(
            "INSERT INTO customers (id, created_at, updated_at, lifecycle_stage, profile_sealed, "
            "present_fields, lineage, source_systems, completeness, validity, quality_score, "
            "restricted_at) "
            "SELECT p.id, p.created_at, p.created_at, 'active', '\\x00'::bytea, "
            "coalesce((SELECT jsonb_agg(f) FROM unnest($1::text[]) AS f "
            "WHERE random() < 0.55 + 0.4 * (p.n % 7) / 7.0), '[]'), '{}', "
            "jsonb_build_array(p.source), 0, 1, 0.2 + 0.5 * random(), "
            "CASE WHEN random() < 0.01 THEN p.created_at + interval '1 day' END "
            "FROM bench_people p",
            FIELDS,
        )
        await connection.execute(
            "INSERT INTO customer_attributes (customer_id, acquisition_source, derivation) "
            "SELECT id, source, '{}' FROM bench_people"
        )
        await connection.execute(
            "INSERT INTO events (id, customer_id, type, channel, occurred_at, received_at, "
            "amount, currency, source_system) "
            "SELECT gen_random_uuid(), p.id, k.type, 'web', k.at, k.at, "
            "CASE WHEN k.type = 'purchase' THEN round((8 + k.r * 1200)::numeric, 2) END, "
            "CASE WHEN k.type = 'purchase' THEN (CASE WHEN k.r < 0.03 THEN 'USD' ELSE 'EUR' END) "
            "END, 'shop' "
            "FROM generate_series(1, $1) AS g "
            "JOIN LATERAL (SELECT floor(random() * $2)::int + 0 * g AS n) AS pick ON true "
            "JOIN bench_people p ON p.n = pick.n "
            "JOIN LATERAL (SELECT random() + 0 * g AS r, "
            "p.created_at + random() * ($3::timestamptz - p.created_at) AS at) AS s ON true "
            "JOIN LATERAL (SELECT s.at, s.r, CASE WHEN s.r < 0.5 THEN 'page.view' "
            "WHEN s.r < 0.7 THEN 'product.view' WHEN s.r < 0.82 THEN 'cart.update' "
            "WHEN s.r < 0.94 THEN 'email.open' ELSE 'purchase' END AS type) AS k ON true",
            events,
            customers,
            end,
        )
        await connection.execute(
            "INSERT INTO source_records (id, customer_id, source_system, source_kind, "
            "collected_at, received_at, lawful_basis, purpose, payload_sealed, outcome) "
            "SELECT gen_random_uuid(), id, source, 'crm', created_at, created_at, 'contract', "
            "'essential.service', '\\x00'::bytea, 'created' FROM bench_people"
        )
        await connection.execute(
            "INSERT INTO invalid_values (id, customer_id, source_record_id, field, code, "
            "message, value_sealed, created_at) "
            "SELECT gen_random_uuid(), s.customer_id, s.id, 'phone', 'INVALID_FORMAT', "
            "'Not a phone number.', '\\x00'::bytea, s.received_at FROM source_records s "
            "WHERE random() < CASE s.source_system WHEN 'partner_feed' THEN 0.2 "
            "WHEN 'helpdesk' THEN 0.08 ELSE 0.03 END"
        )
        await connection.execute(
            "INSERT INTO dsr_requests (id, type, jurisdiction, status, filed_via, subject_kind, "
            "subject_index, received_at, updated_at, completed_at, clock_rule, pauses, "
            "clock_paused, extended, due_at, progress, filed_by_kind) "
            "SELECT gen_random_uuid(), 'access', 'gdpr', "
            "CASE WHEN r.at > $2::timestamptz - interval '20 days' THEN 'in_progress' "
            "ELSE 'completed' END, 'self_service', 'email', md5(g::text), r.at, r.at, "
            "CASE WHEN r.at > $2::timestamptz - interval '20 days' THEN NULL "
            "ELSE r.at + (3 + random() * power(random(), 3) * 50) * interval '1 day' END, "
            "'{}', '[]', false, false, r.at + interval '1 month', '{}', 'requester' "
            "FROM generate_series(1, $3) AS g "
            "JOIN LATERAL (SELECT $1::timestamptz + (random() + 0 * g) * ($2::timestamptz - $1) "
            "AS at) AS r ON true",
            start,
            end,
            max(customers // 400, 20),
        )
        runs = [start + timedelta(days=7 * w, hours=3) for w in range(days // 7)]
        await connection.execute(
            "INSERT INTO retention_sweep_runs (id, as_of, started_at, finished_at, "
            "started_by_kind) SELECT gen_random_uuid(), a, a, a, 'schedule' "
            "FROM unnest($1::timestamptz[]) AS a",
            runs,
        )
        await connection.execute(
            "INSERT INTO retention_sweep_evidence (id, run_id, policy_id, category, action, "
            "trigger, period_days, cutoff, batches, disposed, archived, skipped_held, digest, "
            "archive_objects, done, failures) "
            "SELECT gen_random_uuid(), r.id, gen_random_uuid(), c.category, 'delete', "
            "'since_collection', 365, r.as_of, 1, floor(random() * c.size)::int, 0, 0, "
            "repeat('0', 64), '[]', true, 0 FROM retention_sweep_runs r "
            "CROSS JOIN (VALUES ('events', $1::int), ('source_records', $2::int), "
            "('consent_evidence', $3::int)) AS c (category, size)",
            max(events // 500, 10),
            max(customers // 300, 5),
            max(customers // 1000, 3),
        )
        await connection.execute(
            "ANALYZE customers; ANALYZE events; ANALYZE customer_attributes; "
            "ANALYZE dsr_requests; ANALYZE invalid_values"
        )


async def decisions(vault: Vault, start: datetime, end: datetime, seed: int) -> None:
    """Consent decisions of a sample of customers, through the consent service."""
    for code, name, mechanism, basis in (
        ("newsletter", "Newsletter", Mechanism.OPT_IN, LawfulBasis.CONSENT),
        ("personalization", "Personalized offers", Mechanism.OPT_IN, LawfulBasis.CONSENT),
    ):
        await consent.create_purpose(
            SYSTEM,
            consent.PurposeDefinition(
                code=code, name=name, description=f"{name}.", lawful_basis=basis,
                mechanism=mechanism, data_use="marketing.communications.email",
                data_categories=["user.contact.email"], sale_or_sharing=False,
                notice_text=f"{name}.", recipients=[],
            ),
        )  # fmt: skip
    rows = await get_connection("default").execute_query_dict(
        "SELECT p.id, p.created_at FROM bench_people p JOIN customers c ON c.id = p.id "
        "WHERE c.restricted_at IS NULL ORDER BY p.n LIMIT $1",
        [CONSENTING],
    )
    chooser = random.Random(seed)
    await vault.save_customer_keys([vault.new_customer_key(row["id"])[1] for row in rows])
    for row in rows:
        at = max(row["created_at"], start) + timedelta(hours=1)
        # Opting in to the newsletter grows over the year; personalization stays rarer.
        likely = 0.45 + 0.3 * (at - start).days / DAYS
        choices = [
            consent.Choice("newsletter", _decision(chooser.random() < likely), 1),
            consent.Choice("personalization", _decision(chooser.random() < 0.3), 1),
        ]
        with clock.frozen_at(min(at, end - timedelta(hours=1))):
            await consent.record(
                SYSTEM,
                vault,
                consent.ConsentRecording(row["id"], choices, consent.Capture(Method.FORM)),
            )


def _decision(granted: bool) -> Decision:
    return Decision.GRANTED if granted else Decision.DENIED


async def weekly_snapshots(start: datetime, end: datetime) -> None:
    """A snapshot each week while stewards improve the data (scores rise, refused values
    are resolved)."""
    client = get_connection("default")
    moment = start + timedelta(days=6, hours=2)
    while moment < end:
        await client.execute_query(
            "UPDATE customers SET quality_score = least(quality_score + 0.012 * random(), 1)"
        )
        await client.execute_query(
            "UPDATE invalid_values SET resolved_at = $1 WHERE resolved_at IS NULL "
            "AND created_at < $1 AND random() < 0.06",
            [moment],
        )
        with clock.frozen_at(moment):
            await snapshots.take()
        moment += timedelta(days=7)


async def timed(query: service.DashboardQuery, repeats: int) -> list[float]:
    """Milliseconds per dashboard (after one warm-up)."""
    await service.dashboard(SYSTEM, query)
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        await service.dashboard(SYSTEM, query)
        samples.append((time.perf_counter() - began) * 1000)
    return samples


async def screenshot(page: str, picture: Path) -> None:
    """A full-page photograph of the report (a file:// URI), opened offline in headless
    Chromium."""
    from tests.support.browser import chromium

    async with chromium() as browser:
        tab = await browser.new_page()
        await tab.send("Network.setBlockedURLs", urls=["http://*", "https://*"])
        await tab.send("Emulation.setDeviceMetricsOverride", width=1200, height=900,
                       deviceScaleFactor=1, mobile=False)  # fmt: skip
        await tab.goto(page)
        await tab.wait_for(
            "Array.from(document.querySelectorAll('.chart')).every(d => "
            "d.querySelector('.main-svg .trace path') || d.textContent.includes('No data'))"
        )
        await asyncio.sleep(0.5)
        height = await tab.evaluate("document.documentElement.scrollHeight")
        shot = await tab.send(
            "Page.captureScreenshot", format="png", captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": 1200, "height": min(int(height), 5200), "scale": 1},
        )  # fmt: skip
        await asyncio.to_thread(picture.write_bytes, base64.b64decode(shot["data"]))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    start = end - timedelta(days=DAYS)
    async with benchmark_workspace() as (workdir, _, vault):
        began = time.perf_counter()
        await load(args.customers, args.events, start, end)
        await decisions(vault, start, end, args.seed)
        await weekly_snapshots(start, end)
        loaded = time.perf_counter() - began
        purchases, rates = revenue_rules(
            AnalyticsSettings(currency="EUR", rates={"USD": Decimal("0.92")})
        )
        numbers: dict[str, Any] = {
            "customers": args.customers,
            "events": args.events,
            "load_s": round(loaded, 1),
        }
        for interval in Interval:
            query = service.DashboardQuery(start, end, interval, purchases, rates)
            samples = await timed(query, args.repeats)
            numbers[f"{interval.value}_points"] = len(
                (await service.dashboard(SYSTEM, query)).buckets
            )
            numbers[f"{interval.value}_p50_ms"] = round(sorted(samples)[len(samples) // 2], 1)
            numbers[f"{interval.value}_max_ms"] = round(max(samples), 1)
        if args.report or args.screenshot:
            from cdlm.insight import report as html_report

            recent = service.DashboardQuery(
                end - timedelta(weeks=26), end, Interval.WEEK, purchases, rates
            )
            board = await service.dashboard(SYSTEM, recent)
            funnel = await journeys.funnel(
                SYSTEM, journeys.FunnelQuery(FUNNEL, timedelta(days=14), recent.start, recent.end)
            )
            section = html_report.FunnelSection(steps=funnel.steps)
            page = html_report.render(board, section, clock.now())
            target = Path(args.report or workdir / "report.html")
            await asyncio.to_thread(target.write_text, page, encoding="utf-8")
            numbers["report_kib"] = len(page.encode()) // 1024
            if args.screenshot:
                uri = await asyncio.to_thread(lambda: target.resolve().as_uri())
                await screenshot(uri, Path(args.screenshot))
    return numbers


def run_default() -> None:
    """The default sizes (``python -m bench dashboard``)."""
    defaults = argparse.Namespace(
        customers=100_000, events=1_000_000, repeats=5, seed=7, report=None, screenshot=None
    )
    report("dashboard (one year)", asyncio.run(run(defaults)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--report", help="Also write the report of the last 26 weeks here.")
    parser.add_argument("--screenshot", help="Also photograph that report (PNG) here.")
    args = parser.parse_args()
    report("dashboard (one year)", asyncio.run(run(args)))


if __name__ == "__main__":
    main()

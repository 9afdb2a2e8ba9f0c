"""``cdlm report``: one self-contained HTML file, written by the real command from a seeded
database, that names no network location, escapes what it shows, names no person, and draws
every chart in a headless Chromium with the network blocked (no console errors, no requests).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cdlm.config import AnalyticsSettings, DatabaseTarget, Settings
from cdlm.consent.models import Purpose
from cdlm.core import clock
from cdlm.core.periods import Interval
from cdlm.core.principal import SYSTEM
from cdlm.insight import report, service, snapshots
from cdlm.insight.api import revenue_rules
from cdlm.vault.service import Vault
from tests.insight.conftest import DAY1, DAY2, END, Installation, customer_at, scores
from tests.support.browser import chromium, requires_browser
from tests.support.lambda_invoke import ROOT, cdlm_env, installation_env

#: Every chart the report draws from the dashboard (the funnel's only with steps).
CHARTS = [
    "new-customers",
    "active-customers",
    "events",
    "revenue",
    "quality-score",
    "score-distribution",
    "completeness",
    "refused",
    "opt-in",
    "requests",
    "disposals",
]

#: True once every chart has plotly's SVG with marks drawn, or says it has no data.
EVERY_CHART_DREW = (
    "Array.from(document.querySelectorAll('.chart')).every(d => d.querySelector('.main-svg') "
    "&& (d.querySelectorAll('.main-svg .trace path').length > 0 "
    "|| d.textContent.includes('No data in this period')))"
)
CHART_STATS = (
    "JSON.stringify(Array.from(document.querySelectorAll('.chart')).map(d => { "
    "const svg = d.querySelector('.main-svg').getBoundingClientRect(); return {id: d.id, "
    "width: svg.width, height: svg.height, traces: d.querySelectorAll('.main-svg .trace').length, "
    "marks: d.querySelectorAll('.main-svg .trace path').length, "
    "title: (d.querySelector('.gtitle') || {}).textContent, "
    "ytitle: (d.querySelector('.ytitle') || {}).textContent, "
    "empty: d.textContent.includes('No data in this period')}; }))"
)


def run_report(
    target: DatabaseTarget, settings: Settings, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cdlm", "report", *args],
        cwd=ROOT,
        env=cdlm_env(**installation_env(target, settings.master_key_file)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class Attributes(HTMLParser):
    """Every attribute value of every tag."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [(tag, name, value) for name, value in attrs]


async def _seeded(vault: Vault) -> None:
    """The hand-built installation plus two quality snapshots in the period."""
    extra = await customer_at(vault, DAY1, "webshop", "x@example.com", phone="12")
    await scores({extra: 0.5})
    with clock.frozen_at(DAY1 + timedelta(hours=23)):
        await snapshots.take()
    with clock.frozen_at(DAY2 + timedelta(hours=23)):
        await snapshots.take()


@requires_browser
async def test_the_report_draws_every_chart_offline(
    database: DatabaseTarget,
    settings: Settings,
    vault: Vault,
    installation: Installation,
    short_tmp: Path,
) -> None:
    await _seeded(vault)
    await Purpose.filter(code="partners").update(name="Partners <b>&</b> <script>x</script>")
    output = short_tmp / "report.html"
    done = run_report(
        database, settings, "--from", "2026-03-02", "--to", END.isoformat(), "-o", str(output)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {output}")
    page = output.read_text(encoding="utf-8")
    # Self-contained: no network location anywhere, no attribute loading anything.
    assert report.urls_in(page) == []
    parser = Attributes()
    parser.feed(page)
    assert [(t, n) for t, n, _ in parser.found if n in ("src", "href", "srcset", "action")] == []
    # Escaped, also inside the charts' data; aggregates only.
    assert "<script>x</script>" not in page
    assert "Partners &lt;b&gt;&amp;&lt;/b&gt; &lt;script&gt;x&lt;/script&gt;" in page
    for personal in ("a@example.com", "x@example.com", "Quillonia", "example.com"):
        assert personal not in page
    assert "No funnel requested" in page

    async with chromium() as browser:
        tab = await browser.new_page()
        await tab.send(
            "Network.setBlockedURLs", urls=["http://*", "https://*", "ws://*", "wss://*"]
        )
        await tab.send(
            "Network.emulateNetworkConditions",
            offline=True,
            latency=0,
            downloadThroughput=-1,
            uploadThroughput=-1,
        )
        url = output.as_uri()
        await tab.goto(url)
        await tab.wait_for(f"{EVERY_CHART_DREW} || null")
        drawn = await tab.evaluate(CHART_STATS)
        charts = {c["id"]: c for c in json.loads(drawn)}
        assert list(charts) == CHARTS
        for chart in charts.values():
            assert chart["width"] > 300, chart
            assert chart["height"] > 300, chart
            assert chart["title"], chart
            assert chart["ytitle"], chart
            assert (chart["traces"] > 0 and chart["marks"] > 0) or chart["empty"], chart
        for drew in ("new-customers", "events", "revenue", "opt-in", "requests", "disposals",
                     "quality-score", "score-distribution", "completeness", "refused"):  # fmt: skip
            assert not charts[drew]["empty"], drew
            assert charts[drew]["marks"] > 0, drew
        legend = await tab.evaluate(
            "Array.from(document.querySelectorAll('#opt-in .legendtext')).map(t => t.textContent)"
        )
        assert "Partners <b>&</b> <script>x</script>" in legend  # shown as text, not markup
        assert not await tab.evaluate("document.querySelector('#opt-in script, #opt-in b')")
        assert [line for line in tab.log if line.startswith(("error", "exception"))] == []
        assert await tab.violations() == []
        assert tab.requests == [url]


@requires_browser
async def test_an_empty_period_says_so_in_every_chart(
    database: DatabaseTarget, settings: Settings, short_tmp: Path
) -> None:
    output = short_tmp / "empty.html"
    done = run_report(
        database, settings, "--from", "2026-01-01", "--to", "2026-02-01", "--interval", "week",
        "-o", str(output),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    page = output.read_text(encoding="utf-8")
    assert "No funnel requested" in page
    async with chromium() as browser:
        tab = await browser.new_page()
        await tab.send("Network.setBlockedURLs", urls=["http://*", "https://*"])
        await tab.goto(output.as_uri())
        empty = await tab.wait_for(
            "Array.from(document.querySelectorAll('.chart')).filter(d => d.querySelector("
            f"'.main-svg')).length === {len(CHARTS)} && Array.from(document.querySelectorAll("
            "'.chart')).map("
            "d => d.textContent.includes('No data in this period'))"
        )
        assert empty == [True] * len(CHARTS)
        assert [line for line in tab.log if line.startswith(("error", "exception"))] == []
        assert await tab.violations() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2026-03-05", "--to", "2026-03-02"), "--to: `to` must be after `from`"),
        (("--from", "2020-01-01", "--to", "2026-01-01"), "--interval: The period has"),
        (("--from", "yesterday"), "--from: 'yesterday' is not a date"),
        (("--interval", "hour"), "--interval is day, week or month"),
        (
            ("--funnel", "page.view,nothing.stored,purchase", "--funnel-within", "4000"),
            "--funnel-within: `within` is at most 3650 days.; --funnel step 1: No event of this "
            "type has been stored.; --funnel step 2: No event",
        ),
    ],
)
def test_bad_options_are_one_line_and_exit_2(
    database: DatabaseTarget, settings: Settings, short_tmp: Path, args: tuple[str, ...],
    message: str,
) -> None:  # fmt: skip
    done = run_report(database, settings, *args, "-o", str(short_tmp / "never.html"))
    assert done.returncode == 2
    assert done.stderr.startswith(f"cdlm: {message}"), done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert not (short_tmp / "never.html").exists()


async def test_the_funnel_of_the_period_is_computed_by_the_funnel_service(
    database: DatabaseTarget, settings: Settings, installation: Installation, short_tmp: Path
) -> None:
    output = short_tmp / "funnel.html"
    done = run_report(
        database, settings, "--from", "2026-03-02", "--to", END.isoformat(),
        "--funnel", "page.view,purchase", "--funnel-within", "2", "-o", str(output),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    page = output.read_text(encoding="utf-8")
    # A, B and D enter with a page view in the period (C is restricted); only A buys, 22 hours
    # after their view and within 2 days.
    assert "<tr><td>page.view</td><td>3</td><td>n/a</td><td>100.0 %</td><td>n/a</td></tr>" in page
    assert (
        "<tr><td>purchase</td><td>1</td><td>33.3 %</td><td>33.3 %</td><td>22.0 hours</td></tr>"
        in page
    )
    assert "No funnel requested" not in page


@dataclass(frozen=True)
class Step:
    event_type: str
    customers: int
    conversion: float | None
    overall: float
    median_seconds_from_previous: float | None


async def test_the_funnel_section_shows_steps_escaped(installation: Installation) -> None:
    purchases, rates = revenue_rules(AnalyticsSettings())
    board = await service.dashboard(
        SYSTEM, service.DashboardQuery(DAY1, END, Interval.DAY, purchases, rates)
    )
    steps = [
        Step("view", 200, None, 1.0, None),
        Step("cart<b>", 50, 0.25, 0.25, 5400.0),
        Step("purchase", 10, 0.2, 0.05, 3 * 86400.0),
    ]
    page = report.render(board, report.FunnelSection(steps), datetime(2026, 3, 5, tzinfo=UTC))
    assert (
        "<td>cart&lt;b&gt;</td><td>50</td><td>25.0 %</td><td>25.0 %</td><td>1.5 hours</td>" in page
    )
    assert "<td>purchase</td><td>10</td><td>20.0 %</td><td>5.0 %</td><td>3.0 days</td>" in page
    assert 'id="funnel"' in page
    assert report.urls_in(page) == []

"""The offline HTML report (``cdlm report``): the dashboard's series as charts, the quality and
privacy figures, and a funnel, in ONE self-contained file.

The file opens with no network: plotly.js is inlined (the host names of its map layers, never
used here, are blanked out, so the file names no place on the network; only XML namespace
names remain), every chart is drawn by an inline script from inline JSON, and a
Content-Security-Policy in the page forbids loading anything at all. Every text from the data
(sources, event types, purpose names, categories) is HTML-escaped, also inside charts (plotly
reads a little HTML in labels). Aggregates only: no person is named.

Imports plotly: only the ``cdlm report`` command imports this module (never the API).
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Protocol

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.utils import PlotlyJSONEncoder

from cdlm.core.periods import Interval
from cdlm.insight.service import Dashboard, Point, Series
from cdlm.quality.fields import profile_path

#: XML namespace names plotly.js uses to create elements: identifiers, never fetched.
NAMESPACES: Final = (
    "http://www.w3.org/2000/svg",
    "http://www.w3.org/1999/xlink",
    "http://www.w3.org/2000/xmlns/",
    "http://www.w3.org/1999/xhtml",
    "http://www.w3.org/XML/1998/namespace",
)
_HOST: Final = re.compile(r"https?://[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_URL_START: Final = re.compile(r"https?://[A-Za-z0-9.-]+")
#: Nothing may be loaded: scripts and styles are inline, images are data: URIs (plotly's).
POLICY: Final = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; font-src data:"
)
_CONFIG: Final = {
    "displaylogo": False,
    "displayModeBar": False,
    "showLink": False,
    "responsive": True,
    "showTips": False,
}
EMPTY: Final = "No data in this period"
_UNIT = {Interval.DAY: "day", Interval.WEEK: "week (from Monday)", Interval.MONTH: "month"}


class FunnelStep(Protocol):
    """One step of a funnel, as the funnel service reports it."""

    @property
    def event_type(self) -> str: ...
    @property
    def customers(self) -> int: ...
    @property
    def conversion(self) -> float | None: ...  # from the previous step
    @property
    def overall(self) -> float: ...  # from the first step
    @property
    def median_seconds_from_previous(self) -> float | None: ...


@dataclass(frozen=True)
class FunnelSection:
    """What the report says about the funnel: the steps computed, or why there are none."""

    steps: Sequence[FunnelStep] = ()
    note: str = "No funnel requested (cdlm report --funnel view,cart,checkout,purchase)."


@functools.cache
def offline_plotlyjs() -> str:
    """plotly.js with every network host blanked out (map tiles, fonts and links of layers the
    report never draws), safe inside a ``<script>`` element."""
    js = get_plotlyjs()

    def blank(found: re.Match[str]) -> str:
        text = found.group(0)
        return text if any(ns.startswith(text) for ns in NAMESPACES) else "about:blank"

    return _URL_START.sub(blank, js).replace("</script", "<\\/script")


def urls_in(text: str) -> list[str]:
    """Network locations named in ``text`` (XML namespace names left out)."""
    return [u for u in _HOST.findall(text) if not any(ns.startswith(u) for ns in NAMESPACES)]


def _text(value: str | None, missing: str = "unknown") -> str:
    """A label from the data, escaped for plotly's HTML-like labels and for the page."""
    return html.escape(value if value is not None else missing)


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def _figure(
    title: str, y_title: str, traces: list[go.BaseTraceType], *, stacked: bool = False
) -> go.Figure:
    figure = go.Figure(data=traces)
    has_data = any(any(v not in (None, 0) for v in (getattr(t, "y", None) or ())) for t in traces)
    figure.update_layout(
        title={"text": html.escape(title)},
        yaxis_title=html.escape(y_title),
        barmode="stack" if stacked else "group",
        height=340,
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        legend={"orientation": "h", "y": -0.2},
        template="plotly_white",
        font={"family": "sans-serif"},
    )
    if not has_data:
        figure.add_annotation(
            text=EMPTY, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
            font={"size": 16, "color": "#666"},
        )  # fmt: skip
    return figure


def _x(points: Sequence[Point[Any]]) -> list[str]:
    return [p.start.date().isoformat() for p in points]


def _line(name: str, points: Sequence[Point[Any]], scale: float = 1.0) -> go.Scatter:
    return go.Scatter(
        name=name,
        x=_x(points),
        y=[None if p.value is None else float(p.value) * scale for p in points],
        mode="lines+markers",
        connectgaps=False,
    )


def _bars(name: str, points: Sequence[Point[Any]]) -> go.Bar:
    return go.Bar(name=name, x=_x(points), y=[float(p.value or 0) for p in points])


def _keyed_bars(series: Sequence[Series[int]], missing: str) -> list[go.BaseTraceType]:
    return [_bars(_text(s.key, missing), s.points) for s in series]


def charts(board: Dashboard) -> list[tuple[str, go.Figure]]:
    """Every chart of the report, by section id: titles, axes with units, empty states."""
    per = _UNIT[board.interval]
    currency = html.escape(board.revenue.currency)
    quality = board.quality
    requests = board.requests
    found: list[tuple[str, go.Figure]] = [
        (
            "new-customers",
            _figure(
                "New customers by acquisition source",
                f"customers per {per}",
                _keyed_bars(board.new_customers, "unknown source"),
                stacked=True,
            ),
        ),
        (
            "active-customers",
            _figure(
                "Active customers (at least one event)",
                f"customers per {per}",
                [_line("active customers", board.active_customers)],
            ),
        ),
        (
            "events",
            _figure(
                "Events by type",
                f"events per {per}",
                [_line(_text(s.key), s.points) for s in board.events],
            ),
        ),
        (
            "revenue",
            _figure(
                f"Revenue ({currency})",
                f"{currency} per {per}",
                [_bars(f"revenue ({currency})", board.revenue.amounts)],
            ),
        ),
        (
            "quality-score",
            _figure(
                "Average quality score (daily snapshots)",
                "score (0 to 1)",
                [_line("average score", quality.average_score)],
            ),
        ),
        (
            "completeness",
            _figure(
                "Field completeness (daily snapshots)",
                "customers with the field (%)",
                [
                    _line(_text(profile_path(s.key or "")), s.points, 100.0)
                    for s in quality.completeness
                    if any(p.value for p in s.points)
                ],
            ),
        ),
        (
            "refused",
            _figure(
                "Open refused values by source (daily snapshots)",
                "refused values",
                [_line(_text(s.key, "untraced"), s.points) for s in quality.open_refused],
            ),
        ),
        (
            "opt-in",
            _figure(
                "Consent opt-in rate by purpose (at each bucket's end)",
                "customers opted in (%)",
                [_line(_text(s.name), s.points, 100.0) for s in board.opt_in],
            ),
        ),
        (
            "requests",
            _figure(
                "Data subject requests",
                f"requests per {per}",
                [
                    _bars("received", requests.received),
                    _bars("completed", requests.completed),
                    _bars("completed on time", requests.completed_on_time),
                ],
            ),
        ),
        (
            "disposals",
            _figure(
                "Retention disposals by category",
                f"records disposed of per {per}",
                _keyed_bars(board.disposals, "unknown category"),
                stacked=True,
            ),
        ),
    ]
    latest = quality.latest
    buckets = latest.score_buckets if latest is not None else []
    found.append(
        (
            "score-distribution",
            _figure(
                "Quality score distribution (latest snapshot)",
                "customers",
                [
                    go.Bar(
                        name="customers",
                        x=[f"{low:.1f} to {high:.1f}" for low, high, _ in buckets],
                        y=[n for _, _, n in buckets],
                    )
                ],
            ),
        )
    )
    return found


def funnel_chart(section: FunnelSection) -> go.Figure | None:
    """The funnel as a chart (customers per step), or None without steps."""
    if not section.steps:
        return None
    figure = _figure(
        "Funnel: customers reaching each step",
        "step",
        [
            go.Funnel(
                y=[_text(s.event_type) for s in section.steps],
                x=[s.customers for s in section.steps],
                textinfo="value+percent initial",
            )
        ],
    )
    figure.update_layout(xaxis_title="customers")
    return figure


def _figures(board: Dashboard) -> list[tuple[str, str]]:
    """Headline numbers of the period (label, value), escaped by the caller."""
    completed = sum(p.value for p in board.requests.completed)
    on_time = sum(p.value for p in board.requests.completed_on_time)
    revenue = sum((p.value for p in board.revenue.amounts), Decimal(0))
    latest = board.quality.latest
    found = [
        ("New customers", f"{sum(p.value for s in board.new_customers for p in s.points):,}"),
        ("Revenue", f"{revenue:,.2f} {board.revenue.currency}"),
        ("Data subject requests received", f"{sum(p.value for p in board.requests.received):,}"),
        ("Requests completed", f"{completed:,}"),
        ("Completed on time", _share(on_time / completed if completed else None)),
        ("Records disposed of", f"{sum(p.value for s in board.disposals for p in s.points):,}"),
    ]
    if board.revenue.unconverted:
        found.append(("Purchases without an exchange rate", f"{board.revenue.unconverted:,}"))
    if latest is not None:
        found += [
            ("Customers (latest quality snapshot)", f"{latest.customers:,}"),
            (
                "Average quality score",
                "n/a" if latest.average_score is None else f"{latest.average_score:.2f}",
            ),
            ("Open refused values", f"{sum(int(n) for _, n in latest.open_refused):,}"),
        ]
    return found


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    hours = value / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"


def funnel_html(section: FunnelSection) -> str:
    """The funnel section's table (or its note); the chart is drawn separately."""
    if not section.steps:
        return f'<p class="empty">{html.escape(section.note)}</p>'
    rows = [
        (
            s.event_type,
            f"{s.customers:,}",
            _share(s.conversion),
            _share(s.overall),
            _seconds(s.median_seconds_from_previous),
        )
        for s in section.steps
    ]
    return _table(
        ("step (event type)", "customers", "from previous step", "from first step",
         "median time from previous step"),
        rows,
    )  # fmt: skip


def _plot(element: str, figure: go.Figure) -> str:
    plain = figure.to_plotly_json()
    spec = json.dumps({"data": plain["data"], "layout": plain["layout"]}, cls=PlotlyJSONEncoder)
    # Inert inside a script element whatever the data says.
    spec = spec.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (
        f'<div class="chart" id="{html.escape(element)}"></div><script>'
        "document.addEventListener('DOMContentLoaded', function () { "
        f"const spec = {spec}; Plotly.newPlot({json.dumps(element)}, spec.data, spec.layout, "
        f"{json.dumps(_CONFIG)}); }});</script>"
    )


_STYLE: Final = """
body { font-family: sans-serif; margin: 2rem auto; max-width: 1160px; padding: 0 1rem;
  color: #222; }
h1 { margin-bottom: 0.2rem; } .period { color: #555; margin-top: 0; }
section { margin: 2rem 0; } .chart { width: 100%; min-height: 340px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr));
  gap: 1rem; } .charts > .chart { min-width: 0; overflow: hidden; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr));
  gap: 0.8rem; }
.figure { border: 1px solid #ddd; border-radius: 6px; padding: 0.6rem 0.8rem; }
.figure .value { font-size: 1.4rem; font-weight: bold; } .figure .label { color: #555; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; } .empty { color: #666; font-style: italic; }
"""


def render(board: Dashboard, funnel: FunnelSection, generated_at: datetime) -> str:
    """The whole report as one HTML document (see the module)."""
    period = (
        f"{board.start.isoformat()} to {board.end.isoformat()} (end excluded), "
        f"by {_UNIT[board.interval]}, UTC"
    )
    figures = "".join(
        f'<div class="figure"><div class="value">{html.escape(value)}</div>'
        f'<div class="label">{html.escape(label)}</div></div>'
        for label, value in _figures(board)
    )
    opt_in = _table(
        ("purpose", "opted in at the period's end"),
        [(s.name, _share(s.points[-1].value if s.points else None)) for s in board.opt_in],
    )
    sections = {
        "Acquisition and activity": ["new-customers", "active-customers", "events", "revenue"],
        "Quality": ["quality-score", "score-distribution", "completeness", "refused"],
        "Privacy": ["opt-in", "requests", "disposals"],
    }
    drawn = dict(charts(board))
    body: list[str] = []
    for heading, ids in sections.items():
        body.append(f"<section><h2>{html.escape(heading)}</h2>")
        if heading == "Privacy":
            body.append(opt_in)
        body.append('<div class="charts">')
        body.extend(_plot(i, drawn[i]) for i in ids)
        body.append("</div></section>")
    funnel_figure = funnel_chart(funnel)
    body.append("<section><h2>Funnel</h2>" + funnel_html(funnel))
    if funnel_figure is not None:
        body.append(_plot("funnel", funnel_figure))
    body.append("</section>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>cdlm report</title>"
        f"<style>{_STYLE}</style>"
        f"<script>{offline_plotlyjs()}</script></head><body>"
        "<h1>Customer data report</h1>"
        f'<p class="period">{html.escape(period)}; generated '
        f"{html.escape(generated_at.isoformat(timespec='seconds'))}. Aggregates only.</p>"
        f'<section><h2>The period in figures</h2><div class="figures">{figures}</div></section>'
        + "".join(body)
        + "</body></html>\n"
    )

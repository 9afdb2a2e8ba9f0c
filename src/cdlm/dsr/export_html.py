"""The access export as a page a person can read: one self-contained HTML document rendered
from the stored JSON (the one source of truth), never from a second export.

The page has no scripts, loads nothing (no links to styles, fonts or images; inline CSS only),
and every value and every key, which can come from the person, a source system or staff, is
escaped with :func:`html.escape`. The download route sends it with a Content-Security-Policy
that forbids everything but inline styles.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

#: Titles of the parts of the export, in the order they are shown; other parts follow.
SECTIONS: dict[str, str] = {
    "request": "This request",
    "controller": "Who holds your data",
    "data": "Your data",
    "consents": "Your consent decisions",
    "requests": "Your requests",
    "audit_trail": "Who read or changed your data",
    "processing": "How your data is used",
    "withheld": "What this copy leaves out, and why",
}
#: Parts of the export that describe the page rather than being shown as sections.
_META = frozenset({"format", "generated_at", "about", "data_found"})
#: Headings go no deeper than this; deeper parts are nested tables.
_DEEPEST_HEADING = 4
#: Keys shown first, in this order (the stored JSON has its keys sorted); others follow.
FIRST = (
    "id", "type", "status", "purpose", "code", "name", "table", "kind", "value", "at",
    "occurred_at", "decided_at", "received_at", "action", "template", "decision", "profile",
    "identities", "events", "source_records", "refused_values", "purposes", "recipients",
)  # fmt: skip
_RANK = {key: n for n, key in enumerate(FIRST)}

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; color: #1b1b1b; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 2px solid #ddd; }
h3, h4 { margin-top: 1.4rem; }
table { border-collapse: collapse; margin: .4rem 0 1rem; }
th, td { border: 1px solid #d4d4d4; padding: .25rem .5rem; text-align: left;
         vertical-align: top; overflow-wrap: anywhere; }
th { background: #f3f3f3; font-weight: 600; }
td table { margin: 0; font-size: .95em; }
.kv > tbody > tr > th { width: 14rem; }
.none { color: #777; }
.about { color: #333; max-width: 60rem; }
nav ul { columns: 2; }
ul.plain { margin: 0; padding-left: 1.1rem; }
"""


def _label(key: str) -> str:
    """A key as a heading or column name: ``received_at`` → "Received at"."""
    words = key.replace("_", " ").strip()
    return escape(words[:1].upper() + words[1:])


def _anchor(key: str) -> str:
    return "part-" + (re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-") or "x")


def _none(text: str = "none") -> str:
    return f'<span class="none">{escape(text)}</span>'


def _scalar(value: Any) -> str:
    if value is None:
        return _none("—")
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return escape(str(value))


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _has_parts(value: Any) -> bool:
    """A list of records, or a record holding records: worth a heading of its own."""
    if _is_records(value):
        return True
    return isinstance(value, dict) and any(
        _is_records(v) or (isinstance(v, dict) and v) for v in value.values()
    )


def _ordered(keys: list[str]) -> list[str]:
    return sorted(keys, key=lambda k: _RANK.get(k, len(_RANK)))


def _records_table(rows: list[dict[str, Any]]) -> str:
    """A list of records as one table: a column per key (:data:`FIRST` first)."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    columns = _ordered(columns)
    head = "".join(f"<th>{_label(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_value(row.get(c))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pairs_table(values: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{_label(str(k))}</th><td>{_value(values[k])}</td></tr>"
        for k in _ordered(list(values))
    )
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def _value(value: Any) -> str:
    """Any JSON value, inline (in a table cell): records as tables, lists as lists."""
    if isinstance(value, dict):
        return _pairs_table(value) if value else _none()
    if isinstance(value, list):
        if not value:
            return _none()
        if _is_records(value):
            return _records_table(value)
        items = "".join(f"<li>{_value(v)}</li>" for v in value)
        return f'<ul class="plain">{items}</ul>'
    return _scalar(value)


def _caption(number: int, row: dict[str, Any]) -> str:
    named = " ".join(str(row[k]) for k in ("type", "id") if isinstance(row.get(k), str))
    return escape(f"{number}. {named}".strip())


def _part(value: Any, level: int) -> str:
    """A part of the export under a heading of ``level``: a record's simple values in one
    table and its lists and records under headings of their own; a list of records holding
    lists of records (requests with their timelines) one record under each heading."""
    if level >= _DEEPEST_HEADING:
        return _value(value)
    tag = f"h{level + 1}"
    if isinstance(value, dict) and value:
        simple = {k: v for k, v in value.items() if not _has_parts(v)}
        out = [_pairs_table(simple)] if simple else []
        for key in _ordered([k for k in value if k not in simple]):
            out.append(f"<{tag}>{_label(str(key))}</{tag}>{_part(value[key], level + 1)}")
        return "".join(out)
    if _is_records(value) and any(_is_records(v) for row in value for v in row.values()):
        return "".join(
            f"<{tag}>{_caption(n, row)}</{tag}>{_part(row, level + 1)}"
            for n, row in enumerate(value, 1)
        )
    return _value(value)


def _title(key: str) -> str:
    return escape(SECTIONS[key]) if key in SECTIONS else _label(key)


def render(answer: dict[str, Any]) -> str:
    """The export ``answer`` (as stored) as one HTML page."""
    about = answer.get("about") if isinstance(answer.get("about"), dict) else {}
    parts = [k for k in SECTIONS if k in answer]
    parts += [k for k in answer if k not in SECTIONS and k not in _META]
    request = answer.get("request") if isinstance(answer.get("request"), dict) else {}
    received = request.get("received_at") if request else None
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        "<title>Copy of your personal data</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Copy of your personal data</h1>",
        f"<p>Made {_scalar(answer.get('generated_at'))} in answer to your request of "
        f"{_scalar(received)} ({_scalar(answer.get('format'))}). The same copy is available "
        "as JSON, for machines: add <code>?format=json</code> to the link (each download "
        "counts towards the link's limit).</p>",
    ]
    if answer.get("data_found") is False:
        out.append("<p><strong>No profile is held about you.</strong></p>")
    out.append(
        "<nav><h2>Contents</h2><ul>"
        + "".join(f'<li><a href="#{_anchor(k)}">{_title(k)}</a></li>' for k in parts)
        + "</ul></nav>"
    )
    for key in parts:
        out.append(f'<section id="{_anchor(key)}"><h2>{_title(key)}</h2>')
        note = about.get(key) if about else None
        if isinstance(note, str):
            out.append(f'<p class="about">{escape(note)}</p>')
        out.append(_part(answer[key], 2))
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)

"""The access export as a readable page: the download link serves HTML to a browser (or with
``?format=html``) and JSON otherwise, both from the one stored copy, every value escaped, the page
self-contained and locked down by its headers, every download counted against the link."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import httpx
import pytest

from cdlm.consent import service as consent
from cdlm.consent.models import Decision, Method
from cdlm.core.principal import SYSTEM
from cdlm.customers.events import EventIngest, store_events
from cdlm.dsr import export_html
from cdlm.dsr.models import RequestEvent
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.consent.test_consent import make_purpose
from tests.dsr.support import approved, change, execute, export_link, file_request, key
from tests.factories import make_customer

EMAIL = "juniper.vale@example.com"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
SECURITY = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
}
HOSTILE_KEY = "<script>alert('key')</script>"
HOSTILE_VALUE = '"><img src=x onerror="alert(1)"><script>alert(2)</script>'
HOSTILE_AGENT = "Mozilla/5.0 \"quoted\" 'single' <script src=//evil.example/x.js></script>"
HOSTILE_REASON = "</td></table><script>document.location='//evil.example'</script>"


@pytest.fixture(autouse=True)
def notifications(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cdlm.notifications")


async def _exported(
    gql: GraphQLClient, headers: dict[str, str], vault: Vault, caplog: pytest.LogCaptureFixture
) -> tuple[str, str]:
    """A customer whose data, consent evidence and request hold markup, and the link to their
    copy (with the access request's id)."""
    customer_id = (
        await make_customer(vault, email=EMAIL, given_name="Juniper", family_name="Vale")
    ).customer_id
    await store_events(
        vault,
        [
            EventIngest(
                type="support.ticket",
                occurred_at=datetime(2026, 6, 1, tzinfo=UTC),
                source_system="helpdesk",
                customer_id=customer_id,
                properties={HOSTILE_KEY: HOSTILE_VALUE, "nested": {"deeper": [HOSTILE_VALUE]}},
            )
        ],
    )
    await make_purpose("newsletter")
    await consent.record(
        SYSTEM,
        vault,
        consent.ConsentRecording(
            customer_id,
            [consent.Choice("newsletter", Decision.GRANTED, 1)],
            consent.Capture(Method.FORM, user_agent=HOSTILE_AGENT, ip_address="192.0.2.44"),
        ),
    )
    earlier = (await file_request(gql, headers, "ERASURE", EMAIL))["request"]["id"]
    await change(gql, headers, earlier, "DENIED", HOSTILE_REASON)
    request_id = await approved(gql, headers, "ACCESS", EMAIL)
    await execute(gql, headers, request_id)
    return export_link(caplog), request_id


#: Every tag and attribute the page may hold: nothing that runs, loads or leaves the page.
ALLOWED_TAGS = frozenset(
    {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "h4", "p", "strong",
     "code", "nav", "ul", "li", "a", "section", "table", "thead", "tbody", "tr", "th", "td",
     "span"}
)  # fmt: skip
ALLOWED_ATTRIBUTES = frozenset({"lang", "charset", "name", "content", "id", "class", "href"})


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style += data


def _assert_self_contained(page: str) -> None:
    """Only the allowed tags and attributes, links only within the page, styles that load
    nothing: no script, no resource, no way out."""
    parsed = _Tags()
    parsed.feed(page)
    parsed.close()
    assert page.startswith("<!DOCTYPE html>")
    assert {tag for tag, _ in parsed.tags} <= ALLOWED_TAGS
    for tag, attrs in parsed.tags:
        assert {name for name, _ in attrs} <= ALLOWED_ATTRIBUTES, tag
        for name, value in attrs:
            if name == "href":
                assert (value or "").startswith("#")
            if tag == "meta" and name == "content":
                assert value in {"width=device-width, initial-scale=1", "no-referrer"}
    assert "url(" not in parsed.style
    assert "@import" not in parsed.style


async def test_a_browser_gets_one_readable_self_contained_page_of_the_stored_copy(
    gql: GraphQLClient,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    vault: Vault,
    caplog: pytest.LogCaptureFixture,
) -> None:
    link, request_id = await _exported(gql, admin_headers, vault, caplog)
    page = await client.get(link, headers={"Accept": BROWSER})
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert {k: page.headers.get(k) for k in SECURITY} == SECURITY
    assert page.headers["content-disposition"].startswith("inline")
    html = page.text
    _assert_self_contained(html)

    # Every value is escaped, keys included: the markup shows as text.
    assert "&lt;script&gt;alert(&#x27;key&#x27;)&lt;/script&gt;" in html
    assert "&quot;&gt;&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert "Mozilla/5.0 &quot;quoted&quot; &#x27;single&#x27; &lt;script" in html
    assert "&lt;/td&gt;&lt;/table&gt;&lt;script&gt;" in html

    # A section per part of the export, lists of records as tables.
    for title in export_html.SECTIONS.values():
        assert f">{title}</h2>" in html
    assert html.count("<table") > 10
    assert "<th>Ip address keyed digest</th>" in html
    assert "keyed digest of the IP address" in html  # the export's own explanation

    # One source of truth: the page is the stored JSON, rendered.
    answer = (await client.get(link, params={"format": "json"})).json()
    assert html == export_html.render(answer)
    assert answer["request"]["id"] == str(key(request_id))  # the copy keeps database ids


async def test_each_format_is_chosen_as_asked_and_every_download_counts(
    gql: GraphQLClient,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    vault: Vault,
    caplog: pytest.LogCaptureFixture,
) -> None:
    link, request_id = await _exported(gql, admin_headers, vault, caplog)
    refused = await client.get(link, params={"format": "xml"})
    assert refused.status_code == 400
    assert {k: refused.headers.get(k) for k in SECURITY} == SECURITY

    asked = [
        ({"Accept": BROWSER}, {}, "text/html"),
        ({"Accept": BROWSER}, {"format": "json"}, "application/json"),
        ({"Accept": "application/json"}, {"format": "html"}, "text/html"),
        ({}, {}, "application/json"),
        ({"Accept": "application/json, text/html"}, {}, "application/json"),
    ]
    for headers, params, media_type in asked:
        response = await client.get(link, headers=headers, params=params)
        assert response.status_code == 200
        assert response.headers["content-type"].split(";")[0] == media_type
        assert {k: response.headers.get(k) for k in SECURITY} == SECURITY
        assert response.headers["vary"] == "Accept"
        if media_type == "application/json":
            assert response.headers["content-disposition"].startswith("attachment")
            assert response.json()["request"]["id"] == str(key(request_id))
    # Five downloads in all, whatever the format: the link is used up for both.
    for params in ({"format": "html"}, {"format": "json"}):
        gone = await client.get(link, params=params)
        assert gone.status_code == 404
        assert {k: gone.headers.get(k) for k in SECURITY} == SECURITY
    downloads = await RequestEvent.filter(
        request_id=key(request_id), kind="export_downloaded"
    ).count()
    assert downloads == 5


@pytest.mark.pure
def test_the_page_escapes_whatever_the_json_holds() -> None:
    hostile = "<script>x</script>\"'&"
    page = export_html.render(
        {
            "format": hostile,
            "generated_at": hostile,
            "about": {hostile: hostile, "data": hostile},
            "data_found": True,
            "data": {hostile: [{hostile: {hostile: [hostile, None, True, 3]}}], "empty": []},
            hostile: [[hostile], {"nested": {"deeper": {"deepest": hostile}}}],
        }
    )
    _assert_self_contained(page)
    assert "<script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;&quot;&#x27;&amp;" in page
    assert re.findall(r' id="([^"]*)"', page) == ["part-data", "part-script-x-script"]

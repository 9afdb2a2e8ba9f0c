"""The GraphiQL page: served from the package under a strict policy, and working in a browser.

People paste API keys into this page, so it must load nothing from another site, run no script
but the package's own and keep the key nowhere. The browser tests open it in a real headless
Chromium (``tests/support/browser.py``); CI requires them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import replace
from html.parser import HTMLParser
from typing import Any

import httpx
from graphql import parse, validate
from starlette.applications import Starlette

from cdlm.api import graphiql
from cdlm.api.schema import create_schema
from cdlm.app import create_app
from cdlm.cli import cli
from cdlm.config import Settings
from tests.support.browser import chromium, requires_browser
from tests.support.serving import serving

BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
NONCE = re.compile(r"^[A-Za-z0-9_-]{24}$")


class Tags(HTMLParser):
    """Every start tag of a document with its attributes, and the text of script elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data


def tags_of(page: str) -> Tags:
    parsed = Tags()
    parsed.feed(page)
    return parsed


def policy(response: httpx.Response) -> dict[str, str]:
    directives = response.headers["content-security-policy"].split(";")
    return dict(directive.strip().split(" ", 1) for directive in directives)


async def test_the_page_has_a_strict_policy_and_security_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/graphql", headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    nonce = policy(response)["style-src"].removeprefix("'self' 'nonce-").removesuffix("'")
    assert NONCE.match(nonce)
    assert policy(response) == {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": f"'self' 'nonce-{nonce}'",
        "font-src": "data:",
        "img-src": "data:",
        "connect-src": "'self'",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cross-origin-opener-policy"] == "same-origin"
    assert response.headers["cache-control"] == "no-store"
    # The nonce is new on every page, and only the start-up script carries it.
    again = await client.get("/graphql", headers=BROWSER)
    assert policy(again)["style-src"] != policy(response)["style-src"]
    carrying = [attrs for _, attrs in tags_of(response.text).tags if attrs.get("nonce")]
    assert carrying == [
        {
            "src": graphiql._url(graphiql.STARTUP_SCRIPT),
            "integrity": graphiql.assets()[graphiql.STARTUP_SCRIPT].integrity,
            "nonce": nonce,
        }
    ]


async def test_the_page_loads_nothing_from_another_host_and_runs_no_inline_script(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/graphql", headers=BROWSER)).text
    parsed = tags_of(page)
    assert parsed.script_text.strip() == ""
    assert "<style" not in page
    references = []
    for tag, attrs in parsed.tags:
        assert "style" not in attrs, tag
        assert not any(name.startswith("on") for name in attrs), tag
        for name in ("src", "href"):
            if attrs.get(name) is not None:
                references.append(attrs[name])
    assert references
    for reference in references:
        assert reference is not None
        assert reference == "data:," or reference.startswith(graphiql.ASSET_PREFIX), reference
    assert "//" not in "".join(ref for ref in references if ref)
    scripts = [attrs["src"] for tag, attrs in parsed.tags if tag == "script"]
    assert [src.split("?")[0] for src in scripts if src] == [
        f"graphiql/{name}" for name in (*graphiql.SCRIPTS, graphiql.STARTUP_SCRIPT)
    ]


async def test_the_page_files_are_served_from_the_package(client: httpx.AsyncClient) -> None:
    page = (await client.get("/graphql", headers=BROWSER)).text
    linked = [
        attrs
        for tag, attrs in tags_of(page).tags
        if tag in ("script", "link") and attrs.get("integrity")
    ]
    assert len(linked) == len(graphiql.SCRIPTS) + 1 + len(graphiql.STYLES)
    for attrs in linked:
        url = attrs.get("src") or attrs.get("href")
        assert url is not None
        response = await client.get(f"/{url}")
        assert response.status_code == 200
        expected = "text/javascript" if url.split("?")[0].endswith(".js") else "text/css"
        assert response.headers["content-type"] == f"{expected}; charset=utf-8"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cross-origin-resource-policy"] == "same-origin"
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        digest = base64.b64encode(hashlib.sha384(response.content).digest()).decode()
        assert attrs["integrity"] == f"sha384-{digest}"
    stale = await client.get("/graphiql/graphiql.min.js?v=0")
    assert stale.headers["cache-control"] == "no-cache"
    for unknown in ("vendored.json", "LICENSE.react.txt", "..%2Fgraphiql.py", "nothing.js"):
        assert (await client.get(f"/graphiql/{unknown}")).status_code == 404


def test_the_vendored_files_are_the_pinned_releases() -> None:
    manifest: dict[str, Any] = json.loads((graphiql.STATIC / "vendored.json").read_text())
    for name, entry in manifest["files"].items():
        body = (graphiql.STATIC / name).read_bytes()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"], name
        package = manifest["packages"][entry["package"]]
        assert package["license"] == "MIT"
        assert (graphiql.STATIC / package["licenseFile"]).is_file()
    served = {*graphiql.SCRIPTS, *graphiql.STYLES} - {"explorer.css"}
    assert served <= set(manifest["files"])
    react = (graphiql.STATIC / "react.production.min.js").read_text()
    assert f'version="{manifest["packages"]["react"]["version"]}"' in react


def test_the_default_query_explains_how_to_authenticate_and_is_valid(settings: Settings) -> None:
    text = graphiql.DEFAULT_QUERY
    assert '{"Authorization": "Bearer cdlm_<id>_<secret>"}' in text
    # The commands it names exist.
    commands = {
        command.name or getattr(command.callback, "__name__", "").replace("_", "-")
        for command in cli.registered_commands
    }
    for named in re.findall(r"`cdlm ([a-z-]+)`", text):
        assert named in commands, named
    schema = create_schema(settings)._schema
    assert validate(schema, parse(text)) == []
    assert max(len(line) for line in text.splitlines()) <= 60
    assert html_unescaped_default_query(graphiql.page("n")) == text


def html_unescaped_default_query(page: str) -> str | None:
    for _, attrs in tags_of(page).tags:
        if attrs.get("id") == "graphiql":
            return attrs["data-default-query"]
    return None


async def test_without_graphiql_its_files_are_not_served(settings: Settings) -> None:
    app = create_app(replace(settings, graphiql=False))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cdlm.test") as http:
        assert (await http.get("/graphiql/graphiql.min.js")).status_code == 404
        assert (await http.get("/graphql", headers=BROWSER)).status_code == 405


# --- in a browser -------------------------------------------------------------------------------

QUERY_EDITOR = "document.querySelector('.graphiql-query-editor .CodeMirror')"
HEADERS_EDITOR = (
    "document.querySelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror')"
)
RESPONSE = "document.querySelector('.graphiql-response .CodeMirror')"


@requires_browser
async def test_graphiql_works_in_a_browser_under_its_policy(
    app: Starlette, admin_headers: dict[str, str]
) -> None:
    secret = admin_headers["Authorization"].removeprefix("Bearer ")
    async with serving(app) as origin, chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{origin}/graphql")
        # The editor appears, showing how to authenticate.
        shown = await page.wait_for(f"{QUERY_EDITOR} && {QUERY_EDITOR}.CodeMirror.getValue()")
        assert shown == graphiql.DEFAULT_QUERY
        # A key pasted into Headers is sent with the query, and the answer shown.
        await page.wait_for(f"!!{HEADERS_EDITOR}")
        pasted = json.dumps(json.dumps(admin_headers))
        await page.evaluate(f"{HEADERS_EDITOR}.CodeMirror.setValue({pasted})")
        await page.evaluate("document.querySelector('.graphiql-execute-button').click()")
        shown_answer = f"{RESPONSE}.CodeMirror.getValue()"
        answer = await page.wait_for(f"{shown_answer}.includes('ADMIN') && {shown_answer}")
        data = json.loads(answer)["data"]
        assert data["health"] == {"ok": True}
        assert (data["viewer"]["kind"], data["viewer"]["role"]) == ("API_KEY", "ADMIN")
        # A dialog adds its own style element: allowed by the page's nonce.
        await page.evaluate(
            "document.querySelector('button[aria-label=\"Open settings dialog\"]').click()"
        )
        await page.wait_for("!!document.querySelector('[role=dialog]')")
        assert await page.evaluate("document.querySelectorAll('style[nonce]').length") >= 1
        # Nothing was refused, nothing left for another host, the key was stored nowhere.
        assert await page.violations() == []
        assert not [line for line in page.log if "Content Security Policy" in line]
        assert page.requests
        for url in page.requests:
            assert url.startswith((f"{origin}/", "data:")), url
        stored = await page.evaluate("JSON.stringify([{...localStorage}, {...sessionStorage}])")
        assert secret not in stored
        # After a reload, the headers are empty again.
        await page.goto(f"{origin}/graphql")
        await page.wait_for(f"!!{HEADERS_EDITOR}")
        assert await page.evaluate(f"{HEADERS_EDITOR}.CodeMirror.getValue()") == ""

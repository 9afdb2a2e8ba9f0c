"""The GraphiQL page (``GET /graphql`` from a browser) and the files it loads.

The page is one people paste API keys into, so it loads nothing from another site: GraphiQL,
React and ReactDOM are served from this package (``static/graphiql/``, pinned versions listed
in ``vendored.json`` there), under ``graphiql/`` beside the endpoint. Its Content-Security-Policy
allows scripts, styles and connections from the API's own origin only, with no inline script;
the style elements GraphiQL's dialogs add carry the page's nonce. The page cannot be framed,
sends no referrer, keeps the headers typed into it (the key) nowhere and its queries and
history only in the tab's session storage.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import secrets
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

STATIC = Path(__file__).resolve().parent / "static" / "graphiql"
#: Where the page's files are served, relative to the page (``/graphql`` -> ``/graphiql/``).
ASSET_PREFIX = "graphiql/"
#: Scripts in the order the page loads them: React, ReactDOM, GraphiQL, then cdlm's start-up.
SCRIPTS = ("react.production.min.js", "react-dom.production.min.js", "graphiql.min.js")
STARTUP_SCRIPT = "explorer.js"
STYLES = ("graphiql.min.css", "explorer.css")
_MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

#: What the editor shows first: how to authenticate, and a query that reads nothing personal.
DEFAULT_QUERY = """\
# Welcome to cdlm. Run a query with Ctrl-Enter (or ▶).
#
# To authenticate, open Headers below and paste
#
#   {"Authorization": "Bearer cdlm_<id>_<secret>"}
#
# with your API key. `cdlm serve` prints an admin key
# when it starts on an empty database (so does
# `cdlm bootstrap`); admins create more through the API.
# Staff users may paste the access token they get by
# signing in instead.
#
# This page loads nothing from other sites. Pasted
# headers are not stored: a reload forgets them.
# Queries and history last as long as this tab.
# Docs (the book icon) describes every field and who
# may use it.

{
  health {
    ok
  }
  viewer {
    kind
    role
    name
  }
}
"""


@dataclass(frozen=True)
class Asset:
    """A file the page loads."""

    body: bytes
    media_type: str
    #: Subresource Integrity of ``body`` (``sha384-…``).
    integrity: str
    #: A short digest of ``body``: the page names it in the URL, so a new file is a new URL.
    version: str


@functools.cache
def assets() -> dict[str, Asset]:
    """The page's files by name, read once per process (only when GraphiQL is served)."""
    found = {}
    for name in (*SCRIPTS, STARTUP_SCRIPT, *STYLES):
        body = (STATIC / name).read_bytes()
        digest = base64.b64encode(hashlib.sha384(body).digest()).decode("ascii")
        found[name] = Asset(
            body=body,
            media_type=_MEDIA_TYPES[Path(name).suffix],
            integrity=f"sha384-{digest}",
            version=hashlib.sha256(body).hexdigest()[:16],
        )
    return found


def content_security_policy(nonce: str) -> str:
    """The page's policy: its own origin for scripts, styles and requests; nothing else."""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            f"style-src 'self' 'nonce-{nonce}'",
            "font-src data:",
            "img-src data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def page_headers(nonce: str) -> dict[str, str]:
    """The security headers of the page."""
    return {
        "Content-Security-Policy": content_security_policy(nonce),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def _url(name: str) -> str:
    return html.escape(f"{ASSET_PREFIX}{name}?v={assets()[name].version}")


def page(nonce: str) -> str:
    """The page's HTML, with ``nonce`` on the start-up script (which hands it to GraphiQL)."""
    files = assets()
    styles = "".join(
        f'\n<link rel="stylesheet" href="{_url(name)}" integrity="{files[name].integrity}">'
        for name in STYLES
    )
    scripts = "".join(
        f'\n<script src="{_url(name)}" integrity="{files[name].integrity}"></script>'
        for name in SCRIPTS
    )
    startup = STARTUP_SCRIPT
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cdlm · GraphiQL</title>
<link rel="icon" href="data:,">{styles}
</head>
<body>
<div id="graphiql" data-default-query="{html.escape(DEFAULT_QUERY)}">Loading GraphiQL…</div>
<noscript>GraphiQL needs JavaScript.</noscript>{scripts}
<script src="{_url(startup)}" integrity="{files[startup].integrity}" nonce="{nonce}"></script>
</body>
</html>
"""


def page_response() -> Response:
    """The GraphiQL page, with a new nonce."""
    nonce = secrets.token_urlsafe(18)
    return HTMLResponse(page(nonce), headers=page_headers(nonce))


async def asset_endpoint(request: Request) -> Response:
    """``GET graphiql/{name}``: one of the page's files (404 for any other name)."""
    asset = assets().get(request.path_params["name"])
    if asset is None:
        return Response("Not Found", status_code=404, media_type="text/plain")
    current = request.query_params.get("v") == asset.version
    return Response(
        asset.body,
        media_type=asset.media_type,
        headers={
            # The page names each file with its digest: that URL never changes content.
            "Cache-Control": "public, max-age=31536000, immutable" if current else "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Cross-Origin-Resource-Policy": "same-origin",
        },
    )

"""The HTTP route a requester fetches their data from: ``GET /exports/{token}``; staff fetch
segment exports from it too (the same links: :func:`cdlm.dsr.access.issue_link`).

The stored copy is JSON. A browser (``Accept`` naming HTML first) or ``?format=html`` gets it
as one readable, self-contained HTML page rendered from that JSON (:mod:`cdlm.dsr.export_html`);
anything else, or ``?format=json``, gets the JSON. Either counts as one download of the link.
A segment export is served as written (CSV or JSON lines) whatever is asked.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from cdlm.auth.settings import AuthSettings
from cdlm.dsr import access, export_html
from cdlm.ratelimit import service as ratelimit
from cdlm.vault.service import Vault

PER_ADDRESS = ratelimit.Limit(attempts=30, window=timedelta(hours=1))
#: Sent with every answer of the route: nothing is cached or leaks the link through a referrer,
#: nothing is sniffed into another type, and a page may load nothing and run nothing (its
#: styles are inline).
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}
#: Media types a browser puts first when it navigates to a page.
_PAGE_TYPES = frozenset({"text/html", "application/xhtml+xml"})
FORMATS = frozenset({"html", "json"})


def wants_html(request: Request) -> bool:
    """HTML when asked with ``?format=html`` or by a client naming HTML first in ``Accept``
    (as browsers do); JSON otherwise. ``format`` must be checked first (:data:`FORMATS`)."""
    chosen = request.query_params.get("format")
    if chosen is not None:
        return chosen == "html"
    first = request.headers.get("accept", "").split(",", 1)[0]
    return first.split(";", 1)[0].strip().lower() in _PAGE_TYPES


def export_download(vault: Vault, auth: AuthSettings) -> Callable[[Request], Awaitable[Response]]:
    """The route handler: the export as a JSON attachment or an HTML page, or 404 whatever was
    wrong."""

    async def download(request: Request) -> Response:
        address = request.client.host if request.client else "unknown"
        key = auth.keyed_digest("dsr-download-address", address)
        if await ratelimit.count_attempt(key, PER_ADDRESS) > PER_ADDRESS.attempts:
            return JSONResponse(
                {"error": "Too many downloads; try again later."}, 429, headers=HEADERS
            )
        if request.query_params.get("format", "json") not in FORMATS:
            # Refused before the token is looked at: the link is not used up.
            return JSONResponse({"error": "format is html or json."}, 400, headers=HEADERS)
        page = wants_html(request)
        found = await access.download(vault, auth, request.path_params["token"])
        if found is None:
            return JSONResponse(
                {"error": "This link is unknown, expired or used up."}, 404, headers=HEADERS
            )
        if found.segment_export_id is not None:
            # A segment export is served as it was written (CSV or JSON lines), never as a page.
            name = f"cdlm-segment-export-{found.segment_export_id}.{found.extension}"
            return Response(
                found.content,
                media_type=found.media_type,
                headers={**HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
            )
        name = f"cdlm-export-{found.request_id}"
        headers = {**HEADERS, "Vary": "Accept"}
        if page:
            return HTMLResponse(
                export_html.render(json.loads(found.content)),
                headers={**headers, "Content-Disposition": f'inline; filename="{name}.html"'},
            )
        return Response(
            found.content,
            media_type="application/json",
            headers={**headers, "Content-Disposition": f'attachment; filename="{name}.json"'},
        )

    return download

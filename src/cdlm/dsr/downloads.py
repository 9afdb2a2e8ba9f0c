"""The HTTP route a requester fetches their data from: ``GET /exports/{token}``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cdlm.auth.settings import AuthSettings
from cdlm.dsr import access
from cdlm.ratelimit import service as ratelimit
from cdlm.vault.service import Vault

PER_ADDRESS = ratelimit.Limit(attempts=30, window=timedelta(hours=1))
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def export_download(vault: Vault, auth: AuthSettings) -> Callable[[Request], Awaitable[Response]]:
    """The route handler: the export as a JSON attachment, or 404 whatever was wrong."""

    async def download(request: Request) -> Response:
        address = request.client.host if request.client else "unknown"
        key = auth.keyed_digest("dsr-download-address", address)
        if await ratelimit.count_attempt(key, PER_ADDRESS) > PER_ADDRESS.attempts:
            return JSONResponse(
                {"error": "Too many downloads; try again later."}, 429, headers=_NO_STORE
            )
        found = await access.download(vault, auth, request.path_params["token"])
        if found is None:
            return JSONResponse(
                {"error": "This link is unknown, expired or used up."}, 404, headers=_NO_STORE
            )
        name = f"cdlm-export-{found.request_id}.json"
        return Response(
            found.content,
            media_type="application/json",
            headers={**_NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'},
        )

    return download

"""Cross-origin calls to ``/graphql`` from the browser origins ``CDLM_CORS_ORIGINS`` lists.

With no origins listed, this middleware is not installed and responses carry no CORS header.
With some, for ``/graphql`` only:

- a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) from a listed
  origin, for a method and headers allowed below, is answered 204 with the origin, methods,
  headers and how long to cache the answer; any other preflight is refused with 403 and a
  GraphQL-shaped error saying why, and without CORS headers, so the browser stops there;
- every other response to a listed origin (refusals before GraphQL runs included: 400, 405,
  413, 415, and a masked 500) names the origin and exposes the request id, so the page can
  read its errors; a response to an origin not listed carries no CORS header at all;
- responses vary on ``Origin``.

Credentials (cookies, HTTP authentication) are never allowed: callers send an API key or an
access token in ``Authorization``, which the preflight allows. Starlette's ``CORSMiddleware``
answers refused preflights in plain text with the allowed methods and headers, adds exposed
headers to responses for refused origins too, and covers every path, hence this one.

``ALLOWED_METHODS``, ``ALLOWED_HEADERS``, ``EXPOSED_HEADERS`` and ``MAX_AGE`` are also the API
Gateway's CORS configuration in ``serverless.yml`` (a test keeps the two the same).
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cdlm.api.http_refusals import RefusalCode, refusal

#: Paths served to other origins.
PATHS = frozenset({"/graphql"})
#: Operations are POSTed (GET serves only GraphiQL, to its own origin).
ALLOWED_METHODS = ("POST",)
#: Request headers cdlm reads beyond the safelisted ones (``Accept``, and ``Content-Type``
#: which is listed because ``application/json`` is not a safelisted value).
ALLOWED_HEADERS = ("Authorization", "Content-Type", "X-Request-ID")
#: Response headers a page may read beyond the safelisted ones.
EXPOSED_HEADERS = ("X-Request-ID",)
#: Seconds a browser may cache a preflight answer (Chromium caps it at 7200).
MAX_AGE = 7200

_PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


class CorsMiddleware:
    """Answer preflights and label responses for the listed ``origins`` (see the module)."""

    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self.origins = frozenset(origins)
        self._methods = frozenset(ALLOWED_METHODS)
        self._headers = frozenset(header.lower() for header in ALLOWED_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") not in PATHS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if (
            origin is not None
            and scope["method"] == "OPTIONS"
            and "access-control-request-method" in headers
        ):
            await self._preflight(scope, receive, send, origin, headers)
            return
        allowed = origin is not None and origin in self.origins

        async def labelled(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers.add_vary_header("Origin")
                if allowed:
                    assert origin is not None
                    response_headers["Access-Control-Allow-Origin"] = origin
                    response_headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
            await send(message)

        await self.app(scope, receive, labelled)

    def _refusal_reason(self, origin: str, headers: Headers) -> str | None:
        if origin not in self.origins:
            return f"The origin {origin} may not call this API from a browser."
        method = headers["access-control-request-method"]
        if method not in self._methods:
            allowed = ", ".join(ALLOWED_METHODS)
            return f"The method {method} is not allowed across origins (allowed: {allowed})."
        requested = headers.get("access-control-request-headers", "")
        for name in (part.strip() for part in requested.split(",")):
            if name and name.lower() not in self._headers:
                allowed = ", ".join(ALLOWED_HEADERS)
                return f"The request header {name} is not allowed (allowed: {allowed})."
        return None

    async def _preflight(
        self, scope: Scope, receive: Receive, send: Send, origin: str, headers: Headers
    ) -> None:
        reason = self._refusal_reason(origin, headers)
        if reason is not None:
            response = refusal(scope, RefusalCode.CORS_REFUSED, reason, {"vary": _PREFLIGHT_VARY})
            await response(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    (b"access-control-allow-origin", origin.encode("latin-1")),
                    (b"access-control-allow-methods", ", ".join(ALLOWED_METHODS).encode()),
                    (b"access-control-allow-headers", ", ".join(ALLOWED_HEADERS).encode()),
                    (b"access-control-max-age", str(MAX_AGE).encode()),
                    (b"vary", _PREFLIGHT_VARY.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

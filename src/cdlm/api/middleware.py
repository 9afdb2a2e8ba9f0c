"""ASGI middleware: request ids with access logs, the request body limit, and lazy database
start-up for Lambda."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cdlm.api.http_refusals import RefusalCode, error_document, refusal
from cdlm.core.logs import request_id_var

log = logging.getLogger("cdlm.access")

REQUEST_ID_HEADER = b"x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:+/=-]{8,128}$")  # API Gateway ids use base64


def _gateway_request_id(scope: Scope) -> str | None:
    event: Any = scope.get("aws.event")
    if isinstance(event, dict):
        from_gateway = (event.get("requestContext") or {}).get("requestId")
        if isinstance(from_gateway, str) and _VALID_REQUEST_ID.fullmatch(from_gateway):
            return from_gateway
    return None


def _client_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            candidate: str = bytes(value).decode("latin-1")
            return candidate if _VALID_REQUEST_ID.fullmatch(candidate) else None
    return None


def _internal_error_body(request_id: str) -> bytes:
    message = f"Internal server error (request id {request_id})."
    return json.dumps({"data": None, **error_document(message, "INTERNAL", request_id)}).encode()


class RequestContextMiddleware:
    """Give every request an id, log it, and turn anything unhandled into a masked 500.

    The id is the server's own (API Gateway's request id on Lambda, a new UUID elsewhere), so
    clients cannot choose the ids that audit entries carry; a well-formed ``X-Request-ID`` sent
    by the client is logged beside it as ``client_request_id`` for correlation. The id goes into
    the log context, the ASGI scope state and the ``X-Request-ID`` response header. One access
    log line is written per request with method, path, status and duration; never the query
    string, body, client address or user agent (they can hold personal data).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _gateway_request_id(scope) or str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.error("unhandled error", exc_info=True)
            if not response_started:
                body = _internal_error_body(request_id)
                await send_with_id(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send_with_id({"type": "http.response.body", "body": body})
        finally:
            log.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": logged_path(scope.get("path")),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "client_request_id": _client_request_id(scope),
                },
            )
            request_id_var.reset(token)


#: Paths whose last segment is a secret (download tokens): logged without it.
SECRET_PATH_PREFIXES = ("/exports/",)


def logged_path(path: str | None) -> str | None:
    """The path as the access log shows it: secrets in the path are replaced."""
    if path is not None:
        for prefix in SECRET_PATH_PREFIXES:
            if path.startswith(prefix):
                return f"{prefix}<redacted>"
    return path


class _BodyTooLarge(Exception):
    """The request body passed the limit while it was being read."""


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``max_bytes`` with HTTP 413 before they are read.

    A ``Content-Length`` over the limit is refused at once, before the application runs and
    without reading any of the body. A body of unknown length (chunked) is counted as it
    streams in and refused as soon as it passes the limit, so no more than the limit and one
    chunk is ever held. The refusal closes the connection, since the rest of the body is unread.
    (Starlette's own ``RequestBodyLimitMiddleware`` answers in plain text and lets the
    application start before it refuses a declared length.)
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _refuse(self, scope: Scope) -> Response:
        message = f"The request body is larger than {self.max_bytes} bytes."
        return refusal(scope, RefusalCode.BODY_TOO_LARGE, message, {"connection": "close"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope)(scope, receive, send)
            return
        if declared is not None and declared < 0:
            bad_length = "The Content-Length header is not a number of bytes."
            await refusal(scope, RefusalCode.BAD_REQUEST, bad_length)(scope, receive, send)
            return
        received = 0
        response_started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _BodyTooLarge:
            if response_started:
                raise
            await self._refuse(scope)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared body length; -1 when the header is not a number, None when it is absent."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            raw = bytes(value).strip()
            return int(raw) if raw.isdigit() else -1
    return None


class LazyStartupMiddleware:
    """Run ``startup`` once, before the first request (Lambda: once per warm container).

    Concurrent first requests wait for the same start-up; a failed start-up is retried by the
    next request instead of leaving the container broken.
    """

    def __init__(self, app: ASGIApp, startup: Callable[[], Awaitable[None]]) -> None:
        self.app = app
        self._startup = startup
        self._done = False
        self._lock: asyncio.Lock | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._done and scope["type"] == "http":
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if not self._done:
                    await self._startup()
                    self._done = True
        await self.app(scope, receive, send)

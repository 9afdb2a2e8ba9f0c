"""Requests refused before GraphQL runs, and the media type a GraphQL response is sent as.

Every refusal (a body that is too large, not UTF-8, not JSON or not one JSON object, the wrong
content type, an operation sent with GET, a cross-origin preflight that is not allowed...) is
answered with a JSON body of the GraphQL shape
``{"errors": [{"message": ..., "extensions": {"code": ..., "requestId": ...}}]}`` and no
``data`` entry, as the GraphQL over HTTP specification has request errors. The codes, and the
HTTP status of each, are kept here and nowhere else.
"""

from __future__ import annotations

import json
from enum import StrEnum

from cross_web import HTTPException
from starlette.responses import Response
from starlette.types import Scope

#: The GraphQL over HTTP media type; request errors sent as it are HTTP 4xx without ``data``.
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
#: The legacy media type: every GraphQL response, request errors included, is HTTP 200.
JSON = "application/json"


class RefusalCode(StrEnum):
    """Why a request was refused before GraphQL ran (``extensions.code``)."""

    BAD_REQUEST = "BAD_REQUEST"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    BODY_TOO_LARGE = "BODY_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    CORS_REFUSED = "CORS_REFUSED"

    @property
    def status(self) -> int:
        """The HTTP status of this refusal."""
        return _STATUS[self]

    @classmethod
    def for_status(cls, status: int) -> RefusalCode:
        """The code of a refusal answered with ``status`` (``BAD_REQUEST`` when none is)."""
        return next((code for code, known in _STATUS.items() if known == status), cls.BAD_REQUEST)


_STATUS = {
    RefusalCode.BAD_REQUEST: 400,
    RefusalCode.METHOD_NOT_ALLOWED: 405,
    RefusalCode.BODY_TOO_LARGE: 413,
    RefusalCode.UNSUPPORTED_MEDIA_TYPE: 415,
    RefusalCode.CORS_REFUSED: 403,
}


def refused(code: RefusalCode, message: str) -> HTTPException:
    """The exception that makes the GraphQL view refuse the request with ``code``."""
    return HTTPException(code.status, message)


def error_document(message: str, code: str, request_id: str | None) -> dict[str, object]:
    """``{"errors": [...]}`` with one error carrying ``code`` and the request id."""
    extensions: dict[str, object] = {"code": code}
    if request_id is not None:
        extensions["requestId"] = request_id
    return {"errors": [{"message": message, "extensions": extensions}]}


def _quality(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0


def response_media_type(accept: str | None) -> str:
    """The media type to answer a client sending ``Accept: accept`` with.

    ``application/graphql-response+json`` when the client names it (and prefers it at least as
    much as ``application/json``); otherwise ``application/json``, which is also the answer to
    a missing header and to wildcards such as ``*/*``.
    """
    wanted = {GRAPHQL_RESPONSE_JSON: 0.0, JSON: 0.0}
    for entry in (accept or "").split(","):
        media_range, _, parameters = entry.partition(";")
        media_range = media_range.strip().lower()
        if media_range in wanted:
            wanted[media_range] = max(wanted[media_range], _quality(parameters))
    preferred = 0 < wanted[GRAPHQL_RESPONSE_JSON] >= wanted[JSON]
    return GRAPHQL_RESPONSE_JSON if preferred else JSON


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            decoded: str = bytes(value).decode("latin-1")
            return decoded
    return None


def refusal(
    scope: Scope,
    code: RefusalCode,
    message: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """The response refusing the request of ``scope``, in the media type its client accepts.

    The request id is the one ``RequestContextMiddleware`` put in the scope.
    """
    request_id = scope.get("state", {}).get("request_id")
    body = json.dumps(error_document(message, code.value, request_id), separators=(",", ":"))
    return Response(
        body,
        status_code=code.status,
        headers=headers,
        media_type=response_media_type(_header(scope, b"accept")),
    )

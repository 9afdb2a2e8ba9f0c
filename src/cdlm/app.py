"""The ASGI application: ``/graphql`` (with GraphiQL) and ``/healthz``."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException, parse_content_type
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.base import BaseRequestProtocol
from strawberry.types import ExecutionResult

from cdlm.api import graphiql
from cdlm.api.context import Context
from cdlm.api.cors import CorsMiddleware
from cdlm.api.http_refusals import (
    GRAPHQL_RESPONSE_JSON,
    JSON,
    RefusalCode,
    refusal,
    refused,
    response_media_type,
)
from cdlm.api.middleware import BodyLimitMiddleware, LazyStartupMiddleware, RequestContextMiddleware
from cdlm.api.schema import CdlmSchema, create_schema
from cdlm.auth.settings import AuthSettings, auth_settings
from cdlm.config import Settings
from cdlm.core.errors import OperationErrorCode
from cdlm.core.text import text_problem
from cdlm.customers.attributes import check_enrichers
from cdlm.customers.survivorship import trust_table
from cdlm.db.lifecycle import close_orm, init_orm
from cdlm.dsr.downloads import export_download
from cdlm.dsr.notifier import Notifier, notifier_from
from cdlm.jobs import audit_sequencer
from cdlm.system.service import check_health
from cdlm.vault.keys import provider_from_settings
from cdlm.vault.service import Vault

log = logging.getLogger(__name__)

DatabaseMode = Literal["lifespan", "lazy", "external"]


def is_request_error(result: ExecutionResult) -> bool:
    """True when the operation never started: its document did not parse or validate (the
    depth, alias and token limits included) or its variables did not coerce.

    Those errors have no path; errors raised while fields resolved have one, and an internal
    error is never the request's fault.
    """
    if result.data is not None or not result.errors:
        return False
    return all(
        error.path is None and (error.extensions or {}).get("code") != OperationErrorCode.INTERNAL
        for error in result.errors
    )


class GraphQLApp(GraphQL[Context, None]):
    """Strawberry's ASGI view with cdlm's request context, speaking GraphQL over HTTP.

    Operations are POSTed as one JSON object (``application/json``, UTF-8); ``GET`` only serves
    GraphiQL. Everything refused before GraphQL runs is answered by :mod:`cdlm.api.http_refusals`
    (a JSON error document with a stable code) instead of Strawberry's plain text.

    A client accepting ``application/graphql-response+json`` gets its responses as that media
    type, and a request error (the document did not parse or validate, the variables did not
    coerce) as HTTP 400 without a ``data`` entry. Other clients (``application/json``, ``*/*``
    or no ``Accept``) get the legacy answer: HTTP 200 with ``"data": null``.
    """

    def __init__(
        self,
        schema: CdlmSchema,
        settings: Settings,
        auth: AuthSettings,
        vault: Vault,
        notifier: Notifier,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=False,
            multipart_uploads_enabled=False,
        )
        self.settings = settings
        self.auth = auth
        self.vault = vault
        self.notifier = notifier
        self.allowed_methods = "GET, POST" if settings.graphiql else "POST"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        try:
            response = await self.run(Request(scope, receive))
        except HTTPException as refused:
            code = RefusalCode.for_status(refused.status_code)
            allow = {"allow": self.allowed_methods}
            headers = allow if code is RefusalCode.METHOD_NOT_ALLOWED else None
            response = refusal(scope, code, refused.reason, headers)
        await response(scope, receive, send)

    def should_render_graphql_ide(self, request: BaseRequestProtocol) -> bool:
        # With GraphiQL off, a browser's GET is refused like any other GET (405, not 404).
        return self.graphql_ide is not None and super().should_render_graphql_ide(request)

    async def render_graphql_ide(self, request: Request) -> Response:
        # cdlm's page: everything from this package, under a strict policy (not a CDN's).
        return graphiql.page_response()

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        if request.method == "GET":
            raise refused(RefusalCode.METHOD_NOT_ALLOWED, "GraphQL operations are sent with POST.")
        media_type, parameters = parse_content_type(request.content_type or "")
        if media_type != JSON or parameters.get("charset", "utf-8").lower() != "utf-8":
            raise refused(
                RefusalCode.UNSUPPORTED_MEDIA_TYPE,
                "The request body must be application/json (UTF-8).",
            )
        parsed = await super().parse_http_body(request)
        if isinstance(parsed, GraphQLRequestData) and not isinstance(
            parsed.operation_name, str | None
        ):
            raise refused(
                RefusalCode.BAD_REQUEST,
                "The GraphQL operation's `operationName` must be a string or null, if provided.",
            )
        return parsed

    def encode_json(self, data: object) -> bytes:
        # orjson: a page of 50 customers encodes in 0.05 ms (0.6 ms with json).
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                raise refused(
                    RefusalCode.BAD_REQUEST, "The request body is not valid UTF-8."
                ) from None
        try:
            decoded = super().decode_json(data)
        except RecursionError:
            raise refused(
                RefusalCode.BAD_REQUEST, "The request body is nested too deeply."
            ) from None
        except json.JSONDecodeError:
            raise
        except ValueError:
            # Python reads integers of at most 4,300 digits (sys.get_int_max_str_digits).
            raise refused(
                RefusalCode.BAD_REQUEST, "The request body holds a number too long to read."
            ) from None
        if not isinstance(decoded, dict):
            raise refused(RefusalCode.BAD_REQUEST, "The request body must be a JSON object.")
        problem = text_problem(decoded)
        if problem is None and "\\u0000" in str(decoded.get("query") or ""):
            problem = "Text may not contain NUL characters."
        if problem is not None:
            # Refused at the door for every field, before any of it reaches the database.
            raise refused(RefusalCode.BAD_REQUEST, problem)
        return decoded

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        # Read back by create_response, which is not given the request.
        sub_response.media_type = response_media_type(request.headers.get("accept"))
        return sub_response

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        body = await super().process_result(request, result)
        accepted = response_media_type(request.headers.get("accept"))
        if accepted == GRAPHQL_RESPONSE_JSON and is_request_error(result):
            del body["data"]
        return body

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        if sub_response.media_type == GRAPHQL_RESPONSE_JSON:
            response.headers["content-type"] = GRAPHQL_RESPONSE_JSON
            if isinstance(response_data, dict) and "data" not in response_data:
                response.status_code = RefusalCode.BAD_REQUEST.status
        return response

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        assert isinstance(request, Request)
        assert isinstance(response, Response)
        context = Context(
            request=request,
            response=response,
            request_id=request.scope.get("state", {}).get("request_id", "unknown"),
            settings=self.settings,
            auth=self.auth,
            vault=self.vault,
            notifier=self.notifier,
        )
        await context.resolve_caller()
        return context


async def healthz(request: Request) -> Response:
    """Liveness and readiness: 200 when the database answers, 503 otherwise."""
    report = await check_health()
    body = {
        "status": "ok" if report.ok else "unavailable",
        "database": "ok" if report.database_reachable else "unreachable",
    }
    return JSONResponse(body, status_code=200 if report.ok else 503)


def create_app(
    settings: Settings,
    *,
    database: DatabaseMode = "external",
    schema: CdlmSchema | None = None,
    vault: Vault | None = None,
    notifier: Notifier | None = None,
) -> Starlette:
    """Build the application.

    ``database`` says who opens the ORM: ``lifespan`` (a local server: open at start-up, close at
    shut-down), ``lazy`` (Lambda: open on the first request, keep it for the warm container) or
    ``external`` (the caller has done it, as tests and the CLI do). It also says who chains
    pending read audit records (:mod:`cdlm.jobs.audit_sequencer`): a ``lifespan`` server in the
    background every second, a ``lazy`` one after requests that recorded reads. ``schema``
    replaces the cdlm schema (tests mount schemas of their own with the same conventions).
    ``notifier`` delivers messages to data subjects (default: the one ``CDLM_NOTIFIER`` names).
    """
    if database != "external" and settings.database is None:
        raise ValueError("create_app needs settings.database unless the caller opens the ORM")
    trust_table(settings.source_trust)  # a bad CDLM_SOURCE_TRUST stops the start, not a request
    check_enrichers()  # so does a bad CDLM_ENRICHERS

    async def open_database() -> None:
        assert settings.database is not None
        await init_orm(settings.database, settings)
        log.info("ORM initialised", extra={"database": settings.database.safe_description})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if database == "lifespan":
            await open_database()
        try:
            if database == "lifespan":  # a server: chain read audit records every second
                async with audit_sequencer.in_background():
                    yield
            else:
                yield
        finally:
            if database == "lifespan":
                await close_orm()

    # Outermost first: CORS labels every response to a listed origin, refusals and masked
    # errors included (and answers preflights without anything else running); every response
    # gets a request id; oversized bodies are refused before anything else runs (the database
    # start-up on Lambda included).
    middleware = [
        Middleware(RequestContextMiddleware),
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
    ]
    if settings.cors_origins:
        middleware.insert(0, Middleware(CorsMiddleware, origins=settings.cors_origins))
    if database == "lazy":
        middleware.append(Middleware(LazyStartupMiddleware, startup=open_database))
        # Lambda: nothing runs between invocations, so requests that recorded reads chain them.
        middleware.append(Middleware(audit_sequencer.ChainAfterReads))
    auth = auth_settings(settings)
    the_vault = vault or Vault(provider_from_settings(settings))
    graphql_app = GraphQLApp(
        schema or create_schema(settings),
        settings,
        auth,
        the_vault,
        notifier or notifier_from(settings),
    )
    routes = [
        # Every method reaches the view, so that others are refused in the same JSON shape.
        Route("/graphql", graphql_app),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/exports/{token}", export_download(the_vault, auth), methods=["GET"]),
    ]
    if settings.graphiql:
        routes.append(Route("/graphiql/{name}", graphiql.asset_endpoint, methods=["GET"]))
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)

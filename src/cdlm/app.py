"""The ASGI application: ``/graphql`` (with GraphiQL) and ``/healthz``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from cdlm.auth.settings import AuthSettings, auth_settings
from cdlm.config import Settings
from cdlm.customers.survivorship import trust_table
from cdlm.db.lifecycle import close_orm, init_orm
from cdlm.dsr.downloads import export_download
from cdlm.dsr.notifier import Notifier, notifier_from
from cdlm.graphql.context import Context
from cdlm.graphql.schema import CdlmSchema, create_schema
from cdlm.middleware import LazyStartupMiddleware, RequestContextMiddleware
from cdlm.system.service import check_health
from cdlm.text import text_problem
from cdlm.vault.keys import provider_from_settings
from cdlm.vault.service import Vault

log = logging.getLogger(__name__)

DatabaseMode = Literal["lifespan", "lazy", "external"]


class GraphQLApp(GraphQL[Context, None]):
    """Strawberry's ASGI view with cdlm's request context."""

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

    def decode_json(self, data: str | bytes) -> object:
        try:
            decoded = super().decode_json(data)
        except RecursionError:
            raise HTTPException(400, "The request body is nested too deeply.") from None
        if not isinstance(decoded, dict):
            raise HTTPException(400, "The request body must be a JSON object.")
        problem = text_problem(decoded)
        if problem is None and "\\u0000" in str(decoded.get("query") or ""):
            problem = "Text may not contain NUL characters."
        if problem is not None:
            # Refused at the door for every field, before any of it reaches the database.
            raise HTTPException(400, problem)
        return decoded

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        assert isinstance(request, Request)
        assert isinstance(response, Response)
        return Context(
            request=request,
            response=response,
            request_id=request.scope.get("state", {}).get("request_id", "unknown"),
            settings=self.settings,
            auth=self.auth,
            vault=self.vault,
            notifier=self.notifier,
        )


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
    ``external`` (the caller has done it, as tests and the CLI do). ``schema`` replaces the
    cdlm schema (tests mount schemas of their own with the same conventions). ``notifier``
    delivers messages to data subjects (default: the one ``CDLM_NOTIFIER`` names).
    """
    if database != "external" and settings.database is None:
        raise ValueError("create_app needs settings.database unless the caller opens the ORM")
    trust_table(settings.source_trust)  # a bad CDLM_SOURCE_TRUST stops the start, not a request

    async def open_database() -> None:
        assert settings.database is not None
        await init_orm(settings.database, settings)
        log.info("ORM initialised", extra={"database": settings.database.safe_description})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if database == "lifespan":
            await open_database()
        try:
            yield
        finally:
            if database == "lifespan":
                await close_orm()

    middleware = [Middleware(RequestContextMiddleware)]
    if database == "lazy":
        middleware.append(Middleware(LazyStartupMiddleware, startup=open_database))
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
        Route("/graphql", graphql_app, methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/exports/{token}", export_download(the_vault, auth), methods=["GET"]),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)

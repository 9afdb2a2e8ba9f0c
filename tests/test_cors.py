"""Cross-origin calls to ``/graphql`` (``CDLM_CORS_ORIGINS``), through the real ASGI app.

What a browser then makes of these answers is tested in a real Chromium in
``tests/test_cors_in_browser.py``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from cdlm.api.cors import CorsMiddleware
from cdlm.api.http_refusals import RefusalCode
from cdlm.api.middleware import RequestContextMiddleware
from cdlm.app import create_app
from cdlm.config import ConfigError, Settings, load_settings

ALLOWED = "https://privacy.example.com"
OTHER_ALLOWED = "http://localhost:3000"
REFUSED = "https://evil.example.net"
QUERY = {"query": "{ health { ok } }"}
SMALL_LIMIT = 16_384


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {
        name: value
        for name, value in response.headers.items()
        if name.startswith("access-control-")
    }


def vary(response: httpx.Response) -> set[str]:
    return {part.strip().lower() for part in response.headers.get("vary", "").split(",")}


def preflight(origin: str, method: str = "POST", headers: str | None = None) -> dict[str, str]:
    sent = {"origin": origin, "access-control-request-method": method}
    if headers is not None:
        sent["access-control-request-headers"] = headers
    return sent


@pytest.fixture
async def cors(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app that lets two origins call it, with a 16 KiB body limit."""
    app = create_app(
        replace(settings, cors_origins=(ALLOWED, OTHER_ALLOWED), max_body_bytes=SMALL_LIMIT)
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cdlm.test") as http:
        yield http


# --- the setting ------------------------------------------------------------------------------


def test_origins_are_read_exactly_and_unset_means_none() -> None:
    assert load_settings({}).cors_origins == ()
    assert load_settings({"CDLM_CORS_ORIGINS": " "}).cors_origins == ()
    settings = load_settings(
        {
            "CDLM_CORS_ORIGINS": "https://privacy.example.com, http://localhost:3000,"
            "https://privacy.example.com,http://127.0.0.1:8080,https://[::1]:8443"
        }
    )
    assert settings.cors_origins == (
        "https://privacy.example.com",
        "http://localhost:3000",
        "http://127.0.0.1:8080",
        "https://[::1]:8443",
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("*", "wildcards are not allowed"),
        ("https://*.example.com", "wildcards are not allowed"),
        ("https://privacy.example.com/", "an origin ends without a slash"),
        ("https://privacy.example.com/app", "an origin has no path"),
        ("https://privacy.example.com?x=1", "an origin has no path"),
        ("https://user@privacy.example.com", "an origin has no path"),
        ("privacy.example.com", "is not an origin"),
        ("ftp://privacy.example.com", "is not an origin"),
        ("null", "is not an origin"),
        ("https://", "is not an origin"),
        ("https://privacy_example.com", "is not an origin"),
        ("https://Privacy.example.com", "write it in lower case"),
        ("https://privacy.example.com:443", "leave out the default port"),
        ("http://localhost:80", "leave out the default port"),
        ("http://localhost:99999", "the port must be between 1 and 65535"),
        ("https://ok.example.com,https://bad.example.com/", "'https://bad.example.com/'"),
    ],
)
def test_a_malformed_origin_stops_the_start(value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"CDLM_CORS_ORIGINS": value})
    assert caught.value.variable == "CDLM_CORS_ORIGINS"
    assert problem in caught.value.problem


# --- preflights -------------------------------------------------------------------------------


async def test_a_preflight_from_a_listed_origin_is_allowed(cors: httpx.AsyncClient) -> None:
    response = await cors.options(
        "/graphql", headers=preflight(ALLOWED, headers="content-type,authorization,x-request-id")
    )
    assert response.status_code == 204
    assert response.content == b""
    assert cors_headers(response) == {
        "access-control-allow-origin": ALLOWED,
        "access-control-allow-methods": "POST",
        "access-control-allow-headers": "Authorization, Content-Type, X-Request-ID",
        "access-control-max-age": "7200",
    }
    assert {"origin", "access-control-request-headers"} <= vary(response)
    other = await cors.options("/graphql", headers=preflight(OTHER_ALLOWED))
    assert other.headers["access-control-allow-origin"] == OTHER_ALLOWED


@pytest.mark.parametrize(
    ("origin", "method", "headers", "reason"),
    [
        (REFUSED, "POST", "content-type", f"The origin {REFUSED} may not call"),
        ("null", "POST", None, "The origin null may not call"),
        (ALLOWED.upper(), "POST", None, "may not call"),
        (ALLOWED + ":443", "POST", None, "may not call"),
        (ALLOWED, "PUT", None, "The method PUT is not allowed"),
        (ALLOWED, "GET", None, "The method GET is not allowed"),
        (ALLOWED, "POST", "content-type, x-debug", "The request header x-debug is not allowed"),
        (ALLOWED, "POST", "cookie", "The request header cookie is not allowed"),
    ],
)
async def test_any_other_preflight_is_refused_without_cors_headers(
    cors: httpx.AsyncClient, origin: str, method: str, headers: str | None, reason: str
) -> None:
    response = await cors.options("/graphql", headers=preflight(origin, method, headers))
    assert response.status_code == 403
    assert cors_headers(response) == {}
    assert "origin" in vary(response)
    body: dict[str, Any] = response.json()
    assert set(body) == {"errors"}
    (error,) = body["errors"]
    assert error["extensions"]["code"] == RefusalCode.CORS_REFUSED.value
    assert reason in error["message"]


async def test_an_options_request_that_is_no_preflight_is_a_405(cors: httpx.AsyncClient) -> None:
    response = await cors.options("/graphql", headers={"origin": ALLOWED})
    assert response.status_code == 405
    assert response.headers["access-control-allow-origin"] == ALLOWED


# --- responses --------------------------------------------------------------------------------


async def test_a_listed_origin_may_read_the_response(cors: httpx.AsyncClient) -> None:
    response = await cors.post("/graphql", json=QUERY, headers={"origin": ALLOWED})
    assert response.status_code == 200
    assert response.json() == {"data": {"health": {"ok": True}}}
    assert cors_headers(response) == {
        "access-control-allow-origin": ALLOWED,
        "access-control-expose-headers": "X-Request-ID",
    }
    assert "origin" in vary(response)
    assert response.headers["x-request-id"]


async def test_another_origin_gets_the_answer_without_cors_headers(
    cors: httpx.AsyncClient,
) -> None:
    # The browser then withholds it from the page; callers outside browsers are unaffected.
    response = await cors.post("/graphql", json=QUERY, headers={"origin": REFUSED})
    assert response.status_code == 200
    assert cors_headers(response) == {}
    assert "origin" in vary(response)
    without = await cors.post("/graphql", json=QUERY)
    assert cors_headers(without) == {}
    assert "origin" in vary(without)


@pytest.mark.parametrize(
    ("request_kwargs", "status"),
    [
        ({"content": b"{", "headers": {"content-type": "application/json"}}, 400),
        ({"content": json.dumps(QUERY), "headers": {"content-type": "text/plain"}}, 415),
        (
            {"content": b"x" * (SMALL_LIMIT + 1), "headers": {"content-type": "application/json"}},
            413,
        ),
    ],
)
async def test_refusals_before_graphql_runs_are_readable_by_a_listed_origin(
    cors: httpx.AsyncClient, request_kwargs: dict[str, Any], status: int
) -> None:
    headers = {**request_kwargs.pop("headers"), "origin": ALLOWED}
    response = await cors.post("/graphql", headers=headers, **request_kwargs)
    assert response.status_code == status
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert response.headers["access-control-expose-headers"] == "X-Request-ID"
    assert (
        response.json()["errors"][0]["extensions"]["requestId"] == response.headers["x-request-id"]
    )


async def test_a_refused_method_is_readable_by_a_listed_origin(cors: httpx.AsyncClient) -> None:
    response = await cors.put("/graphql", json=QUERY, headers={"origin": ALLOWED})
    assert response.status_code == 405
    assert response.headers["access-control-allow-origin"] == ALLOWED


async def test_a_masked_internal_error_is_readable_by_a_listed_origin() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    app = CorsMiddleware(RequestContextMiddleware(broken), origins=(ALLOWED,))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cdlm.test") as http:
        response = await http.post("/graphql", json=QUERY, headers={"origin": ALLOWED})
    assert response.status_code == 500
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "boom" not in response.text


async def test_other_paths_are_not_served_across_origins(cors: httpx.AsyncClient) -> None:
    health = await cors.get("/healthz", headers={"origin": ALLOWED})
    assert cors_headers(health) == {}
    asked = await cors.options("/healthz", headers=preflight(ALLOWED))
    assert cors_headers(asked) == {}


async def test_without_origins_there_is_no_cors_at_all(client: httpx.AsyncClient) -> None:
    asked = await client.options("/graphql", headers=preflight(ALLOWED, headers="content-type"))
    assert asked.status_code == 405
    assert cors_headers(asked) == {}
    response = await client.post("/graphql", json=QUERY, headers={"origin": ALLOWED})
    assert response.status_code == 200
    assert cors_headers(response) == {}
    assert "origin" not in vary(response)

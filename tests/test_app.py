"""The ASGI app: routes, request ids, GraphiQL and introspection switches, query limits."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import httpx
import pytest

from cdlm.app import create_app
from cdlm.config import Settings
from cdlm.core.logs import JsonFormatter
from tests.conftest import GraphQLClient
from tests.support.schema import widget_schema


async def test_healthz_reports_database_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_health_query_round_trips_the_database(gql: GraphQLClient) -> None:
    body = await gql("{ health { ok databaseReachable checkedAt } }")
    health = body["data"]["health"]
    assert health["ok"] is True
    assert health["databaseReachable"] is True


async def test_request_id_is_generated_and_returned(client: httpx.AsyncClient) -> None:
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    assert len(first.headers["x-request-id"]) == 36
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_client_request_id_is_logged_beside_the_servers_own(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="cdlm.access"):
        response = await client.get("/healthz", headers={"X-Request-ID": "frontend-abc-12345"})
    assert response.headers["x-request-id"] != "frontend-abc-12345"
    (record,) = [r for r in caplog.records if r.name == "cdlm.access"]
    assert record.__dict__["client_request_id"] == "frontend-abc-12345"
    assert record.__dict__["request_id"] == response.headers["x-request-id"]


async def test_malformed_client_request_id_is_not_logged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="cdlm.access"):
        await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    (record,) = [r for r in caplog.records if r.name == "cdlm.access"]
    assert record.__dict__["client_request_id"] is None


@pytest.mark.parametrize("body", ["null", '"a string"', "42", "[1, 2]", "{not json"])
async def test_non_object_bodies_are_a_400_with_request_id(
    client: httpx.AsyncClient, body: str
) -> None:
    response = await client.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"] == {
        "code": "BAD_REQUEST",
        "requestId": response.headers["x-request-id"],
    }


async def test_unhandled_error_is_a_masked_500_with_request_id(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings)

    async def crash(request: object) -> None:
        raise RuntimeError("row for jane.doe@example.com")

    app.add_route("/crash", crash)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://cdlm.test") as http:
        with caplog.at_level(logging.INFO):
            response = await http.get("/crash")
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert response.json()["errors"][0]["extensions"] == {
        "code": "INTERNAL",
        "requestId": request_id,
    }
    assert "jane.doe" not in response.text
    (logged,) = [r for r in caplog.records if r.levelname == "ERROR"]
    line = JsonFormatter().format(logged)
    assert "RuntimeError" in line
    assert "jane.doe" not in line


async def test_graphiql_is_served_to_browsers(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_queries_over_get_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": "{ health { ok } }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "errors": [
            {
                "message": "GraphQL operations are sent with POST.",
                "extensions": {
                    "code": "METHOD_NOT_ALLOWED",
                    "requestId": response.headers["x-request-id"],
                },
            }
        ]
    }


async def test_graphiql_and_introspection_can_be_switched_off(settings: Settings) -> None:
    locked = replace(settings, graphiql=False, introspection=False)
    transport = httpx.ASGITransport(app=create_app(locked))
    async with httpx.AsyncClient(transport=transport, base_url="http://cdlm.test") as http:
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert "graphiql" not in page.text.lower()
        body = (
            await http.post("/graphql", json={"query": "{ __schema { types { name } } }"})
        ).json()
        assert body.get("data") is None
        assert "introspection" in body["errors"][0]["message"].lower()
        ok = (await http.post("/graphql", json={"query": "{ health { ok } }"})).json()
        assert ok["data"]["health"]["ok"] is True


async def test_introspection_works_when_enabled(gql: GraphQLClient) -> None:
    body = await gql("{ __schema { queryType { name } } }")
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_query_depth_is_limited(settings: Settings) -> None:
    shallow = replace(settings, max_query_depth=2)
    transport = httpx.ASGITransport(app=create_app(shallow, schema=widget_schema(shallow)))
    async with httpx.AsyncClient(transport=transport, base_url="http://cdlm.test") as http:
        allowed = "{ widgets { pageInfo { hasNextPage } } }"
        assert "errors" not in (await http.post("/graphql", json={"query": allowed})).json()
        deep = "{ widgets { edges { node { name } } } }"
        body = (await http.post("/graphql", json={"query": deep})).json()
    assert body.get("data") is None
    assert "exceeds maximum operation depth of 2" in body["errors"][0]["message"]


async def test_aliases_are_limited(gql: GraphQLClient, settings: Settings) -> None:
    aliases = " ".join(f"a{i}: health {{ ok }}" for i in range(settings.max_aliases + 1))
    body = await gql(f"{{ {aliases} }}")
    assert body.get("data") is None
    assert "aliases" in body["errors"][0]["message"].lower()


async def test_tokens_are_limited(gql: GraphQLClient, settings: Settings) -> None:
    fields = " ".join("ok" for _ in range(settings.max_tokens))
    body = await gql(f"{{ health {{ {fields} }} }}")
    assert body.get("data") is None
    assert "token" in body["errors"][0]["message"].lower()


async def test_access_log_has_no_query_string_or_client_address(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="cdlm.access"):
        response = await client.get("/healthz?email=jane.doe@example.com")
    records = [r for r in caplog.records if r.name == "cdlm.access"]
    assert len(records) == 1
    record = records[0]
    assert record.__dict__["path"] == "/healthz"
    assert record.__dict__["status"] == 200
    line = JsonFormatter().format(record)
    assert "jane.doe" not in line
    assert "127.0.0.1" not in line
    assert json.loads(line)["request_id"] == response.headers["x-request-id"]

"""The real Lambda handler with API Gateway events: cold start then warm invocations."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cdlm.config import DatabaseTarget
from tests.support.lambda_invoke import LambdaContainer, http_api_v2_event, rest_api_v1_event

QUERY = {"query": "{ health { ok databaseReachable } }"}

EventFactory = Callable[..., dict[str, Any]]


@pytest.fixture
def container(database: DatabaseTarget) -> Iterator[LambdaContainer]:
    lambda_container = LambdaContainer(database)
    yield lambda_container
    lambda_container.close()


@pytest.mark.parametrize("make_event", [http_api_v2_event, rest_api_v1_event])
def test_cold_then_warm_invocation_answers_and_starts_the_database_once(
    container: LambdaContainer, make_event: EventFactory
) -> None:
    for expected_startups in (1, 1):
        response, startups = container.invoke(make_event(QUERY))
        assert response["statusCode"] == 200
        body = json.loads(response["body"])
        assert body == {"data": {"health": {"ok": True, "databaseReachable": True}}}
        assert startups == expected_startups


def test_request_id_comes_from_api_gateway(container: LambdaContainer) -> None:
    event = http_api_v2_event(QUERY)
    response, _ = container.invoke(event)
    assert response["headers"]["x-request-id"] == event["requestContext"]["requestId"]


def test_healthz_through_lambda(container: LambdaContainer) -> None:
    response, _ = container.invoke(http_api_v2_event({}, path="/healthz", method="GET"))
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["database"] == "ok"


def test_export_links_are_served_through_lambda(container: LambdaContainer) -> None:
    unknown = "/exports/cdlm_dl_0123456789abcdef_" + "x" * 43
    for path in ("/exports/nonsense", unknown):
        response, _ = container.invoke(http_api_v2_event({}, path=path, method="GET"))
        assert response["statusCode"] == 404
        assert response["headers"]["cache-control"] == "no-store"
        assert "unknown, expired or used up" in json.loads(response["body"])["error"]


def test_graphql_errors_come_back_as_graphql(container: LambdaContainer) -> None:
    response, _ = container.invoke(rest_api_v1_event({"query": "{ nope }"}))
    body = json.loads(response["body"])
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_explorer_is_off_in_production(database: DatabaseTarget) -> None:
    production = LambdaContainer(
        database, {"CDLM_ENV": "production", "CDLM_NOTIFY_FROM": "privacy@example.com"}
    )
    try:
        introspection = {"query": "{ __schema { queryType { name } } }"}
        response, _ = production.invoke(http_api_v2_event(introspection))
        assert "introspection" in json.loads(response["body"])["errors"][0]["message"].lower()
        page, _ = production.invoke(
            http_api_v2_event({}, method="GET", headers={"accept": "text/html"})
        )
        assert "graphiql" not in page["body"].lower()
    finally:
        production.close()


def test_bad_configuration_fails_the_container_with_one_line(database: DatabaseTarget) -> None:
    broken = LambdaContainer(database, {"CDLM_PORT": "not-a-port"})
    with pytest.raises(RuntimeError) as caught:
        broken.invoke(http_api_v2_event(QUERY))
    logged = broken.close()
    assert "cdlm: configuration error: CDLM_PORT: must be a whole number" in str(caught.value)
    assert "Traceback" not in logged

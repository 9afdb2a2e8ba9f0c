"""The real Lambda handler with API Gateway events: cold start then warm invocations."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cdlm.config import DatabaseTarget
from tests.support.lambda_invoke import (
    DEFERRED,
    ROOT,
    LambdaContainer,
    cdlm_env,
    database_url,
    http_api_v2_event,
    rest_api_v1_event,
    run_python,
)

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


def _body(response: dict[str, Any]) -> Any:
    raw = response["body"]
    return json.loads(base64.b64decode(raw) if response.get("isBase64Encoded") else raw)


def test_refusals_through_lambda_are_graphql_shaped_json(database: DatabaseTarget) -> None:
    small = LambdaContainer(database, {"CDLM_MAX_BODY_BYTES": "16384"})
    try:
        declared = http_api_v2_event({"query": "{ health { ok } }", "pad": "x" * 20_000})
        declared["headers"]["content-length"] = str(len(declared["body"]))
        response, startups = small.invoke(declared)
        assert response["statusCode"] == 413
        assert startups == 0  # refused before the cold container opened its database
        too_large = http_api_v2_event({"query": "{ health { ok } }", "pad": "x" * 20_000})
        response, _ = small.invoke(too_large)  # no Content-Length: counted as it is read
        assert response["statusCode"] == 413
        assert _body(response)["errors"][0]["extensions"] == {
            "code": "BODY_TOO_LARGE",
            "requestId": too_large["requestContext"]["requestId"],
        }

        not_utf8 = http_api_v2_event({})
        not_utf8.update(body=base64.b64encode(b'{"query": "\xff"}').decode(), isBase64Encoded=True)
        response, _ = small.invoke(not_utf8)
        assert response["statusCode"] == 400
        assert response["headers"]["content-type"] == "application/json"
        assert _body(response)["errors"][0]["extensions"]["code"] == "BAD_REQUEST"

        huge_number = http_api_v2_event({})
        huge_number["body"] = '{"query": "{ health { ok } }", "variables": {"n": %s}}' % (
            "9" * 5_000
        )
        response, _ = small.invoke(huge_number)
        assert response["statusCode"] == 400
        assert _body(response)["errors"][0] == {
            "message": "The request body holds a number too long to read.",
            "extensions": {
                "code": "BAD_REQUEST",
                "requestId": huge_number["requestContext"]["requestId"],
            },
        }
    finally:
        small.close()


def test_graphql_response_json_through_lambda(container: LambdaContainer) -> None:
    accept = {"accept": "application/graphql-response+json"}
    response, _ = container.invoke(http_api_v2_event({"query": "{ nope }"}, headers=accept))
    assert response["statusCode"] == 400
    assert response["headers"]["content-type"] == "application/graphql-response+json"
    assert response["isBase64Encoded"] is False  # JSON text, like application/json
    body = _body(response)
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    response, _ = container.invoke(http_api_v2_event(QUERY, headers=accept))
    assert response["statusCode"] == 200
    assert _body(response) == {"data": {"health": {"ok": True, "databaseReachable": True}}}


def test_a_first_health_check_loads_no_library_it_does_not_need(
    database: DatabaseTarget, tmp_path: Path
) -> None:
    probe = (
        "import sys\n"
        "from cdlm.lambda_handler import handler\n"
        "from tests.support.lambda_invoke import http_api_v2_event\n"
        f"response = handler(http_api_v2_event({QUERY!r}), None)\n"
        "assert response['statusCode'] == 200, response\n"
        f"print(sorted(m for m in {DEFERRED!r} if m in sys.modules))"
    )
    env = {
        "DATABASE_URL": database_url(database),
        "CDLM_ENV": "test",
        "CDLM_TOKEN_SECRET": "lambda-token-secret-" + "y" * 32,
        "CDLM_DATA_DIR": str(tmp_path),
        "CDLM_LOG_LEVEL": "WARNING",
    }
    result = run_python(probe, env)
    assert result.returncode == 0, result.stderr[-1500:]
    assert result.stdout.strip() == "[]"


def test_the_migrate_function_migrates_as_the_owner(
    database: DatabaseTarget, owner_database: DatabaseTarget
) -> None:
    """The API's role may not change the schema; the migrate function uses the owner's URL."""
    call = "from cdlm.lambda_handler import migrate; print(migrate({}, None))"
    env = {
        "DATABASE_URL": database_url(database),
        "CDLM_ENV": "test",
        "CDLM_TOKEN_SECRET": "lambda-token-secret-" + "y" * 32,
    }
    as_owner = subprocess.run(
        [sys.executable, "-c", call],
        cwd=ROOT,
        env=cdlm_env(**env, CDLM_DATABASE_OWNER_URL=database_url(owner_database)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert as_owner.returncode == 0, as_owner.stderr
    assert as_owner.stdout == "{'applied': []}\n"
    as_app = subprocess.run(
        [sys.executable, "-c", call],
        cwd=ROOT,
        env=cdlm_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert as_app.returncode != 0
    assert "may not change the schema" in as_app.stderr

"""HTTP in front of GraphQL: the body limit, refusals before GraphQL runs, GraphQL over HTTP.

Every case goes through the real ASGI app. The GraphQL over HTTP cases are the ones the
``graphql-http`` server audit checks (``python -m bench.graphql_http_audit`` runs the audit
itself against a real server).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from cdlm.api.http_refusals import RefusalCode, response_media_type
from cdlm.app import create_app
from cdlm.config import ConfigError, Settings, load_settings

GRAPHQL_RESPONSE = "application/graphql-response+json"
SMALL_LIMIT = 16_384
CHUNK = 4096


def assert_refusal(response: httpx.Response, status: int, code: RefusalCode) -> dict[str, Any]:
    """``response`` refuses with ``status`` and a GraphQL-shaped JSON body carrying ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"errors"}
    (error,) = body["errors"]
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["extensions"] == {
        "code": code.value,
        "requestId": response.headers["x-request-id"],
    }
    return body


@pytest.fixture
async def small(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app whose body limit is 16 KiB."""
    app = create_app(replace(settings, max_body_bytes=SMALL_LIMIT))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cdlm.test") as http:
        yield http


class Streamed:
    """A request body sent in chunks of 4 KiB, counting how many the server asked for."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            self.sent += CHUNK
            yield b" " * CHUNK


def padded_query(size: int) -> bytes:
    """A valid GraphQL request of exactly ``size`` bytes."""
    head = b'{"query": "{ health { ok } }", "variables": {"pad": "'
    tail = b'"}}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


# --- the body limit -------------------------------------------------------------------------


def test_the_body_limit_is_a_validated_setting() -> None:
    assert load_settings({}).max_body_bytes == 1_048_576
    assert load_settings({"CDLM_MAX_BODY_BYTES": "65536"}).max_body_bytes == 65536
    for bad in ("100", "lots", "1e9"):
        with pytest.raises(ConfigError) as caught:
            load_settings({"CDLM_MAX_BODY_BYTES": bad})
        assert caught.value.variable == "CDLM_MAX_BODY_BYTES"


async def test_a_declared_length_over_the_limit_is_refused_without_reading_the_body(
    small: httpx.AsyncClient,
) -> None:
    body = Streamed(SMALL_LIMIT * 4)
    response = await small.post(
        "/graphql",
        content=body,
        headers={"content-type": "application/json", "content-length": str(body.total)},
    )
    assert_refusal(response, 413, RefusalCode.BODY_TOO_LARGE)
    assert body.sent == 0
    assert response.headers["connection"] == "close"


async def test_a_body_of_unknown_length_is_refused_once_it_passes_the_limit(
    small: httpx.AsyncClient,
) -> None:
    body = Streamed(1024 * 1024)
    response = await small.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    assert_refusal(response, 413, RefusalCode.BODY_TOO_LARGE)
    # The reading stopped with the chunk that passed the limit, not at the end of the body.
    assert body.sent == SMALL_LIMIT + CHUNK


async def test_a_body_at_the_limit_is_served(small: httpx.AsyncClient) -> None:
    response = await small.post(
        "/graphql",
        content=padded_query(SMALL_LIMIT),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"health": {"ok": True}}}
    over = await small.post(
        "/graphql",
        content=padded_query(SMALL_LIMIT + 1),
        headers={"content-type": "application/json"},
    )
    assert_refusal(over, 413, RefusalCode.BODY_TOO_LARGE)


async def test_the_default_limit_refuses_a_large_anonymous_body(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/graphql",
        content=padded_query(1_048_577),
        headers={"content-type": "application/json"},
    )
    assert_refusal(response, 413, RefusalCode.BODY_TOO_LARGE)


async def test_a_malformed_content_length_is_a_400(small: httpx.AsyncClient) -> None:
    response = await small.post(
        "/graphql",
        content=Streamed(CHUNK),
        headers={"content-type": "application/json", "content-length": "-5"},
    )
    assert_refusal(response, 400, RefusalCode.BAD_REQUEST)


# --- refusals before GraphQL runs -----------------------------------------------------------

JSON_TYPE = {"content-type": "application/json"}

REFUSED_POSTS = [
    pytest.param(b"\xff\xfe{}", JSON_TYPE, 400, RefusalCode.BAD_REQUEST, id="invalid-utf8"),
    pytest.param(
        b'{"query": "{ health { ok } }", "x": "caf\xe9"}',
        JSON_TYPE,
        400,
        RefusalCode.BAD_REQUEST,
        id="latin1-bytes",
    ),
    pytest.param(b'{ "not a JSON', JSON_TYPE, 400, RefusalCode.BAD_REQUEST, id="bad-json"),
    pytest.param(b"", JSON_TYPE, 400, RefusalCode.BAD_REQUEST, id="empty-body"),
    pytest.param(b"null", JSON_TYPE, 400, RefusalCode.BAD_REQUEST, id="non-object"),
    pytest.param(
        b'[{"query": "{ health { ok } }"}]', JSON_TYPE, 400, RefusalCode.BAD_REQUEST, id="batch"
    ),
    pytest.param(
        b"[" * 100_000 + b"]" * 100_000, JSON_TYPE, 400, RefusalCode.BAD_REQUEST, id="too-deep"
    ),
    pytest.param(
        b'{"query": "{ health { ok } }", "variables": {"n": ' + b"9" * 4_301 + b"}}",
        JSON_TYPE,
        400,
        RefusalCode.BAD_REQUEST,
        id="integer-of-4301-digits",
    ),
    pytest.param(
        b'{"query": "{ health { ok } }", "variables": {"a": "x\\u0000y"}}',
        JSON_TYPE,
        400,
        RefusalCode.BAD_REQUEST,
        id="nul-character",
    ),
    pytest.param(b'{"variables": {}}', JSON_TYPE, 400, RefusalCode.BAD_REQUEST, id="no-query"),
    pytest.param(b'{"query": 0}', JSON_TYPE, 400, RefusalCode.BAD_REQUEST, id="number-query"),
    pytest.param(
        b'{"query": "{ health { ok } }", "operationName": {"obj": "ect"}}',
        JSON_TYPE,
        400,
        RefusalCode.BAD_REQUEST,
        id="object-operation-name",
    ),
    pytest.param(
        b'{"query": "{ health { ok } }", "variables": "string"}',
        JSON_TYPE,
        400,
        RefusalCode.BAD_REQUEST,
        id="string-variables",
    ),
    pytest.param(
        b'{"query": "{ health { ok } }"}',
        {"content-type": "text/plain"},
        415,
        RefusalCode.UNSUPPORTED_MEDIA_TYPE,
        id="text-plain",
    ),
    pytest.param(
        b'{"query": "{ health { ok } }"}',
        {},
        415,
        RefusalCode.UNSUPPORTED_MEDIA_TYPE,
        id="no-content-type",
    ),
    pytest.param(
        b'{"query": "{ health { ok } }"}',
        {"content-type": "application/jsonx"},
        415,
        RefusalCode.UNSUPPORTED_MEDIA_TYPE,
        id="lookalike-type",
    ),
    pytest.param(
        b'{"query": "{ health { ok } }"}',
        {"content-type": "application/json; charset=latin-1"},
        415,
        RefusalCode.UNSUPPORTED_MEDIA_TYPE,
        id="other-charset",
    ),
]


@pytest.mark.parametrize(("body", "headers", "status", "code"), REFUSED_POSTS)
async def test_refused_posts_answer_with_a_graphql_shaped_json_error(
    client: httpx.AsyncClient,
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: RefusalCode,
) -> None:
    response = await client.post("/graphql", content=body, headers=headers)
    assert_refusal(response, status, code)


async def test_an_integer_too_long_to_read_is_refused_with_a_message(
    client: httpx.AsyncClient,
) -> None:
    body = b'{"query": "query($n: Int) { health { ok } }", "variables": {"n": ' + b"1" * 5_000
    response = await client.post("/graphql", content=body + b"}}", headers=JSON_TYPE)
    assert_refusal(response, 400, RefusalCode.BAD_REQUEST)
    assert response.json()["errors"][0]["message"] == (
        "The request body holds a number too long to read."
    )
    # 4,300 digits is Python's limit: a number that long is read (and refused by GraphQL).
    body = b'{"query": "query($n: Int) { health { ok } }", "variables": {"n": ' + b"1" * 4_300
    response = await client.post("/graphql", content=body + b"}}", headers=JSON_TYPE)
    assert response.status_code in (200, 400)
    assert response.json()["errors"][0]["extensions"]["code"] != "INTERNAL"


async def test_a_utf8_body_with_an_explicit_charset_is_served(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        content='{"query": "{ __type(name: \\"Run🏃Swim🏊\\") { name } }"}'.encode(),
        headers={"content-type": "application/json; charset=UTF-8"},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"__type": None}}


@pytest.mark.parametrize(
    "params",
    [{"query": "{ health { ok } }"}, {"query": "mutation { logout { __typename } }"}, {}],
)
async def test_operations_over_get_are_a_405(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get("/graphql", params=params, headers={"accept": "application/json"})
    assert_refusal(response, 405, RefusalCode.METHOD_NOT_ALLOWED)
    assert response.headers["allow"] == "GET, POST"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_other_methods_are_a_405_in_the_same_shape(
    client: httpx.AsyncClient, method: str
) -> None:
    response = await client.request(
        method, "/graphql", json={"query": "{ health { ok } }"}, headers={"accept": "*/*"}
    )
    assert_refusal(response, 405, RefusalCode.METHOD_NOT_ALLOWED)


async def test_without_graphiql_a_browser_get_is_a_405(settings: Settings) -> None:
    app = create_app(replace(settings, graphiql=False))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cdlm.test") as http:
        response = await http.get("/graphql", headers={"accept": "text/html"})
    assert_refusal(response, 405, RefusalCode.METHOD_NOT_ALLOWED)
    assert response.headers["allow"] == "POST"


async def test_a_refusal_uses_the_media_type_the_client_accepts(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/graphql", content=b"[]", headers={**JSON_TYPE, "accept": GRAPHQL_RESPONSE}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


# --- GraphQL over HTTP: application/graphql-response+json -----------------------------------

PARSE_FAILURE = {"query": "{"}
VALIDATION_FAILURE = {"query": "{ 8f31403dfe404bccbb0e835f2629c6a7 }"}
TOO_MANY_ALIASES = {"query": "{ " + " ".join(f"a{i}: __typename" for i in range(31)) + " }"}
COERCION_FAILURE = {
    "query": "query CoerceFailure($id: ID!){ __typename }",
    "variables": {"id": None},
}


@pytest.mark.parametrize(
    "accept",
    [
        GRAPHQL_RESPONSE,
        f"{GRAPHQL_RESPONSE}, application/json;q=0.9",
        "application/json, application/graphql-response+json",
    ],
)
async def test_graphql_response_json_is_answered_when_accepted(
    client: httpx.AsyncClient, accept: str
) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"accept": accept}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    "request_body",
    [
        pytest.param(PARSE_FAILURE, id="parse"),
        pytest.param(VALIDATION_FAILURE, id="validation"),
        pytest.param(COERCION_FAILURE, id="variable-coercion"),
        pytest.param(TOO_MANY_ALIASES, id="alias-limit"),
    ],
)
async def test_request_errors_are_a_400_without_data_in_graphql_response_json(
    client: httpx.AsyncClient, request_body: dict[str, Any]
) -> None:
    response = await client.post(
        "/graphql", json=request_body, headers={"accept": GRAPHQL_RESPONSE}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["message"]


@pytest.mark.parametrize("accept", ["application/json", "*/*", None])
@pytest.mark.parametrize(
    "request_body",
    [
        pytest.param(PARSE_FAILURE, id="parse"),
        pytest.param(VALIDATION_FAILURE, id="validation"),
        pytest.param(COERCION_FAILURE, id="variable-coercion"),
    ],
)
async def test_request_errors_stay_a_200_with_null_data_in_legacy_json(
    client: httpx.AsyncClient, request_body: dict[str, Any], accept: str | None
) -> None:
    content = json.dumps(request_body).encode()
    headers = {"content-type": "application/json", **({"accept": accept} if accept else {})}
    request = client.build_request("POST", "/graphql", content=content, headers=headers)
    if accept is None:
        del request.headers["accept"]
    response = await client.send(request)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["data"] is None
    assert body["errors"]


async def test_execution_errors_keep_data_and_a_200_in_graphql_response_json(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": "{ viewer { role } }"},
        headers={"accept": GRAPHQL_RESPONSE, "authorization": "Bearer cdlm_nope_nope"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    body = response.json()
    assert "data" in body
    assert body["data"] is None
    assert body["errors"][0]["path"] == ["viewer"]
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("", "application/json"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        ("text/html", "application/json"),
        ("application/json", "application/json"),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        ("Application/GraphQL-Response+JSON", GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, application/json", "application/json"),
        (f"{GRAPHQL_RESPONSE};q=0, */*", "application/json"),
        (f"{GRAPHQL_RESPONSE};q=oops", "application/json"),
    ],
)
def test_media_type_negotiation(accept: str | None, expected: str) -> None:
    assert response_media_type(accept) == expected

"""The error convention: UserError results, top-level codes, masking of unexpected errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from cdlm.app import create_app
from cdlm.config import Settings
from cdlm.core.errors import (
    Conflict,
    DomainError,
    ErrorCode,
    FieldIssue,
    InvalidStateTransition,
    NotFound,
    PolicyViolation,
    RateLimited,
    ValidationFailed,
)
from cdlm.core.logs import JsonFormatter
from cdlm.graphql import errors as gql_errors
from tests.conftest import GraphQLClient
from tests.support.schema import widget_schema


@pytest.fixture
async def widgets(settings: Settings) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=create_app(settings, schema=widget_schema(settings)))
    async with httpx.AsyncClient(transport=transport, base_url="http://cdlm.test") as http:
        yield GraphQLClient(http)


CREATE = """
mutation Create($name: String!, $rank: Int!) {
  createWidget(name: $name, rank: $rank) {
    __typename
    ... on WidgetCreated { widget { id name rank } }
    ... on UserError { message code field }
    ... on ValidationError { issues { field code message } }
  }
}
"""


@pytest.mark.parametrize(
    ("error", "expected_type"),
    [
        (NotFound("No such customer.", field="id"), gql_errors.NotFoundError),
        (Conflict("Already exists."), gql_errors.ConflictError),
        (InvalidStateTransition("Request is closed."), gql_errors.InvalidStateError),
        (PolicyViolation("Customer is under legal hold."), gql_errors.PolicyViolationError),
        (RateLimited("Too many attempts."), gql_errors.RateLimitedError),
        (ValidationFailed("Bad email.", field="input.email"), gql_errors.ValidationError),
    ],
)
def test_each_domain_error_maps_to_its_user_error(
    error: ValidationFailed, expected_type: type
) -> None:
    mapped = gql_errors.user_error(error)
    assert type(mapped) is expected_type
    assert mapped.message == error.message
    assert mapped.code == error.code
    assert mapped.field == error.field


def test_subclass_of_a_domain_error_maps_like_its_parent() -> None:
    class CustomerNotFound(NotFound):
        pass

    mapped = gql_errors.user_error(CustomerNotFound("No such customer."))
    assert isinstance(mapped, gql_errors.NotFoundError)


def test_single_field_validation_error_lists_that_field_as_issue() -> None:
    mapped = gql_errors.user_error(ValidationFailed("Bad email.", field="input.email"))
    assert isinstance(mapped, gql_errors.ValidationError)
    assert [(i.field, i.code) for i in mapped.issues] == [("input.email", ErrorCode.VALIDATION)]


def test_from_issues_needs_issues() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ValidationFailed.from_issues([])


async def test_success_result(widgets: GraphQLClient) -> None:
    body = await widgets(CREATE, {"name": "alpha", "rank": 3})
    result = body["data"]["createWidget"]
    assert result["__typename"] == "WidgetCreated"
    assert result["widget"]["name"] == "alpha"


async def test_every_invalid_field_is_reported_at_once(widgets: GraphQLClient) -> None:
    body = await widgets(CREATE, {"name": "  ", "rank": 500})
    result = body["data"]["createWidget"]
    assert result["__typename"] == "ValidationError"
    assert result["code"] == "VALIDATION"
    assert result["field"] == "input.name"
    assert [i["field"] for i in result["issues"]] == ["input.name", "input.rank"]
    assert "errors" not in body


async def test_conflict_is_data_and_nothing_is_written(widgets: GraphQLClient) -> None:
    await widgets(CREATE, {"name": "alpha", "rank": 3})
    body = await widgets(CREATE, {"name": "alpha", "rank": 9})
    result = body["data"]["createWidget"]
    assert result == {
        "__typename": "ConflictError",
        "message": "A widget with this name exists.",
        "code": "CONFLICT",
        "field": "input.name",
    }
    listing = await widgets("{ widgets { nodes { name rank } } }")
    assert listing["data"]["widgets"]["nodes"] == [{"name": "alpha", "rank": 3}]


async def test_unexpected_error_is_masked_with_request_id_and_logged(
    widgets: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="cdlm.graphql"):
        response = await widgets.http.post("/graphql", json={"query": "{ boom }"})
    request_id = response.headers["x-request-id"]
    error = response.json()["errors"][0]
    assert error["message"] == f"Internal server error (request id {request_id})."
    assert error["extensions"] == {"code": "INTERNAL", "requestId": request_id}
    assert "jane.doe" not in response.text
    logged = [r for r in caplog.records if r.name == "cdlm.graphql" and r.levelname == "ERROR"]
    assert len(logged) == 1
    line = JsonFormatter().format(logged[0])
    assert f'"request_id":"{request_id}"' in line
    assert "RuntimeError" in line  # the detail goes to the log, where operators look...
    assert "jane.doe" not in line  # ...but not the message, which may quote personal data


async def test_bad_variable_is_a_validation_error_not_a_masked_one(
    widgets: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    query = "query($first: Int) { widgets(first: $first) { nodes { name } } }"
    with caplog.at_level(logging.INFO):
        body = await widgets(query, {"first": "jane.doe@example.com"})
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "jane.doe" not in caplog.text


def test_unmapped_domain_error_is_a_programming_error() -> None:
    class Strange(DomainError):
        pass

    with pytest.raises(TypeError, match="no UserError type for Strange"):
        gql_errors.user_error(Strange("?"))


async def test_permission_errors_are_top_level_with_code(widgets: GraphQLClient) -> None:
    body = await widgets("{ forbidden }")
    error = body["errors"][0]
    assert error["message"] == "You may not do this."
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["path"] == ["forbidden"]


async def test_domain_error_in_a_query_is_top_level_with_code_and_field(
    widgets: GraphQLClient,
) -> None:
    body = await widgets('{ widgets(after: "not-a-cursor") { nodes { name } } }')
    error = body["errors"][0]
    assert error["extensions"]["code"] == "INVALID_CURSOR"
    assert error["extensions"]["field"] == "after"


def test_field_issue_is_frozen() -> None:
    issue = FieldIssue("input.email", ErrorCode.VALIDATION, "Bad email.")
    with pytest.raises(AttributeError):
        issue.field = "x"  # type: ignore[misc]

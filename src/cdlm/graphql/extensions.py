"""Schema extensions: error masking and logging of unexpected errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.error import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext
from strawberry.types.execution import ExecutionResult as StrawberryExecutionResult

from cdlm.core.errors import AccessError, DomainError, OperationErrorCode

log = logging.getLogger("cdlm.graphql")


def _request_id(execution_context: ExecutionContext | None) -> str | None:
    context = getattr(execution_context, "context", None)
    return getattr(context, "request_id", None)


def is_expected(error: GraphQLError) -> bool:
    """True for errors whose message is safe for the client.

    Those are GraphQL syntax and validation errors (no original exception), domain errors
    (messages never hold personal data) and authentication/authorization errors.
    """
    original = error.original_error
    if original is None or isinstance(original, DomainError | AccessError | GraphQLError):
        return True
    # Input coercion (a bad variable or literal: a scalar's parser raised ValueError or
    # TypeError) fails before execution, so without a path. Its message may quote the value:
    # it is returned to the caller but logged by code only.
    return not error.path and isinstance(original, ValueError | TypeError)


def log_errors(errors: list[GraphQLError], execution_context: ExecutionContext | None) -> None:
    """Log each error once: unexpected ones with their stack, expected ones briefly."""
    for error in errors:
        path = ".".join(str(p) for p in error.path or ())
        original = error.original_error
        if is_expected(error):
            code = getattr(original, "code", "GRAPHQL_VALIDATION_FAILED")
            log.info("request error", extra={"code": str(code), "path": path or None})
        else:
            assert original is not None
            log.error(
                "unexpected error",
                extra={"path": path or None},
                exc_info=(type(original), original, original.__traceback__),
            )


def _with_code(error: GraphQLError, request_id: str | None) -> GraphQLError:
    original = error.original_error
    extensions: dict[str, Any] = dict(error.extensions or {})
    if isinstance(original, DomainError):
        extensions["code"] = original.code.value
        if original.field is not None:
            extensions["field"] = original.field
    elif isinstance(original, AccessError):
        extensions["code"] = original.code.value
    else:
        extensions.setdefault("code", "GRAPHQL_VALIDATION_FAILED")
    if request_id is not None:
        extensions["requestId"] = request_id
    return GraphQLError(
        message=error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=original,
        extensions=extensions,
    )


def _masked(error: GraphQLError, request_id: str | None) -> GraphQLError:
    suffix = f" (request id {request_id})" if request_id else ""
    extensions: dict[str, Any] = {"code": OperationErrorCode.INTERNAL.value}
    if request_id is not None:
        extensions["requestId"] = request_id
    return GraphQLError(
        message=f"Internal server error{suffix}.",
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ErrorMasking(SchemaExtension):
    """Hide unexpected errors behind a message carrying the request id; tag the rest with codes."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if not isinstance(result, GraphQLExecutionResult | StrawberryExecutionResult):
            return
        if not result.errors:
            return
        request_id = _request_id(self.execution_context)
        result.errors = [
            _with_code(e, request_id) if is_expected(e) else _masked(e, request_id)
            for e in result.errors
        ]


class DeferredWrites(SchemaExtension):
    """Hold the response until the request's read audit has committed.

    Resolvers note what they read; once the fields have resolved, the reads are recorded
    together; if the write fails, the data is not returned: the operation fails with a masked
    error.
    """

    async def on_execute(self) -> AsyncIterator[None]:
        yield
        context = self.execution_context.context
        settle = getattr(context, "settle_deferred", None)
        if settle is None:
            return
        failures = await settle()
        result = self.execution_context.result
        if failures and isinstance(result, GraphQLExecutionResult | StrawberryExecutionResult):
            for failure in failures:
                log.error(
                    "deferred write failed",
                    exc_info=(type(failure), failure, failure.__traceback__),
                )
            result.data = None
            result.errors = [
                *(result.errors or []),
                GraphQLError("The read could not be audited.", original_error=failures[0]),
            ]

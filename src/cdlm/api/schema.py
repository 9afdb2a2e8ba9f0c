"""The schema: every domain's Query and Mutation merged, with hardening extensions."""

from __future__ import annotations

import functools
from typing import Any

import strawberry
from graphql.error import GraphQLError
from graphql.validation import ASTValidationRule
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from cdlm.audit.api import AuditQuery
from cdlm.auth.api import AuthMutation, AuthQuery
from cdlm.config import Settings
from cdlm.consent.api import ConsentMutation, ConsentQuery
from cdlm.customers.api import EVENT_RECORD_SCALAR, CustomerMutation, CustomerQuery, EventRecord
from cdlm.dsr.api import DsrMutation, DsrQuery, PublicDsrMutation, PublicDsrQuery
from cdlm.governance.api import GovernanceQuery
from cdlm.graphql.errors import USER_ERROR_TYPES
from cdlm.graphql.extensions import DeferredWrites, ErrorMasking, log_errors
from cdlm.matching.api import MatchingMutation, MatchingQuery
from cdlm.quality.api import QualityQuery
from cdlm.retention.api import RetentionMutation, RetentionQuery
from cdlm.system.api import SystemQuery

Query = merge_types(
    "Query",
    (
        SystemQuery,
        AuthQuery,
        AuditQuery,
        CustomerQuery,
        QualityQuery,
        ConsentQuery,
        DsrQuery,
        PublicDsrQuery,
        RetentionQuery,
        GovernanceQuery,
        MatchingQuery,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        AuthMutation,
        CustomerMutation,
        ConsentMutation,
        PublicDsrMutation,
        DsrMutation,
        RetentionMutation,
        MatchingMutation,
    ),
)

#: Parsed and validated documents kept per process (frontends send the same few operations).
PARSE_CACHE_SIZE = 512
DEFAULT_LIMITS: dict[str, int] = {"max_query_depth": 12, "max_aliases": 30, "max_tokens": 5000}


class CdlmSchema(strawberry.Schema):
    """Strawberry schema that logs errors as structured JSON (no personal data)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_errors(errors, execution_context)


@functools.cache
def _limit_rules(kind: str, limit: int) -> list[type[ASTValidationRule]]:
    """The validation rule classes of a limiter, made once per limit.

    Strawberry's limiters build new rule classes for every instance; the validation cache is
    keyed by those classes, so fresh ones on every request would never hit it.
    """
    limiter = (
        QueryDepthLimiter(max_depth=limit)
        if kind == "depth"
        else MaxAliasesLimiter(max_alias_count=limit)
    )
    return list(limiter.validation_rules)


def hardening_extensions(settings: Settings | None = None) -> list[type[SchemaExtension]]:
    """Depth, alias and token limits, error masking and (when off) no introspection."""
    depth = settings.max_query_depth if settings else DEFAULT_LIMITS["max_query_depth"]
    aliases = settings.max_aliases if settings else DEFAULT_LIMITS["max_aliases"]
    tokens = settings.max_tokens if settings else DEFAULT_LIMITS["max_tokens"]
    extensions: list[Any] = [
        functools.partial(MaxTokensLimiter, max_token_count=tokens),
        functools.partial(ParserCache, maxsize=PARSE_CACHE_SIZE),
        functools.partial(AddValidationRules, _limit_rules("depth", depth)),
        functools.partial(AddValidationRules, _limit_rules("aliases", aliases)),
        functools.partial(ValidationCache, maxsize=PARSE_CACHE_SIZE),
        ErrorMasking,
        DeferredWrites,
    ]
    if settings is not None and not settings.introspection:
        extensions.append(DisableIntrospection)
    return extensions


def create_schema(settings: Settings | None = None) -> CdlmSchema:
    """The executable schema; limits and introspection follow ``settings``."""
    return CdlmSchema(
        query=Query,
        mutation=Mutation,
        types=list(USER_ERROR_TYPES),
        extensions=hardening_extensions(settings),
        config=StrawberryConfig(
            auto_camel_case=True, scalar_map={EventRecord: EVENT_RECORD_SCALAR}
        ),
    )


def schema_sdl() -> str:
    """The schema in SDL, as checked in at ``schema.graphql``."""
    return create_schema().as_str() + "\n"

"""The schema: every domain's Query and Mutation merged, with hardening extensions."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import strawberry
from graphql import parse
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
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from cdlm.analytics.api import AnalyticsQuery
from cdlm.analytics.journeys.api import JourneyQuery
from cdlm.analytics.segments.api import SegmentMutation, SegmentQuery
from cdlm.analytics.segments.export_api import SegmentExportMutation
from cdlm.analytics.sentiment.api import SentimentQuery
from cdlm.api.nodes import NodeQuery
from cdlm.audit.api import AuditQuery
from cdlm.auth.api import AuthMutation, AuthQuery
from cdlm.config import Settings
from cdlm.consent.api import ConsentMutation, ConsentQuery
from cdlm.customers.api import PLANNED_ROOTS, CustomerMutation, CustomerQuery
from cdlm.dsr.api import DsrMutation, DsrQuery, PublicDsrMutation, PublicDsrQuery
from cdlm.governance.api import GovernanceQuery
from cdlm.governance.stewardship_api import StewardshipMutation, StewardshipQuery
from cdlm.graphql.errors import USER_ERROR_TYPES
from cdlm.graphql.extensions import DeferredWrites, ErrorMasking, log_errors
from cdlm.graphql.plans import Plan, Planner
from cdlm.graphql.scalars import SCALARS
from cdlm.insight.api import InsightQuery
from cdlm.matching.api import MatchingMutation, MatchingQuery
from cdlm.quality.api import QualityQuery
from cdlm.retention.api import RetentionMutation, RetentionQuery
from cdlm.system.api import SystemQuery

Query = merge_types(
    "Query",
    (
        SystemQuery,
        NodeQuery,
        AuthQuery,
        AuditQuery,
        CustomerQuery,
        QualityQuery,
        ConsentQuery,
        DsrQuery,
        PublicDsrQuery,
        RetentionQuery,
        GovernanceQuery,
        StewardshipQuery,
        MatchingQuery,
        AnalyticsQuery,
        SegmentQuery,
        SentimentQuery,
        JourneyQuery,
        InsightQuery,
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
        SegmentMutation,
        SegmentExportMutation,
        StewardshipMutation,
    ),
)

Query.__strawberry_definition__.description = (  # type: ignore[attr-defined]
    "What can be read. Each field says which roles may call it; objects are masked by role."
)
Mutation.__strawberry_definition__.description = (  # type: ignore[attr-defined]
    "What can be changed. Each mutation returns its own result union: the changed objects, "
    "or one of the errors it lists."
)

#: Parsed and validated documents kept per process (frontends send the same few operations).
PARSE_CACHE_SIZE = 512
DEFAULT_LIMITS: dict[str, int] = {"max_query_depth": 12, "max_aliases": 30, "max_tokens": 5000}


class CdlmSchema(strawberry.Schema):
    """Strawberry schema that logs errors as structured JSON (no personal data) and answers
    repeated documents on its hot root fields through compiled plans
    (:mod:`cdlm.graphql.plans`)."""

    def __init__(self, *args: Any, planned_roots: frozenset[str] = frozenset(), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.planner = Planner(self, planned_roots)

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        plan = (
            self.planner.known(query, operation_name)
            if query is not None and hasattr(context_value, "reads")
            else None
        )
        if isinstance(plan, Plan):
            answered = await self._planned(plan, context_value, variable_values, root_value)
            if answered is not None:
                return answered
        result = await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed_operation_types,
            operation_extensions,
        )
        if plan is False and query is not None and not result.errors and result.data is not None:
            self.planner.learn(query, operation_name, parse(query))
        return result

    async def _planned(
        self, plan: Plan, context: Any, variables: dict[str, Any] | None, root_value: Any
    ) -> ExecutionResult | None:
        """The plan's answer; None when the ordinary executor must answer (nothing the
        attempt read is kept: its noted reads are dropped, so they are audited once)."""
        try:
            data = await self.planner.run(plan, context, variables, root_value)
        except Exception:
            context.reads.take()
            return None
        failures = await context.settle_deferred()
        if failures:
            return None  # the ordinary executor reads again and reports the audit failure
        return ExecutionResult(data=data, errors=None)

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
        planned_roots=PLANNED_ROOTS,
        config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALARS),
    )


def schema_sdl() -> str:
    """The schema in SDL, as checked in at ``schema.graphql``."""
    return create_schema().as_str() + "\n"

"""Deny by default: every operation declares who may call it; a matrix proves it per role."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLUnionType,
)
from strawberry.types.base import StrawberryObjectDefinition

from cdlm.api.schema import create_schema
from cdlm.auth.settings import AuthSettings
from cdlm.core.roles import ALL_ROLES, OVERSIGHT_ROLES, Role
from cdlm.graphql.masking import personal_kind
from cdlm.graphql.permissions import PublicAccess, RoleAccess
from tests.conftest import GraphQLClient
from tests.factories import DEFAULT_PASSWORD, bearer, make_api_key, make_staff

PUBLIC = "public"
ADMIN = frozenset({Role.ADMIN})
READERS = frozenset({Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.ANALYST, Role.AGENT})
LIST_READERS = READERS - {Role.AGENT}
INGESTERS = frozenset({Role.INGEST, Role.ADMIN, Role.STEWARD})
RECTIFIERS = frozenset({Role.ADMIN, Role.STEWARD, Role.AGENT})
INDIVIDUAL = frozenset({Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.AGENT})
AGGREGATE = frozenset({Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.ANALYST})
CAPTURERS = frozenset({Role.INGEST, Role.ADMIN, Role.PRIVACY_OFFICER, Role.AGENT})
DSR_HANDLERS = frozenset({Role.ADMIN, Role.PRIVACY_OFFICER})
STAFF = ALL_ROLES - {Role.INGEST}
DSR_FILERS = DSR_HANDLERS | {Role.AGENT}
MATCH_DECIDERS = frozenset({Role.ADMIN, Role.STEWARD})
SEGMENT_EDITORS = frozenset({Role.ADMIN, Role.PRIVACY_OFFICER, Role.ANALYST})

#: Who may call each operation. Written out by hand: the test compares the code against it.
EXPECTED: dict[str, frozenset[Role] | str] = {
    # queries
    "health": PUBLIC,
    "viewer": ALL_ROLES,
    "node": ALL_ROLES,
    "nodes": ALL_ROLES,
    "staffUsers": ADMIN,
    "staffUser": ADMIN,
    "apiKeys": ADMIN,
    "auditLog": OVERSIGHT_ROLES,
    "verifyAuditChain": OVERSIGHT_ROLES,
    "customer": READERS,
    "customerByIdentifier": READERS - {Role.ANALYST},
    "customers": LIST_READERS,
    "dataQualityReport": LIST_READERS,
    "purposes": ALL_ROLES,
    "consentHistory": INDIVIDUAL,
    "consentAt": INDIVIDUAL,
    "mayProcess": ALL_ROLES,
    "consentReceipt": INDIVIDUAL,
    "consentOptInRates": AGGREGATE,
    "verifyConsentLedger": OVERSIGHT_ROLES,
    "dataSubjectRequests": DSR_HANDLERS,
    "dataSubjectRequest": DSR_HANDLERS,
    "dataSubjectRequestMetrics": DSR_HANDLERS,
    "dataSubjectRequestStatus": PUBLIC,
    "legalHolds": OVERSIGHT_ROLES,
    "retentionPolicies": STAFF,
    "retentionPreview": OVERSIGHT_ROLES,
    "retentionSweeps": OVERSIGHT_ROLES,
    "dataMap": OVERSIGHT_ROLES,
    "recordsOfProcessing": OVERSIGHT_ROLES,
    "matchCandidates": AGGREGATE,
    "matchRuns": OVERSIGHT_ROLES | {Role.STEWARD},
    "analyticsRuns": AGGREGATE,
    "segment": AGGREGATE,
    "segments": AGGREGATE,
    "segmentPreview": AGGREGATE,
    "feedbackSentiment": AGGREGATE,
    "funnel": AGGREGATE,
    "dashboard": AGGREGATE,
    "topPaths": AGGREGATE,
    "myStewardshipTasks": frozenset({Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD}),
    # mutations
    "login": PUBLIC,
    "logout": ALL_ROLES,
    "changePassword": ALL_ROLES,
    "createStaffUser": ADMIN,
    "updateStaffUser": ADMIN,
    "resetStaffPassword": ADMIN,
    "revokeStaffSessions": ADMIN,
    "createApiKey": ADMIN,
    "revokeApiKey": ADMIN,
    "ingestCustomer": INGESTERS,
    "ingestEvents": INGESTERS,
    "updateCustomer": RECTIFIERS,
    "liftCustomerRestriction": DSR_HANDLERS,
    "createPurpose": OVERSIGHT_ROLES,
    "updatePurpose": OVERSIGHT_ROLES,
    "grantConsent": CAPTURERS,
    "withdrawConsent": CAPTURERS,
    "setConsentPreferences": CAPTURERS,
    "recordGlobalPrivacyControl": CAPTURERS,
    "submitDataSubjectRequest": PUBLIC,
    "verifyDataSubjectRequest": PUBLIC,
    "resendVerificationCode": PUBLIC,
    "fileDataSubjectRequest": DSR_FILERS,
    "changeDataSubjectRequestStatus": DSR_HANDLERS,
    "extendDataSubjectRequestDeadline": DSR_HANDLERS,
    "assignDataSubjectRequest": DSR_HANDLERS,
    "executeDataSubjectRequest": DSR_HANDLERS,
    "resendDataSubjectRequestExportLink": DSR_HANDLERS,
    "createRetentionPolicy": OVERSIGHT_ROLES,
    "updateRetentionPolicy": OVERSIGHT_ROLES,
    "placeLegalHold": OVERSIGHT_ROLES,
    "releaseLegalHold": OVERSIGHT_ROLES,
    "resolveMatchCandidate": MATCH_DECIDERS,
    "mergeCustomers": MATCH_DECIDERS,
    "unmergeCustomer": MATCH_DECIDERS,
    "createSegment": SEGMENT_EDITORS,
    "updateSegment": SEGMENT_EDITORS,
    "exportSegment": DSR_HANDLERS,
    "assignDataOwnership": OVERSIGHT_ROLES,
    "recordStaffTraining": OVERSIGHT_ROLES,
}
#: Operations about the signed-in staff user themselves: an API key is refused whatever its role.
STAFF_ONLY = frozenset({"myStewardshipTasks"})
#: The whole public surface. Adding to it needs a reason.
PUBLIC_ALLOW_LIST = {name for name, roles in EXPECTED.items() if roles == PUBLIC}

schema = create_schema()


def root_fields() -> dict[str, tuple[str, Any]]:
    found: dict[str, tuple[str, Any]] = {}
    for operation, root in (("query", schema.query), ("mutation", schema.mutation)):
        definition: StrawberryObjectDefinition = root.__strawberry_definition__  # type: ignore[union-attr]
        for field in definition.fields:
            found[schema.config.name_converter.get_graphql_name(field)] = (operation, field)
    return found


def test_every_root_field_declares_its_access() -> None:
    undeclared = []
    for name, (_, field) in root_fields().items():
        kinds = {type(e) for e in field.extensions} & {RoleAccess, PublicAccess}
        if len(kinds) != 1:
            undeclared.append(name)
    assert undeclared == [], "give these fields extensions=allow(...) or public()"


def test_public_fields_are_exactly_the_allow_list() -> None:
    public = {
        name
        for name, (_, field) in root_fields().items()
        if any(isinstance(e, PublicAccess) for e in field.extensions)
    }
    assert public == PUBLIC_ALLOW_LIST


def test_the_matrix_covers_every_operation() -> None:
    assert set(root_fields()) == set(EXPECTED)


def test_declared_roles_match_the_matrix() -> None:
    for name, (_, field) in root_fields().items():
        access = [e for e in field.extensions if isinstance(e, RoleAccess)]
        if EXPECTED[name] == PUBLIC:
            assert not access, name
        else:
            assert access[0].roles == EXPECTED[name], name


def _object_types_below(type_: Any, seen: set[str]) -> None:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    if isinstance(type_, GraphQLUnionType):
        for member in type_.types:
            _object_types_below(member, seen)
    elif isinstance(type_, GraphQLObjectType | GraphQLInterfaceType) and type_.name not in seen:
        seen.add(type_.name)
        for field in type_.fields.values():
            _object_types_below(field.type, seen)


def test_no_personal_field_is_reachable_from_a_public_operation_without_a_role_check() -> None:
    graphql_schema = schema._schema
    reachable: set[str] = set()
    for name in PUBLIC_ALLOW_LIST:
        root = (
            graphql_schema.query_type
            if name in graphql_schema.query_type.fields
            else (graphql_schema.mutation_type)
        )
        assert root is not None
        _object_types_below(root.fields[name].type, reachable)
    exposed = []
    for type_name in reachable:
        definition = schema.get_type_by_name(type_name)
        if not isinstance(definition, StrawberryObjectDefinition):
            continue
        for field in definition.fields:
            personal = personal_kind(field) is not None
            guarded = any(isinstance(e, RoleAccess) for e in field.extensions)
            if personal and not guarded:
                exposed.append(f"{type_name}.{field.name}")
    assert exposed == []


def _dummy(type_: Any) -> Any:
    if isinstance(type_, GraphQLNonNull):
        return _dummy(type_.of_type)
    if isinstance(type_, GraphQLList):
        return [_dummy(type_.of_type)]
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLInputObjectType):
        return {
            name: _dummy(field.type)
            for name, field in type_.fields.items()
            if isinstance(field.type, GraphQLNonNull)
        }
    assert isinstance(type_, GraphQLScalarType)
    return {
        "ID": "7d1c3f0e-0000-4000-8000-000000000000",
        "String": "x",
        "Int": 1,
        "Float": 1.0,
        "Boolean": False,
        "DateTime": "2030-01-01T00:00:00+00:00",
        "Duration": "P1D",
        "EventRecord": {"type": "x", "occurredAt": "2030-01-01T00:00:00+00:00"},
    }[type_.name]


def _document(name: str) -> tuple[str, dict[str, Any]]:
    graphql_schema = schema._schema
    operation = "query" if name in graphql_schema.query_type.fields else "mutation"
    root = graphql_schema.query_type if operation == "query" else graphql_schema.mutation_type
    assert root is not None
    field = root.fields[name]
    required = {
        arg_name: arg
        for arg_name, arg in field.args.items()
        if isinstance(arg.type, GraphQLNonNull)
    }
    declarations = ", ".join(f"${a}: {arg.type}" for a, arg in required.items())
    arguments = ", ".join(f"{a}: ${a}" for a in required)
    inner = field.type
    while isinstance(inner, GraphQLNonNull | GraphQLList):
        inner = inner.of_type
    selection = " { __typename }" if not isinstance(inner, GraphQLScalarType) else ""
    call = f"{name}({arguments})" if arguments else name
    header = f"{operation}({declarations})" if declarations else operation
    variables = {a: _dummy(arg.type) for a, arg in required.items()}
    return f"{header} {{ {call}{selection} }}", variables


ACCESS_CODES = {"UNAUTHENTICATED", "FORBIDDEN"}


async def _credential(gql: GraphQLClient, auth: AuthSettings, role: Role, kind: str) -> str:
    if kind == "api_key":
        return await make_api_key(auth, role)
    staff = await make_staff(auth, role)
    body = await gql(
        "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) "
        "{ ... on LoginSucceeded { accessToken } } }",
        {"e": staff.email, "p": DEFAULT_PASSWORD},
    )
    token: str = body["data"]["login"]["accessToken"]
    return token


CALLERS = [(None, "anonymous")] + [
    (role, kind) for role in Role for kind in ("api_key", "user_token")
]


@pytest.mark.parametrize(("caller", "kind"), CALLERS)
async def test_role_matrix(
    gql: GraphQLClient, auth: AuthSettings, caller: Role | None, kind: str
) -> None:
    headers = bearer(await _credential(gql, auth, caller, kind)) if caller is not None else None
    outcomes = {}
    # logout ends a user token: call it last.
    for name in sorted(EXPECTED, key=lambda operation: operation == "logout"):
        document, variables = _document(name)
        body = await gql(document, variables, headers=headers)
        codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
        outcomes[name] = bool(codes & ACCESS_CODES)
        assert "INTERNAL" not in codes, (name, body)
    expected_denied = {
        name: allowed != PUBLIC
        and (caller is None or caller not in allowed or (name in STAFF_ONLY and kind == "api_key"))
        for name, allowed in EXPECTED.items()
    }
    assert outcomes == expected_denied

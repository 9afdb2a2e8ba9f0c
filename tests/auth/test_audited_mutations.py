"""Every successful mutation leaves an audit entry carrying its request id; a failed one none."""

from __future__ import annotations

from typing import Any

from cdlm.audit.models import AuditEntry
from cdlm.auth.settings import AuthSettings
from cdlm.core.roles import Role
from tests.conftest import GraphQLClient
from tests.factories import DEFAULT_PASSWORD, bearer, gid, make_staff


async def _call(
    gql: GraphQLClient, query: str, variables: dict[str, Any], headers: dict[str, str] | None
) -> tuple[dict[str, Any], str]:
    response = await gql.http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    return response.json(), response.headers["x-request-id"]


async def test_each_auth_mutation_is_audited_under_its_request_id(
    gql: GraphQLClient, auth: AuthSettings, admin_headers: dict[str, str]
) -> None:
    target = await make_staff(auth, Role.AGENT)
    steps: list[tuple[str, str, dict[str, Any], dict[str, str] | None]] = []

    body, request_id = await _call(
        gql,
        "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) "
        "{ ... on LoginSucceeded { accessToken } } }",
        {"e": target.email, "p": DEFAULT_PASSWORD},
        None,
    )
    token = body["data"]["login"]["accessToken"]
    assert await AuditEntry.filter(request_id=request_id, action="auth.login").count() == 1
    user = bearer(token)
    steps = [
        (
            "staff_user.create",
            'mutation { createStaffUser(input: {email: "new@example.com", displayName: "N", '
            'role: STEWARD, password: "a long password!"}) { __typename } }',
            {},
            admin_headers,
        ),
        (
            "staff_user.update",
            'mutation($id: ID!) { updateStaffUser(input: {id: $id, displayName: "Renamed"}) '
            "{ __typename } }",
            {"id": gid("StaffUser", target.user.id)},
            admin_headers,
        ),
        (
            "auth.password_changed",
            'mutation { changePassword(input: {currentPassword: "' + DEFAULT_PASSWORD + '", '
            'newPassword: "another long one"}) { __typename } }',
            {},
            user,
        ),
        ("auth.logout", "mutation { logout { __typename } }", {}, user),
        (
            "auth.password_reset",
            "mutation($id: ID!) { resetStaffPassword(input: {id: $id, newPassword: "
            '"reset long password"}) { __typename } }',
            {"id": gid("StaffUser", target.user.id)},
            admin_headers,
        ),
        (
            "auth.sessions_revoked",
            "mutation($id: ID!) { revokeStaffSessions(input: {staffUserId: $id}) { __typename } }",
            {"id": gid("StaffUser", target.user.id)},
            admin_headers,
        ),
        (
            "api_key.create",
            'mutation { createApiKey(input: {name: "k", role: AGENT}) { __typename } }',
            {},
            admin_headers,
        ),
    ]
    request_ids: dict[str, str] = {}
    for action, query, variables, headers in steps:
        body, request_id = await _call(gql, query, variables, headers)
        assert "errors" not in body, (action, body)
        entries = await AuditEntry.filter(request_id=request_id).values_list("action", flat=True)
        assert entries == [action], (action, entries)
        request_ids[action] = request_id

    key_id = (await AuditEntry.get(request_id=request_ids["api_key.create"])).target_id
    body, request_id = await _call(
        gql,
        "mutation($id: ID!) { revokeApiKey(input: {id: $id}) { __typename } }",
        {"id": gid("ApiKey", str(key_id))},
        admin_headers,
    )
    assert await AuditEntry.filter(request_id=request_id, action="api_key.revoke").count() == 1


async def test_a_refused_mutation_leaves_no_entry(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    body, request_id = await _call(
        gql,
        'mutation { createStaffUser(input: {email: "bad", displayName: "", role: STEWARD, '
        'password: "short"}) { __typename } }',
        {},
        admin_headers,
    )
    assert body["data"]["createStaffUser"]["__typename"] == "ValidationError"
    assert await AuditEntry.filter(request_id=request_id).count() == 0

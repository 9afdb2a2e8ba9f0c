"""Managing staff users: create, update, passwords, sessions, listing."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from cdlm.audit.models import AuditEntry
from cdlm.auth.models import StaffSession, StaffUser
from cdlm.auth.settings import AuthSettings
from cdlm.core.roles import Role
from tests.auth.test_login import LOGIN, VIEWER, login
from tests.conftest import GraphQLClient
from tests.factories import DEFAULT_PASSWORD, bearer, gid, make_staff

USER = "staffUser { id email displayName role active passwordChangedAt }"
ERRORS = """
  ... on UserError { message code field }
  ... on ValidationError { issues { field code message } }
"""
CREATE = f"""
mutation($input: CreateStaffUserInput!) {{
  createStaffUser(input: $input) {{ __typename ... on StaffUserCreated {{ {USER} }} {ERRORS} }}
}}
"""
UPDATE = f"""
mutation($input: UpdateStaffUserInput!) {{
  updateStaffUser(input: $input) {{ __typename ... on StaffUserUpdated {{ {USER} }} {ERRORS} }}
}}
"""
RESET = f"""
mutation($input: ResetStaffPasswordInput!) {{
  resetStaffPassword(input: $input) {{
    __typename ... on StaffPasswordReset {{ {USER} }} {ERRORS}
  }}
}}
"""
CHANGE = f"""
mutation($input: ChangePasswordInput!) {{
  changePassword(input: $input) {{ __typename ... on PasswordChanged {{ {USER} }} {ERRORS} }}
}}
"""
REVOKE_SESSIONS = """
mutation($id: ID!) {
  revokeStaffSessions(input: {staffUserId: $id}) {
    __typename
    ... on StaffSessionsRevoked { count staffUser { id } }
    ... on UserError { code field }
  }
}"""


def new_user(**overrides: Any) -> dict[str, Any]:
    return {
        "email": "Grace.Hopper@Example.com",
        "displayName": "  Grace   Hopper ",
        "role": "STEWARD",
        "password": "a long enough password",
        **overrides,
    }


async def test_admin_creates_a_user_who_can_sign_in(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    body = await gql(CREATE, {"input": new_user()}, headers=admin_headers)
    saved = body["data"]["createStaffUser"]
    assert saved["__typename"] == "StaffUserCreated"
    assert saved["staffUser"]["email"] == "grace.hopper@example.com"
    assert saved["staffUser"]["displayName"] == "Grace Hopper"
    signed_in = await login(gql, "grace.hopper@example.com", "a long enough password")
    assert signed_in["__typename"] == "LoginSucceeded"
    stored = await StaffUser.get(email="grace.hopper@example.com")
    assert stored.password_hash.startswith("$argon2id$")
    assert "a long enough password" not in stored.password_hash
    entry = await AuditEntry.get(action="staff_user.create")
    assert gid("StaffUser", str(entry.target_id)) == saved["staffUser"]["id"]
    assert entry.fields_touched == ["display_name", "email"]


async def test_every_invalid_field_is_reported_and_nothing_is_written(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    body = await gql(
        CREATE,
        {"input": new_user(email="not-an-email", displayName="   ", password="short")},
        headers=admin_headers,
    )
    result = body["data"]["createStaffUser"]
    assert result["__typename"] == "ValidationError"
    assert [issue["field"] for issue in result["issues"]] == [
        "input.email",
        "input.displayName",
        "input.password",
    ]
    assert await StaffUser.all().count() == 0
    assert await AuditEntry.filter(action="staff_user.create").count() == 0


@pytest.mark.parametrize("name", ["Grace\u202e reppoH", "Grace \u2067Hopper\u2069", "Gr\x07ace"])
async def test_a_display_name_with_control_or_direction_characters_is_refused(
    gql: GraphQLClient, admin_headers: dict[str, str], name: str
) -> None:
    body = await gql(CREATE, {"input": new_user(displayName=name)}, headers=admin_headers)
    result = body["data"]["createStaffUser"]
    assert result["__typename"] == "ValidationError"
    assert [issue["field"] for issue in result["issues"]] == ["input.displayName"]
    assert await StaffUser.all().count() == 0


async def test_password_equal_to_email_is_refused(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    email = "longaddress@example.com"
    body = await gql(
        CREATE, {"input": new_user(email=email, password=email)}, headers=admin_headers
    )
    issues = body["data"]["createStaffUser"]["issues"]
    assert issues == [
        {
            "field": "input.password",
            "code": "VALIDATION",
            "message": "Password must not be the email.",
        }
    ]


async def test_duplicate_email_is_a_conflict(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    await gql(CREATE, {"input": new_user()}, headers=admin_headers)
    body = await gql(
        CREATE, {"input": new_user(email="GRACE.hopper@example.com")}, headers=admin_headers
    )
    assert body["data"]["createStaffUser"]["__typename"] == "ConflictError"
    assert body["data"]["createStaffUser"]["field"] == "input.email"
    assert await StaffUser.all().count() == 1


async def test_changing_a_role_ends_sessions(
    gql: GraphQLClient, auth: AuthSettings, admin_headers: dict[str, str]
) -> None:
    staff = await make_staff(auth, Role.ANALYST)
    token = (await login(gql, staff.email, DEFAULT_PASSWORD))["accessToken"]
    body = await gql(
        UPDATE,
        {"input": {"id": gid("StaffUser", staff.user.id), "role": "AGENT"}},
        headers=admin_headers,
    )
    assert body["data"]["updateStaffUser"]["staffUser"]["role"] == "AGENT"
    assert (await gql(VIEWER, headers=bearer(token)))["errors"][0]["extensions"]["code"] == (
        "UNAUTHENTICATED"
    )
    fresh = (await login(gql, staff.email, DEFAULT_PASSWORD))["accessToken"]
    assert (await gql(VIEWER, headers=bearer(fresh)))["data"]["viewer"]["role"] == "AGENT"


async def test_the_last_active_admin_cannot_be_demoted_or_deactivated(
    gql: GraphQLClient, auth: AuthSettings, admin_headers: dict[str, str]
) -> None:
    admin = await make_staff(auth, Role.ADMIN)
    for change, field in [({"role": "STEWARD"}, "input.role"), ({"active": False}, "input.active")]:
        body = await gql(
            UPDATE,
            {"input": {"id": gid("StaffUser", admin.user.id), **change}},
            headers=admin_headers,
        )
        result = body["data"]["updateStaffUser"]
        assert result["__typename"] == "InvalidStateError"
        assert result["field"] == field
    second = await make_staff(auth, Role.ADMIN)
    body = await gql(
        UPDATE,
        {"input": {"id": gid("StaffUser", admin.user.id), "active": False}},
        headers=admin_headers,
    )
    assert body["data"]["updateStaffUser"]["staffUser"]["active"] is False
    assert (await StaffUser.get(id=second.user.id)).active


async def test_update_unknown_or_malformed_id(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    unknown = await gql(
        UPDATE,
        {"input": {"id": gid("StaffUser", uuid.uuid4()), "displayName": "X"}},
        headers=admin_headers,
    )
    assert unknown["data"]["updateStaffUser"]["__typename"] == "NotFoundError"
    assert unknown["data"]["updateStaffUser"]["field"] == "input.id"
    for bad in ("42", str(uuid.uuid4()), gid("ApiKey", uuid.uuid4())):
        malformed = await gql(
            UPDATE, {"input": {"id": bad, "displayName": "X"}}, headers=admin_headers
        )
        result = malformed["data"]["updateStaffUser"]
        assert result["__typename"] == "ValidationError"
        assert (result["field"], result["code"]) == ("input.id", "INVALID_ID")


async def test_change_own_password_ends_other_sessions_only(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    staff = await make_staff(auth)
    other = (await login(gql, staff.email, DEFAULT_PASSWORD))["accessToken"]
    mine = (await login(gql, staff.email, DEFAULT_PASSWORD))["accessToken"]
    wrong = await gql(
        CHANGE,
        {"input": {"currentPassword": "guess guess guess", "newPassword": "new password 1234"}},
        headers=bearer(mine),
    )
    assert wrong["data"]["changePassword"]["code"] == "INVALID_CREDENTIALS"
    weak = await gql(
        CHANGE,
        {"input": {"currentPassword": DEFAULT_PASSWORD, "newPassword": "short"}},
        headers=bearer(mine),
    )
    assert weak["data"]["changePassword"]["__typename"] == "ValidationError"
    done = await gql(
        CHANGE,
        {"input": {"currentPassword": DEFAULT_PASSWORD, "newPassword": "new password 1234"}},
        headers=bearer(mine),
    )
    changed = done["data"]["changePassword"]
    assert changed["__typename"] == "PasswordChanged"
    assert changed["staffUser"]["id"] == gid("StaffUser", staff.user.id)
    stored = await StaffUser.get(id=staff.user.id)
    assert datetime.fromisoformat(changed["staffUser"]["passwordChangedAt"]) == (
        stored.password_changed_at
    )
    assert "errors" not in await gql(VIEWER, headers=bearer(mine))
    assert "errors" in await gql(VIEWER, headers=bearer(other))
    assert (await login(gql, staff.email, "new password 1234"))["__typename"] == "LoginSucceeded"
    assert (await login(gql, staff.email, DEFAULT_PASSWORD))["__typename"] == (
        "InvalidCredentialsError"
    )


async def test_change_password_needs_a_user_session(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    body = await gql(
        CHANGE,
        {"input": {"currentPassword": "whatever you say", "newPassword": "new password 1234"}},
        headers=admin_headers,
    )
    assert body["data"]["changePassword"]["__typename"] == "InvalidStateError"


async def test_admin_reset_ends_all_sessions(
    gql: GraphQLClient, auth: AuthSettings, admin_headers: dict[str, str]
) -> None:
    staff = await make_staff(auth)
    token = (await login(gql, staff.email, DEFAULT_PASSWORD))["accessToken"]
    body = await gql(
        RESET,
        {"input": {"id": gid("StaffUser", staff.user.id), "newPassword": "fresh password 99"}},
        headers=admin_headers,
    )
    assert body["data"]["resetStaffPassword"]["__typename"] == "StaffPasswordReset"
    assert "errors" in await gql(VIEWER, headers=bearer(token))
    assert (await login(gql, staff.email, "fresh password 99"))["__typename"] == "LoginSucceeded"


async def test_revoke_sessions(
    gql: GraphQLClient, auth: AuthSettings, admin_headers: dict[str, str]
) -> None:
    staff = await make_staff(auth)
    tokens = [(await login(gql, staff.email, DEFAULT_PASSWORD))["accessToken"] for _ in range(3)]
    user_id = gid("StaffUser", staff.user.id)
    body = await gql(REVOKE_SESSIONS, {"id": user_id}, headers=admin_headers)
    assert body["data"]["revokeStaffSessions"] == {
        "__typename": "StaffSessionsRevoked",
        "count": 3,
        "staffUser": {"id": user_id},
    }
    for token in tokens:
        assert "errors" in await gql(VIEWER, headers=bearer(token))
    assert await StaffSession.filter(revoked_at__isnull=True).count() == 0
    missing = await gql(
        REVOKE_SESSIONS, {"id": gid("StaffUser", uuid.uuid4())}, headers=admin_headers
    )
    assert missing["data"]["revokeStaffSessions"] == {
        "__typename": "NotFoundError",
        "code": "NOT_FOUND",
        "field": "input.staffUserId",
    }
    malformed = await gql(REVOKE_SESSIONS, {"id": str(staff.user.id)}, headers=admin_headers)
    assert malformed["data"]["revokeStaffSessions"] == {
        "__typename": "ValidationError",
        "code": "INVALID_ID",
        "field": "input.staffUserId",
    }


async def test_listing_staff_users_pages_and_filters(
    gql: GraphQLClient, auth: AuthSettings, admin_headers: dict[str, str]
) -> None:
    for role in [Role.AGENT, Role.AGENT, Role.ANALYST]:
        await make_staff(auth, role)
    inactive = await make_staff(auth, Role.AGENT)
    await StaffUser.filter(id=inactive.user.id).update(active=False)
    query = """
    query($role: Role, $all: Boolean!, $after: String) {
      staffUsers(first: 2, filter: {role: $role, includeInactive: $all}, after: $after) {
        nodes { role active } pageInfo { hasNextPage endCursor }
      }
    }"""
    agents = await gql(query, {"role": "AGENT", "all": False}, headers=admin_headers)
    assert agents["data"]["staffUsers"]["nodes"] == [{"role": "AGENT", "active": True}] * 2
    everyone = await gql(query, {"all": True}, headers=admin_headers)
    page = everyone["data"]["staffUsers"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await gql(
        query, {"all": True, "after": page["pageInfo"]["endCursor"]}, headers=admin_headers
    )
    assert len(page["nodes"]) + len(rest["data"]["staffUsers"]["nodes"]) == 4
    # Every listed record is an audited read of personal data.
    assert await AuditEntry.filter(action="staff_user.read").count() == 2 + 2 + 2


async def test_reading_one_staff_user_is_audited(
    gql: GraphQLClient, auth: AuthSettings, admin_headers: dict[str, str]
) -> None:
    staff = await make_staff(auth)
    query = "query($id: ID!) { staffUser(id: $id) { email } }"
    body = await gql(query, {"id": gid("StaffUser", staff.user.id)}, headers=admin_headers)
    assert body["data"]["staffUser"] == {"email": staff.email}
    entry = await AuditEntry.get(action="staff_user.read")
    assert entry.target_id == str(staff.user.id)
    assert entry.fields_touched == ["display_name", "email"]
    missing = await gql(query, {"id": gid("StaffUser", uuid.uuid4())}, headers=admin_headers)
    assert missing == {"data": {"staffUser": None}}
    malformed = await gql(query, {"id": str(staff.user.id)}, headers=admin_headers)
    assert malformed["data"] == {"staffUser": None}
    assert malformed["errors"][0]["extensions"]["code"] == "INVALID_ID"
    assert malformed["errors"][0]["extensions"]["field"] == "id"


async def test_login_input_is_not_logged(gql: GraphQLClient, caplog: Any) -> None:
    import logging

    with caplog.at_level(logging.DEBUG):
        await gql(LOGIN, {"email": "secret.person@example.com", "password": "hunter2 hunter2"})
    assert "secret.person" not in caplog.text
    assert "hunter2" not in caplog.text


async def test_deactivating_through_the_api_ends_tokens_and_revokes_keys_they_issued(
    gql: GraphQLClient, auth: AuthSettings, admin_headers: dict[str, str]
) -> None:
    admin = await make_staff(auth, Role.ADMIN)
    await make_staff(auth, Role.ADMIN)  # so this one is not the last admin
    token = (await login(gql, admin.email, DEFAULT_PASSWORD))["accessToken"]
    created = await gql(
        'mutation { createApiKey(input: {name: "issued", role: ADMIN}) '
        "{ ... on ApiKeyCreated { key } } }",
        headers=bearer(token),
    )
    issued_key = created["data"]["createApiKey"]["key"]
    grandchild = await gql(
        'mutation { createApiKey(input: {name: "grandchild", role: AGENT}) '
        "{ ... on ApiKeyCreated { key } } }",
        headers=bearer(issued_key),
    )
    grandchild_key = grandchild["data"]["createApiKey"]["key"]
    assert "errors" not in await gql(VIEWER, headers=bearer(grandchild_key))
    body = await gql(
        UPDATE,
        {"input": {"id": gid("StaffUser", admin.user.id), "active": False}},
        headers=admin_headers,
    )
    assert body["data"]["updateStaffUser"]["staffUser"]["active"] is False
    for credential in (token, issued_key, grandchild_key):
        after = await gql(VIEWER, headers=bearer(credential))
        assert after["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await AuditEntry.filter(action="staff_user.deactivate").count() == 1


async def test_role_changes_are_visible_in_the_audit_trail(
    gql: GraphQLClient, auth: AuthSettings, admin_headers: dict[str, str]
) -> None:
    staff = await make_staff(auth, Role.ANALYST)
    await gql(
        UPDATE,
        {"input": {"id": gid("StaffUser", staff.user.id), "role": "ADMIN"}},
        headers=admin_headers,
    )
    entry = await AuditEntry.get(target_id=str(staff.user.id), action__startswith="staff_user.role")
    assert entry.action == "staff_user.role_change.analyst.to.admin"


async def test_update_keeps_omitted_fields_and_refuses_nulls(
    gql: GraphQLClient, auth: AuthSettings, admin_headers: dict[str, str]
) -> None:
    staff = await make_staff(auth, Role.ANALYST, name="Old Name")
    user_id = gid("StaffUser", staff.user.id)
    renamed = await gql(
        UPDATE, {"input": {"id": user_id, "displayName": "  New   Name "}}, headers=admin_headers
    )
    assert renamed["data"]["updateStaffUser"]["staffUser"] == {
        "id": user_id,
        "email": staff.email,
        "displayName": "New Name",
        "role": "ANALYST",
        "active": True,
        "passwordChangedAt": renamed["data"]["updateStaffUser"]["staffUser"]["passwordChangedAt"],
    }
    assert (await StaffUser.get(id=staff.user.id)).display_name == "New Name"
    promoted = await gql(UPDATE, {"input": {"id": user_id, "role": "AGENT"}}, headers=admin_headers)
    user = promoted["data"]["updateStaffUser"]["staffUser"]
    assert (user["displayName"], user["role"], user["active"]) == ("New Name", "AGENT", True)

    entries = await AuditEntry.filter(target_id=str(staff.user.id)).count()
    cleared = await gql(
        UPDATE,
        {"input": {"id": user_id, "displayName": None, "role": None, "active": None}},
        headers=admin_headers,
    )
    result = cleared["data"]["updateStaffUser"]
    assert result["__typename"] == "ValidationError"
    assert [(i["field"], i["code"]) for i in result["issues"]] == [
        ("input.displayName", "REQUIRED"),
        ("input.role", "REQUIRED"),
        ("input.active", "REQUIRED"),
    ]
    blank = await gql(
        UPDATE, {"input": {"id": user_id, "displayName": "   "}}, headers=admin_headers
    )
    assert blank["data"]["updateStaffUser"]["field"] == "input.displayName"
    nothing = await gql(UPDATE, {"input": {"id": user_id}}, headers=admin_headers)
    assert nothing["data"]["updateStaffUser"]["staffUser"]["displayName"] == "New Name"
    stored = await StaffUser.get(id=staff.user.id)
    assert (stored.display_name, stored.role, stored.active) == ("New Name", Role.AGENT, True)
    assert await AuditEntry.filter(target_id=str(staff.user.id)).count() == entries


async def test_password_mutations_report_each_failure_on_its_path(
    gql: GraphQLClient, auth: AuthSettings, admin_headers: dict[str, str]
) -> None:
    staff = await make_staff(auth)
    token = (await login(gql, staff.email, DEFAULT_PASSWORD))["accessToken"]
    wrong = await gql(
        CHANGE,
        {"input": {"currentPassword": "not my password", "newPassword": "new password 1234"}},
        headers=bearer(token),
    )
    assert (
        wrong["data"]["changePassword"]["__typename"],
        wrong["data"]["changePassword"]["field"],
    ) == (
        "InvalidCredentialsError",
        "input.currentPassword",
    )
    weak = await gql(
        CHANGE,
        {"input": {"currentPassword": DEFAULT_PASSWORD, "newPassword": "short"}},
        headers=bearer(token),
    )
    assert [i["field"] for i in weak["data"]["changePassword"]["issues"]] == ["input.newPassword"]
    user_id = gid("StaffUser", staff.user.id)
    for variables, kind, field in [
        (
            {"id": gid("StaffUser", uuid.uuid4()), "newPassword": "fresh password 99"},
            "NotFoundError",
            "input.id",
        ),
        (
            {"id": str(staff.user.id), "newPassword": "fresh password 99"},
            "ValidationError",
            "input.id",
        ),
        ({"id": user_id, "newPassword": "short"}, "ValidationError", "input.newPassword"),
    ]:
        body = await gql(RESET, {"input": variables}, headers=admin_headers)
        result = body["data"]["resetStaffPassword"]
        assert (result["__typename"], result["field"]) == (kind, field)
    assert (await login(gql, staff.email, DEFAULT_PASSWORD))["__typename"] == "LoginSucceeded"

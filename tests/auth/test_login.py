"""Signing in: tokens, sessions, equal answers for unknown accounts, rate limits, rehashing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from cdlm.audit.models import AuditEntry
from cdlm.auth.models import StaffSession, StaffUser
from cdlm.auth.passwords import SecretHasher
from cdlm.auth.service import ACCOUNT_LOGIN_LIMIT, ADDRESS_LOGIN_LIMIT
from cdlm.auth.settings import AuthSettings
from cdlm.auth.tokens import issue_access_token
from cdlm.core import clock
from cdlm.core.roles import Role
from tests.conftest import GraphQLClient
from tests.factories import DEFAULT_PASSWORD, bearer, gid, make_staff

LOGIN = """
mutation Login($email: String!, $password: String!) {
  login(input: {email: $email, password: $password}) {
    __typename
    ... on LoginSucceeded { accessToken expiresAt }
    ... on UserError { message code field }
  }
}
"""
VIEWER = "{ viewer { kind role name } }"


async def login(gql: GraphQLClient, email: str, password: str) -> dict[str, Any]:
    body = await gql(LOGIN, {"email": email, "password": password})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["login"]
    return result


async def test_login_returns_a_token_that_identifies_the_user(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    staff = await make_staff(auth, Role.AGENT, name="Ada Agent")
    result = await login(gql, "  " + staff.email.upper() + " ", DEFAULT_PASSWORD)
    assert result["__typename"] == "LoginSucceeded"
    viewer = (
        await gql(
            "{ viewer { kind role name staffUser { id email } apiKey { id } } }",
            headers=bearer(result["accessToken"]),
        )
    )["data"]["viewer"]
    assert viewer == {
        "kind": "STAFF_USER",
        "role": "AGENT",
        "name": "Ada Agent",
        "staffUser": {"id": gid("StaffUser", staff.user.id), "email": staff.email},
        "apiKey": None,
    }
    user = await StaffUser.get(id=staff.user.id)
    assert user.last_login_at is not None
    assert await AuditEntry.filter(action="auth.login", actor_id=staff.user.id).count() == 1


async def test_wrong_password_unknown_and_inactive_accounts_get_the_same_answer(
    gql: GraphQLClient, auth: AuthSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff = await make_staff(auth)
    inactive = await make_staff(auth)
    await StaffUser.filter(id=inactive.user.id).update(active=False)
    verifications: list[str] = []
    original_verify = SecretHasher.verify

    def counting_verify(self: SecretHasher, stored: str, secret: str) -> bool:
        verifications.append(secret)
        return original_verify(self, stored, secret)

    monkeypatch.setattr(SecretHasher, "verify", counting_verify)
    answers = []
    for email, password in [
        (staff.email, "wrong password!!"),
        ("nobody@example.com", "wrong password!!"),
        (inactive.email, DEFAULT_PASSWORD),
    ]:
        verifications.clear()
        answers.append(await login(gql, email, password))
        assert len(verifications) == 1, "every failure costs exactly one argon2 verification"
    assert (
        answers[0]
        == answers[1]
        == answers[2]
        == {
            "__typename": "InvalidCredentialsError",
            "message": "Email or password is incorrect.",
            "code": "INVALID_CREDENTIALS",
            "field": None,
        }
    )
    assert await StaffSession.all().count() == 0
    assert await AuditEntry.filter(action="auth.login_failed").count() == 3


async def test_account_is_locked_after_failures_even_for_the_right_password(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    staff = await make_staff(auth)
    for _ in range(ACCOUNT_LOGIN_LIMIT.attempts):
        assert (await login(gql, staff.email, "not the password"))["code"] == "INVALID_CREDENTIALS"
    blocked = await login(gql, staff.email, DEFAULT_PASSWORD)
    assert blocked["__typename"] == "RateLimitedError"
    assert blocked["code"] == "RATE_LIMITED"
    # Unknown accounts are limited in exactly the same way.
    for _ in range(ACCOUNT_LOGIN_LIMIT.attempts):
        await login(gql, "ghost@example.com", "not the password")
    assert (await login(gql, "ghost@example.com", "x"))["__typename"] == "RateLimitedError"
    with clock.travel(ACCOUNT_LOGIN_LIMIT.window):
        assert (await login(gql, staff.email, DEFAULT_PASSWORD))["__typename"] == "LoginSucceeded"


async def test_one_address_is_limited_across_accounts(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    staff = await make_staff(auth)
    for number in range(ADDRESS_LOGIN_LIMIT.attempts):
        await login(gql, f"guess{number}@example.com", "not the password")
    assert (await login(gql, staff.email, DEFAULT_PASSWORD))["__typename"] == "RateLimitedError"


async def test_success_clears_the_account_counter(gql: GraphQLClient, auth: AuthSettings) -> None:
    staff = await make_staff(auth)
    for _ in range(ACCOUNT_LOGIN_LIMIT.attempts - 1):
        await login(gql, staff.email, "not the password")
    assert (await login(gql, staff.email, DEFAULT_PASSWORD))["__typename"] == "LoginSucceeded"
    for _ in range(ACCOUNT_LOGIN_LIMIT.attempts - 1):
        await login(gql, staff.email, "not the password")
    assert (await login(gql, staff.email, DEFAULT_PASSWORD))["__typename"] == "LoginSucceeded"


async def test_password_hash_is_upgraded_on_login_when_parameters_change(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    weaker = AuthSettings(auth.token_secret, auth.access_token_ttl, SecretHasher(1, 512))
    staff = await make_staff(weaker)
    old_hash = (await StaffUser.get(id=staff.user.id)).password_hash
    assert auth.hasher.needs_rehash(old_hash)
    assert (await login(gql, staff.email, DEFAULT_PASSWORD))["__typename"] == "LoginSucceeded"
    new_hash = (await StaffUser.get(id=staff.user.id)).password_hash
    assert new_hash != old_hash
    assert not auth.hasher.needs_rehash(new_hash)
    assert auth.hasher.verify(new_hash, DEFAULT_PASSWORD)


async def test_token_expires_with_the_clock(gql: GraphQLClient, auth: AuthSettings) -> None:
    staff = await make_staff(auth)
    token = (await login(gql, staff.email, DEFAULT_PASSWORD))["accessToken"]
    with clock.travel(auth.access_token_ttl - timedelta(seconds=5)):
        assert "errors" not in await gql(VIEWER, headers=bearer(token))
    with clock.travel(auth.access_token_ttl + timedelta(seconds=1)):
        body = await gql(VIEWER, headers=bearer(token))
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_logout_ends_the_session_at_once(gql: GraphQLClient, auth: AuthSettings) -> None:
    staff = await make_staff(auth)
    token = (await login(gql, staff.email, DEFAULT_PASSWORD))["accessToken"]
    body = await gql(
        "mutation { logout { __typename ... on LoggedOut { endedAt } } }",
        headers=bearer(token),
    )
    assert body["data"]["logout"]["__typename"] == "LoggedOut"
    session = await StaffSession.get(user_id=staff.user.id)
    assert session.revoked_at is not None
    assert datetime.fromisoformat(body["data"]["logout"]["endedAt"]) == session.revoked_at
    after = await gql(VIEWER, headers=bearer(token))
    assert after["errors"][0]["message"] == "Invalid or expired credentials."


async def test_logout_with_an_api_key_is_refused_as_data(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    body = await gql(
        "mutation { logout { __typename ... on UserError { code } } }", headers=admin_headers
    )
    assert body["data"]["logout"] == {"__typename": "InvalidStateError", "code": "INVALID_STATE"}


async def test_deactivating_a_user_ends_their_token(
    gql: GraphQLClient, auth: AuthSettings, admin_headers: dict[str, str]
) -> None:
    staff = await make_staff(auth)
    token = (await login(gql, staff.email, DEFAULT_PASSWORD))["accessToken"]
    await StaffUser.filter(id=staff.user.id).update(active=False)
    body = await gql(VIEWER, headers=bearer(token))
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer not.a.jwt",
        "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        "Bearer cdlm_0123456789abcdef_short",
        "Bearer cdlm_0123456789abcdef_" + "A" * 43,
        "Bearer a b",
    ],
)
async def test_malformed_or_unknown_credentials_get_one_answer(
    gql: GraphQLClient, header: str
) -> None:
    body = await gql(VIEWER, headers={"Authorization": header})
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["message"] == "Invalid or expired credentials."
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_forged_token_signed_with_another_secret_is_refused(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    staff = await make_staff(auth)
    good = (await login(gql, staff.email, DEFAULT_PASSWORD))["accessToken"]
    session = await StaffSession.get(user_id=staff.user.id)
    forged = issue_access_token(
        b"another secret of the right length!!", staff.user.id, session.id, session.expires_at
    )
    assert forged.split(".")[1] == good.split(".")[1]  # same claims, different signature
    body = await gql(VIEWER, headers=bearer(forged))
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_missing_credentials_on_a_protected_field(gql: GraphQLClient) -> None:
    body = await gql(VIEWER)
    assert body["errors"][0]["message"] == "Authentication required."
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_public_fields_work_without_credentials_but_details_need_them(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    anonymous = await gql("{ health { ok } }")
    assert anonymous == {"data": {"health": {"ok": True}}}
    detailed = await gql("{ health { ok version } }")
    assert detailed["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    allowed = await gql("{ health { ok version } }", headers=admin_headers)
    assert allowed["data"]["health"]["version"]


async def test_concurrent_guesses_cannot_pass_the_account_limit(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    staff = await make_staff(auth)
    answers = await asyncio.gather(
        *(login(gql, staff.email, f"wrong guess {n}") for n in range(20))
    )
    kinds = [answer["__typename"] for answer in answers]
    assert kinds.count("InvalidCredentialsError") == ACCOUNT_LOGIN_LIMIT.attempts
    assert kinds.count("RateLimitedError") == 20 - ACCOUNT_LOGIN_LIMIT.attempts
    # Once limited, attempts are no longer written to the audit trail one by one.
    assert await AuditEntry.filter(action="auth.login_rate_limited").count() == 1


async def test_nul_characters_are_refused_at_the_door(gql: GraphQLClient) -> None:
    response = await gql.http.post(
        "/graphql", json={"query": LOGIN, "variables": {"email": "a\x00@b.c", "password": "x"}}
    )
    assert response.status_code == 400
    literal = await gql.http.post(
        "/graphql",
        json={
            "query": 'mutation { login(input: {email: "a\\u0000b", password: "x"}) { __typename } }'
        },
    )
    assert literal.status_code == 400

"""API keys: shown once, hashed at rest, revocable at once, cached verification."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from cdlm.auth import api_keys
from cdlm.auth.models import ApiKey
from cdlm.auth.passwords import SecretHasher
from cdlm.auth.settings import AuthSettings
from cdlm.core import clock
from cdlm.core.roles import Role
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key
from tests.support.sql_counter import StatementRecorder

CREATE = """
mutation($input: CreateApiKeyInput!) {
  createApiKey(input: $input) {
    __typename
    ... on ApiKeyCreated { key apiKey { id keyId name role expiresAt revokedAt } }
    ... on UserError { message code field }
  }
}
"""
REVOKE = """
mutation($id: ID!) {
  revokeApiKey(input: {id: $id}) {
    __typename
    ... on ApiKeyRevoked { apiKey { id revokedAt } }
    ... on UserError { message code field }
  }
}
"""
VIEWER = "{ viewer { kind role name } }"


async def test_key_is_shown_once_and_stored_hashed(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    body = await gql(
        CREATE, {"input": {"name": "web shop", "role": "INGEST"}}, headers=admin_headers
    )
    created = body["data"]["createApiKey"]
    key = created["key"]
    assert key.startswith(f"cdlm_{created['apiKey']['keyId']}_")
    row = await ApiKey.get(key_id=created["apiKey"]["keyId"])
    secret = key.split("_", 2)[2]
    assert secret not in row.secret_hash
    assert row.secret_hash.startswith("$argon2id$")
    listing = await gql("{ apiKeys { nodes { keyId name role } } }", headers=admin_headers)
    assert {"keyId": row.key_id, "name": "web shop", "role": "INGEST"} in listing["data"][
        "apiKeys"
    ]["nodes"]
    assert secret not in str(listing)
    viewer = await gql(VIEWER, headers=bearer(key))
    assert viewer["data"]["viewer"] == {"kind": "API_KEY", "role": "INGEST", "name": "web shop"}


async def test_revoked_key_stops_working_at_once(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    body = await gql(CREATE, {"input": {"name": "crm", "role": "STEWARD"}}, headers=admin_headers)
    created = body["data"]["createApiKey"]
    assert "errors" not in await gql(VIEWER, headers=bearer(created["key"]))  # now cached
    revoked = await gql(REVOKE, {"id": created["apiKey"]["id"]}, headers=admin_headers)
    assert revoked["data"]["revokeApiKey"]["apiKey"]["id"] == created["apiKey"]["id"]
    assert revoked["data"]["revokeApiKey"]["apiKey"]["revokedAt"] is not None
    after = await gql(VIEWER, headers=bearer(created["key"]))
    assert after["errors"][0]["message"] == "Invalid or expired credentials."
    again = await gql(REVOKE, {"id": created["apiKey"]["id"]}, headers=admin_headers)
    assert again["data"]["revokeApiKey"]["__typename"] == "InvalidStateError"
    assert again["data"]["revokeApiKey"]["field"] == "input.id"
    unknown = await gql(REVOKE, {"id": gid("ApiKey", uuid.uuid4())}, headers=admin_headers)
    assert unknown["data"]["revokeApiKey"]["__typename"] == "NotFoundError"
    assert unknown["data"]["revokeApiKey"]["field"] == "input.id"
    listing = await gql(
        "{ active: apiKeys { nodes { name } } "
        "all: apiKeys(filter: {includeRevoked: true}) { nodes { name } } }",
        headers=admin_headers,
    )
    assert {"name": "crm"} not in listing["data"]["active"]["nodes"]
    assert {"name": "crm"} in listing["data"]["all"]["nodes"]


async def test_revocation_by_another_process_is_seen_within_the_cache_bound(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    key = await make_api_key(auth, Role.AGENT)
    assert "errors" not in await gql(VIEWER, headers=bearer(key))
    # Another container revokes it: this process's cache is not told, the row is.
    await ApiKey.filter(key_id=key.split("_")[1]).update(revoked_at=clock.now())
    with clock.travel(timedelta(seconds=1)):
        assert "errors" not in await gql(VIEWER, headers=bearer(key))  # within the bound
    with clock.travel(api_keys.PRINCIPAL_TTL + timedelta(seconds=1)):
        body = await gql(VIEWER, headers=bearer(key))
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_known_key_is_answered_without_reading_its_row(
    gql: GraphQLClient, auth: AuthSettings, sql: StatementRecorder
) -> None:
    key = await make_api_key(auth, Role.AGENT)
    with sql.recording():
        assert "errors" not in await gql(VIEWER, headers=bearer(key))
    assert any("api_keys" in s for s in sql.statements)
    with sql.recording():
        assert "errors" not in await gql(VIEWER, headers=bearer(key))
    assert not any("api_keys" in s for s in sql.statements)
    # A different secret under the same key id is never taken from the cache.
    forged = key[: -len("x")] + ("A" if key[-1] != "A" else "B")
    body = await gql(VIEWER, headers=bearer(forged))
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_an_expiry_inside_the_cache_bound_is_honoured_at_once(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    key = await make_api_key(auth, Role.AGENT)
    await ApiKey.filter(key_id=key.split("_")[1]).update(
        expires_at=clock.now() + timedelta(seconds=2)
    )
    assert "errors" not in await gql(VIEWER, headers=bearer(key))  # now cached
    with clock.travel(timedelta(seconds=3)):  # inside the cache bound, past the expiry
        body = await gql(VIEWER, headers=bearer(key))
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_expiry(gql: GraphQLClient, admin_headers: dict[str, str]) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = await gql(
        CREATE,
        {"input": {"name": "temp", "role": "ANALYST", "expiresAt": soon}},
        headers=admin_headers,
    )
    key = body["data"]["createApiKey"]["key"]
    assert "errors" not in await gql(VIEWER, headers=bearer(key))
    with clock.travel(timedelta(hours=2)):
        assert "errors" in await gql(VIEWER, headers=bearer(key))
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    refused = await gql(
        CREATE,
        {"input": {"name": "old", "role": "ANALYST", "expiresAt": past}},
        headers=admin_headers,
    )
    assert refused["data"]["createApiKey"]["field"] == "input.expiresAt"
    naive = await gql(
        CREATE,
        {"input": {"name": "naive", "role": "ANALYST", "expiresAt": "2030-01-01T00:00:00"}},
        headers=admin_headers,
    )
    assert naive["data"]["createApiKey"]["__typename"] == "ValidationError"


async def test_wrong_secret_for_a_real_key_id_is_refused(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    key = await make_api_key(auth, Role.AGENT)
    prefix, key_id, secret = key.split("_", 2)
    forged = f"{prefix}_{key_id}_{'B' * len(secret)}"
    assert "errors" not in await gql(VIEWER, headers=bearer(key))  # the real secret is cached
    body = await gql(VIEWER, headers=bearer(forged))
    assert body["errors"][0]["message"] == "Invalid or expired credentials."


async def test_warm_requests_skip_argon2_but_read_the_row(
    gql: GraphQLClient, auth: AuthSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await make_api_key(auth, Role.AGENT)
    calls: list[str] = []
    original = SecretHasher.verify

    def spy(self: SecretHasher, stored: str, secret: str) -> bool:
        calls.append(secret)
        return original(self, stored, secret)

    monkeypatch.setattr(SecretHasher, "verify", spy)
    for _ in range(3):
        assert "errors" not in await gql(VIEWER, headers=bearer(key))
    assert len(calls) == 1


async def test_last_used_is_recorded_about_once_a_minute(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    key = await make_api_key(auth, Role.AGENT)
    key_id = key.split("_")[1]
    assert (await ApiKey.get(key_id=key_id)).last_used_at is None
    await gql(VIEWER, headers=bearer(key))
    first = (await ApiKey.get(key_id=key_id)).last_used_at
    await gql(VIEWER, headers=bearer(key))
    assert (await ApiKey.get(key_id=key_id)).last_used_at == first
    with clock.travel(timedelta(minutes=2)):
        await gql(VIEWER, headers=bearer(key))
    later = (await ApiKey.get(key_id=key_id)).last_used_at
    assert first is not None
    assert later is not None
    assert later > first


def test_key_format_round_trip() -> None:
    key_id, secret, full = api_keys.new_key()
    parsed = api_keys.parse_key(full)
    assert parsed == api_keys.ParsedKey(key_id=key_id, secret=secret)
    assert api_keys.parse_key(full + "x") is None
    assert api_keys.parse_key(full.replace("cdlm_", "cdlx_")) is None


def test_cache_is_bounded_and_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = api_keys.VerifiedSecretCache(max_entries=2, ttl_seconds=10)
    cache.remember("a", "s1")
    cache.remember("b", "s2")
    assert cache.contains("a", "s1")  # a is now most recent
    cache.remember("c", "s3")
    assert len(cache) == 2
    assert not cache.contains("b", "s2")  # least recently used went
    assert cache.contains("a", "s1")
    assert not cache.contains("a", "other")
    now = time.monotonic()
    monkeypatch.setattr(api_keys.time, "monotonic", lambda: now + 11)
    assert not cache.contains("a", "s1")
    cache.remember("d", "s4")
    cache.forget("d")
    assert not cache.contains("d", "s4")


async def test_a_key_needs_a_name_and_a_malformed_id_is_refused(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    nameless = await gql(CREATE, {"input": {"name": " ", "role": "AGENT"}}, headers=admin_headers)
    assert nameless["data"]["createApiKey"]["__typename"] == "ValidationError"
    assert nameless["data"]["createApiKey"]["field"] == "input.name"
    assert await ApiKey.filter(name=" ").count() == 0
    for bad in (str(uuid.uuid4()), gid("StaffUser", uuid.uuid4())):
        body = await gql(REVOKE, {"id": bad}, headers=admin_headers)
        result = body["data"]["revokeApiKey"]
        assert (result["__typename"], result["code"], result["field"]) == (
            "ValidationError",
            "INVALID_ID",
            "input.id",
        )

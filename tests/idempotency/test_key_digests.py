"""Idempotency keys are kept only as keyed digests: a replay still finds its first result, and
no key as the client sent it (clients put emails in them) reaches the database."""

from __future__ import annotations

import hashlib

from tortoise.connection import get_connection

from cdlm.core.principal import SYSTEM
from cdlm.idempotency.models import IdempotencyRecord
from cdlm.idempotency.service import key_digest, scope_for
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.customers.test_ingest import INGEST, record
from tests.support.raw_dump import every_stored_value

KEY = "signup-grace.hopper@example.com-2026-12-01"


async def test_a_replay_finds_its_result_though_only_a_digest_is_stored(
    gql: GraphQLClient, vault: Vault, admin_headers: dict[str, str]
) -> None:
    data = {"input": record(email="grace.hopper@example.com"), "key": KEY}
    first = (await gql(INGEST, data, admin_headers))["data"]["ingestCustomer"]
    again = (await gql(INGEST, data, admin_headers))["data"]["ingestCustomer"]
    assert again["replayed"] is True
    assert again["customerId"] == first["customerId"]
    [stored] = await IdempotencyRecord.all()
    assert stored.key != KEY
    assert len(stored.key) == 64
    assert KEY not in await every_stored_value(get_connection("default"))
    assert "grace.hopper" not in await every_stored_value(get_connection("default"))


async def test_the_digest_is_keyed_and_bound_to_its_scope(vault: Vault) -> None:
    await vault.ready()
    scope = scope_for("ingestCustomer", SYSTEM)
    digest = key_digest(vault, scope, KEY)
    assert digest == key_digest(vault, scope, KEY)
    assert digest != key_digest(vault, scope_for("ingestEvents", SYSTEM), KEY)
    assert digest != key_digest(vault, scope, KEY + " ")
    assert digest != hashlib.sha256(KEY.encode()).hexdigest()

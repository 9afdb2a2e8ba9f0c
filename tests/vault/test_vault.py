"""The vault: sealing, binding to place, crypto-shredding, key providers, blind indexes."""

from __future__ import annotations

import asyncio
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from cdlm.config import ConfigError, load_settings
from cdlm.vault import crypto
from cdlm.vault.keys import KmsKeyProvider, LocalKeyProvider, provider_from_settings
from cdlm.vault.models import CustomerKey, VaultSecret
from cdlm.vault.service import MissingKey, Vault


def test_local_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "master.key"
    first = LocalKeyProvider.from_file(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    wrapped = first.wrap(b"k" * 32, "ctx")
    again = LocalKeyProvider.from_file(path)
    assert again.unwrap(wrapped, "ctx") == b"k" * 32
    with pytest.raises(crypto.DecryptionFailed):
        again.unwrap(wrapped, "another context")


def test_malformed_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text("not base64 at all!")
    with pytest.raises(ConfigError, match="CDLM_MASTER_KEY_FILE"):
        LocalKeyProvider.from_file(path)
    path.write_text("c2hvcnQ=")
    with pytest.raises(ConfigError, match="32-byte"):
        LocalKeyProvider.from_file(path)


@pytest.fixture
def kms() -> Iterator[tuple[object, str]]:
    with mock_aws():
        client = boto3.client("kms", region_name="eu-west-1")
        key_id = client.create_key(Description="cdlm test")["KeyMetadata"]["KeyId"]
        yield client, key_id


def test_kms_provider_wraps_with_encryption_context(kms: tuple[object, str]) -> None:
    client, key_id = kms
    provider = KmsKeyProvider(key_id, client=client)
    data_key = crypto.new_key()
    wrapped = provider.wrap(data_key, "customer-key:1")
    assert data_key not in wrapped
    assert provider.unwrap(wrapped, "customer-key:1") == data_key
    with pytest.raises(crypto.DecryptionFailed):
        provider.unwrap(wrapped, "customer-key:2")


def test_settings_choose_the_provider(tmp_path: Path) -> None:
    local = provider_from_settings(load_settings({"CDLM_DATA_DIR": str(tmp_path)}))
    assert isinstance(local, LocalKeyProvider)
    with mock_aws():
        os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
        chosen = provider_from_settings(
            load_settings({"CDLM_DATA_DIR": str(tmp_path), "CDLM_KMS_KEY_ID": "alias/cdlm"})
        )
    assert isinstance(chosen, KmsKeyProvider)


async def test_customer_data_under_kms(kms: tuple[object, str]) -> None:
    client, key_id = kms
    vault = Vault(KmsKeyProvider(key_id, client=client))
    customer_id = uuid.uuid4()
    key = await vault.create_customer_key(customer_id)
    sealed = vault.seal(key, customer_id, "profile", {"email": "k@example.com"})
    fresh = Vault(KmsKeyProvider(key_id, client=client))  # another process: no cache
    again = await fresh.customer_key(customer_id)
    assert fresh.open(again, customer_id, "profile", sealed) == {"email": "k@example.com"}
    assert (await CustomerKey.get(customer_id=customer_id)).provider == "aws-kms"


async def test_sealed_values_are_bound_to_customer_and_purpose(vault: Vault) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    alice_key = await vault.create_customer_key(alice)
    bob_key = await vault.create_customer_key(bob)
    sealed = vault.seal(alice_key, alice, "profile", {"given_name": "Alice"})
    assert vault.open(alice_key, alice, "profile", sealed) == {"given_name": "Alice"}
    with pytest.raises(crypto.DecryptionFailed):
        vault.open(alice_key, alice, "identity", sealed)  # moved to another column
    with pytest.raises(crypto.DecryptionFailed):
        vault.open(alice_key, bob, "profile", sealed)  # copied to another customer
    with pytest.raises(crypto.DecryptionFailed):
        vault.open(bob_key, alice, "profile", sealed)
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    with pytest.raises(crypto.DecryptionFailed):
        vault.open(alice_key, alice, "profile", bytes(tampered))


async def test_shredding_makes_every_copy_unreadable(vault: Vault) -> None:
    customer_id = uuid.uuid4()
    key = await vault.create_customer_key(customer_id)
    backup_copy = vault.seal(key, customer_id, "profile", {"email": "gone@example.com"})
    assert await vault.shred(customer_id) is True
    assert await vault.shred(customer_id) is False
    with pytest.raises(MissingKey):
        await vault.customer_key(customer_id)
    other_process = Vault(vault.provider)
    assert await other_process.customer_keys([customer_id]) == {}
    # The backup copy survives as bytes; its key is gone from the database, and no other
    # key opens it.
    assert await CustomerKey.filter(customer_id=customer_id).count() == 0
    with pytest.raises(crypto.DecryptionFailed):
        vault.open(crypto.new_key(), customer_id, "profile", backup_copy)


async def test_blind_indexes_are_keyed_deterministic_and_kind_separated(vault: Vault) -> None:
    import hashlib
    import hmac

    await vault.ready()
    email = vault.blind_index("email:", "a@example.com")
    assert email == vault.blind_index("email:", "a@example.com")
    assert email != vault.blind_index("phone:", "a@example.com")
    # Not an unkeyed digest anyone could compute from a guessed address...
    assert email != hashlib.sha256(b"email:\x00a@example.com").hexdigest()
    # ...but the HMAC under this installation's index key.
    assert vault._index_key is not None
    assert email == hmac.new(vault._index_key, b"email:\x00a@example.com", "sha256").hexdigest()
    other_installation = Vault(LocalKeyProvider(crypto.new_key()))
    with pytest.raises(RuntimeError, match="ready"):
        other_installation.blind_index("email:", "a@example.com")


async def test_index_key_is_created_once_by_racing_processes(tmp_path: Path) -> None:
    kept = await VaultSecret.all()  # the session's installation secret, restored afterwards
    await VaultSecret.all().delete()
    try:
        provider = LocalKeyProvider.from_file(tmp_path / "master.key")
        vaults = [Vault(provider) for _ in range(6)]
        await asyncio.gather(*(v.ready() for v in vaults))
        digests = {v.blind_index("email:", "same@example.com") for v in vaults}
        assert len(digests) == 1
        assert await VaultSecret.all().count() == 1
    finally:
        await VaultSecret.all().delete()
        for row in kept:
            await VaultSecret.create(
                name=row.name,
                wrapped_secret=row.wrapped_secret,
                provider=row.provider,
                created_at=row.created_at,
            )

"""Tables of the vault: wrapped per-customer data keys and wrapped installation secrets."""

from __future__ import annotations

from tortoise import fields

from cdlm.core.tables import Model


class CustomerKey(Model):
    """A customer's data key, wrapped by the master key. Deleting it crypto-shreds the customer."""

    customer_id = fields.UUIDField(primary_key=True)
    wrapped_key = fields.BinaryField()
    provider = fields.CharField(max_length=16)
    created_at = fields.DatetimeField()

    class Meta:
        table = "customer_keys"


class VaultSecret(Model):
    """An installation-wide secret (e.g. the blind-index key), wrapped by the master key."""

    name = fields.CharField(max_length=64, primary_key=True)
    wrapped_secret = fields.BinaryField()
    provider = fields.CharField(max_length=16)
    created_at = fields.DatetimeField()

    class Meta:
        table = "vault_secrets"


class AbsorbedKey(Model):
    """The data key of a profile merged into another, kept only sealed under the survivor's
    data key: what was sealed for the merged profile (ledger evidence, archived copies) stays
    readable through the survivor, and erasing the survivor shreds it too."""

    customer_id = fields.UUIDField(primary_key=True, description="The merged profile")
    survivor_id = fields.UUIDField(db_index=True)
    sealed_key = fields.BinaryField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "absorbed_keys"

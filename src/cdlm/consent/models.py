"""Tables of purposes, their notice versions, and the consent ledger."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields

from cdlm.core.tables import Model
from cdlm.core.vocabulary import LawfulBasis


class Mechanism(StrEnum):
    """How consent works for a purpose, and so what applies before any decision."""

    OPT_IN = "opt_in"  # not processed until granted
    OPT_OUT = "opt_out"  # processed until denied or withdrawn
    NOTICE_ONLY = "notice_only"  # processed on another lawful basis; the person is informed


class Decision(StrEnum):
    """A person's decision about a purpose."""

    GRANTED = "granted"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"


class Method(StrEnum):
    """How a decision was captured."""

    FORM = "form"
    API = "api"
    IMPORT = "import"
    GPC = "gpc"
    AGENT = "agent"
    REQUEST = "request"  # a data subject request (objection, opt-out of sale)
    MERGE = "merge"  # two profiles of one person merged: the most restrictive decision
    UNMERGE = "unmerge"  # a merge undone: each profile's own decisions again


class Purpose(Model):
    """Why customer data is used; managed by privacy officers."""

    id = fields.UUIDField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=200)
    description = fields.TextField()
    lawful_basis = fields.CharEnumField(LawfulBasis, max_length=24)
    mechanism = fields.CharEnumField(Mechanism, max_length=16)
    data_use = fields.CharField(max_length=100, description="fideslang data use key")
    data_categories: list[str] = fields.JSONField(default=list, description="fideslang keys")
    sale_or_sharing = fields.BooleanField(default=False)
    recipients: list[str] = fields.JSONField(
        default=list, description="Names or categories of recipients of the data"
    )
    current_version = fields.IntField(default=1)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "purposes"


class PurposeNotice(Model):
    """One version of a purpose's notice text; versions are never changed or removed."""

    id = fields.UUIDField(primary_key=True)
    purpose: fields.ForeignKeyRelation[Purpose] = fields.ForeignKeyField(
        "cdlm.Purpose", related_name="notices", on_delete=fields.RESTRICT
    )
    version = fields.IntField()
    text = fields.TextField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "purpose_notices"
        unique_together = (("purpose_id", "version"),)


class ConsentEntry(Model):
    """One decision, appended to the ledger; ``hash`` chains it to the previous entry of its
    stripe (the customer's: :func:`cdlm.consent.service.stripe_of_customer`)."""

    sequence = fields.BigIntField(primary_key=True)
    id = fields.UUIDField(unique=True)
    customer_id = fields.UUIDField()
    purpose: fields.ForeignKeyRelation[Purpose] = fields.ForeignKeyField(
        "cdlm.Purpose", related_name="entries", on_delete=fields.RESTRICT
    )
    decision = fields.CharEnumField(Decision, max_length=16)
    notice_version = fields.IntField(null=True)
    method = fields.CharEnumField(Method, max_length=16)
    channel = fields.CharField(max_length=32)
    decided_at = fields.DatetimeField()
    recorded_at = fields.DatetimeField()
    evidence_sealed = fields.BinaryField(null=True, description="User agent, keyed IP digest")
    actor_kind = fields.CharField(max_length=16)
    actor_id = fields.UUIDField(null=True)
    prev_hash = fields.CharField(max_length=64)
    hash = fields.CharField(max_length=64, unique=True)
    key_id = fields.CharField(
        max_length=32, null=True, description="Ledger key of the HMAC; null: legacy SHA-256"
    )
    stripe = fields.SmallIntField(
        default=0, description="Which chain of the ledger (cdlm.core.stripes); 0 before striping"
    )

    class Meta:
        table = "consent_entries"
        indexes = (("customer_id", "purpose_id", "sequence"), ("stripe", "sequence"))

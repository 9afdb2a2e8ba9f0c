"""Tables of data subject requests: the requests, their timelines, verification codes, access
exports with their download tokens, and the notification outbox.

The requester's contact details and any free text (theirs, and what staff write about the
request) are personal data: they are sealed under the request's own data key (a vault key owned
by the request id), so they are destroyed with it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields

from cdlm.core.identifiers import IdentifierKind
from cdlm.core.jurisdictions import Jurisdiction
from cdlm.core.tables import Model
from cdlm.dsr.workflow import Status


class RequestType(StrEnum):
    """The right a person exercises."""

    ACCESS = "access"  # GDPR Art. 15, CCPA right to know
    PORTABILITY = "portability"  # Art. 20
    RECTIFICATION = "rectification"  # Art. 16, CCPA right to correct
    ERASURE = "erasure"  # Art. 17, CCPA right to delete
    RESTRICTION = "restriction"  # Art. 18
    OBJECTION = "objection"  # Art. 21
    OPT_OUT_OF_SALE = "opt_out_of_sale"  # CCPA/CPRA opt-out of sale or sharing


class VerificationMethod(StrEnum):
    """How the requester's identity was established."""

    EMAIL_CODE = "email_code"
    SMS_CODE = "sms_code"
    SIGNED_IN_ACCOUNT = "signed_in_account"
    IDENTITY_DOCUMENT = "identity_document"
    KNOWN_CONTACT_DETAILS = "known_contact_details"
    NOT_REQUIRED = "not_required"  # opt-out of sale needs no verification (CCPA)


class FiledVia(StrEnum):
    """Who filed the request."""

    SELF_SERVICE = "self_service"
    STAFF = "staff"


class Attention(StrEnum):
    """Why an open request needs a look, as the scheduled tick flags it."""

    DUE_SOON = "due_soon"
    OVERDUE = "overdue"


class TimelineKind(StrEnum):
    """What a timeline entry records."""

    RECEIVED = "received"
    STATUS_CHANGED = "status_changed"
    CODE_RESENT = "code_resent"
    VERIFICATION_FAILED = "verification_failed"
    DUPLICATE_LINKED = "duplicate_linked"
    ASSIGNED = "assigned"
    DEADLINE_EXTENDED = "deadline_extended"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    STEP_DONE = "step_done"
    LINK_RESENT = "link_resent"
    EXPORT_DOWNLOADED = "export_downloaded"
    RETAINED_DATA_ERASED = "retained_data_erased"
    REQUESTER_DETAILS_DESTROYED = "requester_details_destroyed"


class ExecutionStep(StrEnum):
    """A step of carrying a request out (see :mod:`cdlm.dsr.execution`), as its progress
    records it."""

    COLLECT = "collect"
    SEND_LINK = "send_link"
    RECTIFY = "rectify"
    RESTRICT = "restrict"
    RECORD_CONSENT = "record_consent"
    PLAN = "plan"
    RETAIN = "retain"
    SUPPRESS = "suppress"
    SHRED = "shred"
    DELETE = "delete"


class DataSubjectRequest(Model):
    """One request, from receipt to proof of completion."""

    id = fields.UUIDField(primary_key=True)
    type = fields.CharEnumField(RequestType, max_length=24)
    jurisdiction = fields.CharEnumField(Jurisdiction, max_length=8)
    status = fields.CharEnumField(Status, max_length=24, db_index=True)
    filed_via = fields.CharEnumField(FiledVia, max_length=16)
    subject_kind = fields.CharEnumField(IdentifierKind, max_length=16)
    subject_index = fields.CharField(max_length=64, description="Blind index of the identifier")
    subject_sealed = fields.BinaryField(null=True, description="Identifier, under the request key")
    details_sealed = fields.BinaryField(null=True, description="Corrections, purposes, note")
    customer_id = fields.UUIDField(null=True, db_index=True, description="Matched customer")
    received_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    verified_at = fields.DatetimeField(null=True)
    completed_at = fields.DatetimeField(null=True)
    verification_method = fields.CharEnumField(VerificationMethod, max_length=24, null=True)
    clock_rule: dict[str, Any] = fields.JSONField(description="The legal clock at receipt")
    pauses: list[list[str | None]] = fields.JSONField(default=list)
    clock_paused = fields.BooleanField(default=False, description="The clock is stopped now")
    extended = fields.BooleanField(default=False)
    extension_reason = fields.CharField(
        max_length=500, null=True, description="Not written any more: see the sealed column"
    )
    extension_reason_sealed = fields.BinaryField(
        null=True, description="Staff's reason of the extension, under the request key"
    )
    due_at = fields.DatetimeField(description="Due date as of the last change")
    acknowledge_by = fields.DatetimeField(null=True)
    assignee_id = fields.UUIDField(null=True, db_index=True)
    reason = fields.CharField(
        max_length=500, null=True, description="cdlm's own reason (duplicate, expiry, failure)"
    )
    staff_reason_sealed = fields.BinaryField(
        null=True, description="Staff's reason of a denial, cancellation or hold, sealed"
    )
    duplicate_of_id = fields.UUIDField(null=True)
    progress: dict[str, Any] = fields.JSONField(default=dict, description="Execution steps done")
    certificate: dict[str, Any] | None = fields.JSONField(null=True)
    attention = fields.CharField(max_length=16, null=True, description="due_soon or overdue")
    filed_by_kind = fields.CharField(max_length=16)
    filed_by_id = fields.UUIDField(null=True)

    class Meta:
        table = "dsr_requests"
        indexes = (("received_at", "id"), ("subject_index", "type", "status"))


class RequestEvent(Model):
    """One entry of a request's timeline: a status change, a note, a step done."""

    id = fields.BigIntField(primary_key=True)
    request: fields.ForeignKeyRelation[DataSubjectRequest] = fields.ForeignKeyField(
        "cdlm.DataSubjectRequest", related_name="events", on_delete=fields.CASCADE
    )
    at = fields.DatetimeField()
    kind = fields.CharField(max_length=32)
    from_status = fields.CharEnumField(Status, max_length=24, null=True)
    to_status = fields.CharEnumField(Status, max_length=24, null=True)
    actor_kind = fields.CharField(max_length=16)
    actor_id = fields.UUIDField(null=True)
    note = fields.CharField(max_length=500, null=True, description="cdlm's own words only")
    note_sealed = fields.BinaryField(
        null=True, description="What staff wrote, under the request key"
    )

    class Meta:
        table = "dsr_request_events"
        indexes = (("request_id", "id"),)


class VerificationCode(Model):
    """A one-time code sent to the requester; only its argon2id hash is stored."""

    id = fields.UUIDField(primary_key=True)
    request: fields.ForeignKeyRelation[DataSubjectRequest] = fields.ForeignKeyField(
        "cdlm.DataSubjectRequest", related_name="codes", on_delete=fields.CASCADE
    )
    code_hash = fields.CharField(max_length=256)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    attempts = fields.IntField(default=0)
    max_attempts = fields.IntField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "dsr_verification_codes"


class AccessExport(Model):
    """Everything held about a person, as JSON sealed under the request's key."""

    id = fields.UUIDField(primary_key=True)
    request: fields.ForeignKeyRelation[DataSubjectRequest] = fields.ForeignKeyField(
        "cdlm.DataSubjectRequest", related_name="exports", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField()
    content_sealed = fields.BinaryField()
    size_bytes = fields.IntField()
    sha256 = fields.CharField(max_length=64)

    class Meta:
        table = "dsr_exports"


class DownloadToken(Model):
    """A short-lived bearer token for one file: ``cdlm_dl_<token_id>_<secret>``. It opens
    either an access export or a segment export (exactly one is set)."""

    token_id = fields.CharField(max_length=32, primary_key=True)
    export: fields.ForeignKeyNullableRelation[AccessExport] = fields.ForeignKeyField(
        "cdlm.AccessExport", related_name="tokens", on_delete=fields.CASCADE, null=True
    )
    segment_export: fields.ForeignKeyNullableRelation[Any] = fields.ForeignKeyField(
        "cdlm.SegmentExport", related_name="tokens", on_delete=fields.CASCADE, null=True
    )
    secret_hash = fields.CharField(max_length=256)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    downloads = fields.IntField(default=0)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "dsr_download_tokens"


class Notification(Model):
    """A message waiting for (or done with) delivery; recipient and content are sealed."""

    id = fields.UUIDField(primary_key=True)
    request_id = fields.UUIDField(db_index=True)
    channel = fields.CharField(max_length=16)
    template = fields.CharField(max_length=48)
    payload_sealed = fields.BinaryField(null=True, description="Emptied once delivered")
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    attempts = fields.IntField(default=0)
    last_error = fields.CharField(max_length=200, null=True)

    class Meta:
        table = "notification_outbox"
        indexes = (("sent_at", "created_at"),)

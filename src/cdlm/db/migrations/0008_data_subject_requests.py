import functools
from json import dumps, loads
from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from cdlm.consent.models import Method
from cdlm.core.identifiers import IdentifierKind
from cdlm.core.jurisdictions import Jurisdiction
from cdlm.dsr.models import FiledVia, RequestType, VerificationMethod
from cdlm.dsr.workflow import Status


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0007_ledgers_refuse_truncate")]

    initial = False

    operations = [
        ops.CreateModel(
            name="DataSubjectRequest",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "type",
                    fields.CharEnumField(
                        description="ACCESS: access\nPORTABILITY: portability\nRECTIFICATION: rectification\nERASURE: erasure\nRESTRICTION: restriction\nOBJECTION: objection\nOPT_OUT_OF_SALE: opt_out_of_sale",
                        enum_type=RequestType,
                        max_length=24,
                    ),
                ),
                (
                    "jurisdiction",
                    fields.CharEnumField(
                        description="GDPR: gdpr\nUK_GDPR: uk_gdpr\nCCPA: ccpa\nLGPD: lgpd",
                        enum_type=Jurisdiction,
                        max_length=8,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        db_index=True,
                        description="RECEIVED: received\nIDENTITY_PENDING: identity_pending\nVERIFIED: verified\nAPPROVED: approved\nIN_PROGRESS: in_progress\nCOMPLETED: completed\nDENIED: denied\nCANCELLED: cancelled\nON_HOLD: on_hold\nFAILED: failed",
                        enum_type=Status,
                        max_length=24,
                    ),
                ),
                (
                    "filed_via",
                    fields.CharEnumField(
                        description="SELF_SERVICE: self_service\nSTAFF: staff",
                        enum_type=FiledVia,
                        max_length=16,
                    ),
                ),
                (
                    "subject_kind",
                    fields.CharEnumField(
                        description="EXTERNAL_ID: external_id\nEMAIL: email\nPHONE: phone",
                        enum_type=IdentifierKind,
                        max_length=16,
                    ),
                ),
                (
                    "subject_index",
                    fields.CharField(description="Blind index of the identifier", max_length=64),
                ),
                (
                    "subject_sealed",
                    fields.BinaryField(null=True, description="Identifier, under the request key"),
                ),
                (
                    "details_sealed",
                    fields.BinaryField(null=True, description="Corrections, purposes, note"),
                ),
                (
                    "customer_id",
                    fields.UUIDField(null=True, db_index=True, description="Matched customer"),
                ),
                ("received_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "verified_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "completed_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                (
                    "verification_method",
                    fields.CharEnumField(
                        null=True,
                        description="EMAIL_CODE: email_code\nSMS_CODE: sms_code\nSIGNED_IN_ACCOUNT: signed_in_account\nIDENTITY_DOCUMENT: identity_document\nKNOWN_CONTACT_DETAILS: known_contact_details\nNOT_REQUIRED: not_required",
                        enum_type=VerificationMethod,
                        max_length=24,
                    ),
                ),
                (
                    "clock_rule",
                    fields.JSONField(
                        description="The legal clock at receipt",
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "pauses",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("extended", fields.BooleanField(default=False)),
                ("extension_reason", fields.CharField(null=True, max_length=500)),
                (
                    "due_at",
                    fields.DatetimeField(
                        description="Due date as of the last change",
                        auto_now=False,
                        auto_now_add=False,
                    ),
                ),
                (
                    "acknowledge_by",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("assignee_id", fields.UUIDField(null=True, db_index=True)),
                (
                    "reason",
                    fields.CharField(
                        null=True, description="Of a denial, cancellation", max_length=500
                    ),
                ),
                ("duplicate_of_id", fields.UUIDField(null=True)),
                (
                    "progress",
                    fields.JSONField(
                        default=dict,
                        description="Execution steps done",
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "certificate",
                    fields.JSONField(
                        null=True,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "attention",
                    fields.CharField(null=True, description="due_soon or overdue", max_length=16),
                ),
                ("filed_by_kind", fields.CharField(max_length=16)),
                ("filed_by_id", fields.UUIDField(null=True)),
            ],
            options={
                "table": "dsr_requests",
                "app": "cdlm",
                "indexes": [
                    Index(fields=["received_at", "id"]),
                    Index(fields=["subject_index", "type", "status"]),
                ],
                "pk_attr": "id",
                "table_description": "One request, from receipt to proof of completion.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AccessExport",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "request",
                    fields.ForeignKeyField(
                        "cdlm.DataSubjectRequest",
                        source_field="request_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="exports",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("content_sealed", fields.BinaryField()),
                ("size_bytes", fields.IntField()),
                ("sha256", fields.CharField(max_length=64)),
            ],
            options={
                "table": "dsr_exports",
                "app": "cdlm",
                "pk_attr": "id",
                "table_description": "Everything held about a person, as JSON sealed under the request's key.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="DownloadToken",
            fields=[
                (
                    "token_id",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32),
                ),
                (
                    "export",
                    fields.ForeignKeyField(
                        "cdlm.AccessExport",
                        source_field="export_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="tokens",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("secret_hash", fields.CharField(max_length=256)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("downloads", fields.IntField(default=0)),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "dsr_download_tokens",
                "app": "cdlm",
                "pk_attr": "token_id",
                "table_description": "A short-lived bearer token for one export: ``cdlm_dl_<token_id>_<secret>``.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="LegalHold",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("customer_id", fields.UUIDField(null=True, db_index=True)),
                ("category", fields.CharField(null=True, max_length=64)),
                ("reason", fields.CharField(max_length=500)),
                ("placed_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("placed_by_kind", fields.CharField(max_length=16)),
                ("placed_by_id", fields.UUIDField(null=True)),
                ("ends_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "released_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("released_by_id", fields.UUIDField(null=True)),
            ],
            options={
                "table": "legal_holds",
                "app": "cdlm",
                "pk_attr": "id",
                "table_description": "Data that must be kept (litigation, investigation, a legal duty): on one customer, or",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Notification",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("request_id", fields.UUIDField(db_index=True)),
                ("channel", fields.CharField(max_length=16)),
                ("template", fields.CharField(max_length=48)),
                (
                    "payload_sealed",
                    fields.BinaryField(null=True, description="Emptied once delivered"),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("sent_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("attempts", fields.IntField(default=0)),
                ("last_error", fields.CharField(null=True, max_length=200)),
            ],
            options={
                "table": "notification_outbox",
                "app": "cdlm",
                "indexes": [Index(fields=["sent_at", "created_at"])],
                "pk_attr": "id",
                "table_description": "A message waiting for (or done with) delivery; recipient and content are sealed.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="RequestEvent",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "request",
                    fields.ForeignKeyField(
                        "cdlm.DataSubjectRequest",
                        source_field="request_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="events",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("kind", fields.CharField(max_length=32)),
                (
                    "from_status",
                    fields.CharEnumField(
                        null=True,
                        description="RECEIVED: received\nIDENTITY_PENDING: identity_pending\nVERIFIED: verified\nAPPROVED: approved\nIN_PROGRESS: in_progress\nCOMPLETED: completed\nDENIED: denied\nCANCELLED: cancelled\nON_HOLD: on_hold\nFAILED: failed",
                        enum_type=Status,
                        max_length=24,
                    ),
                ),
                (
                    "to_status",
                    fields.CharEnumField(
                        null=True,
                        description="RECEIVED: received\nIDENTITY_PENDING: identity_pending\nVERIFIED: verified\nAPPROVED: approved\nIN_PROGRESS: in_progress\nCOMPLETED: completed\nDENIED: denied\nCANCELLED: cancelled\nON_HOLD: on_hold\nFAILED: failed",
                        enum_type=Status,
                        max_length=24,
                    ),
                ),
                ("actor_kind", fields.CharField(max_length=16)),
                ("actor_id", fields.UUIDField(null=True)),
                (
                    "note",
                    fields.CharField(null=True, description="Never personal data", max_length=500),
                ),
            ],
            options={
                "table": "dsr_request_events",
                "app": "cdlm",
                "indexes": [Index(fields=["request_id", "id"])],
                "pk_attr": "id",
                "table_description": "One entry of a request's timeline: a status change, a note, a step done.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Suppression",
            fields=[
                (
                    "blind_index",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                (
                    "kind",
                    fields.CharEnumField(
                        description="EXTERNAL_ID: external_id\nEMAIL: email\nPHONE: phone",
                        enum_type=IdentifierKind,
                        max_length=16,
                    ),
                ),
                ("request_id", fields.UUIDField(null=True, description="The erasure request")),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "suppressed_identifiers",
                "app": "cdlm",
                "pk_attr": "blind_index",
                "table_description": "An identifier of an erased person: records carrying it are not re-created (the blind",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="VerificationCode",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "request",
                    fields.ForeignKeyField(
                        "cdlm.DataSubjectRequest",
                        source_field="request_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="codes",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("code_hash", fields.CharField(max_length=256)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("attempts", fields.IntField(default=0)),
                ("max_attempts", fields.IntField()),
                ("used_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "dsr_verification_codes",
                "app": "cdlm",
                "pk_attr": "id",
                "table_description": "A one-time code sent to the requester; only its argon2id hash is stored.",
            },
            bases=["Model"],
        ),
        ops.AlterField(
            model_name="ConsentEntry",
            name="method",
            field=fields.CharEnumField(
                description="FORM: form\nAPI: api\nIMPORT: import\nGPC: gpc\nAGENT: agent\nREQUEST: request",
                enum_type=Method,
                max_length=16,
            ),
        ),
        ops.AddField(
            model_name="Customer",
            name="erased_at",
            field=fields.DatetimeField(
                null=True,
                description="Erased; what remains is kept under a legal hold, restricted",
                auto_now=False,
                auto_now_add=False,
            ),
        ),
        ops.AddField(
            model_name="Customer",
            name="restricted_at",
            field=fields.DatetimeField(
                null=True,
                description="Processing restricted (GDPR Art. 18): stored, not processed",
                auto_now=False,
                auto_now_add=False,
            ),
        ),
    ]

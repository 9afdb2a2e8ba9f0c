"""GraphQL API of the audit trail."""

import re
import uuid
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.audit import loaders, service
from cdlm.audit.models import AuditEntry
from cdlm.auth.api import ApiKeyNode, StaffUserNode, api_key_node, staff_user_node
from cdlm.core.principal import PrincipalKind
from cdlm.core.roles import OVERSIGHT_ROLES, Role
from cdlm.graphql.enums import describe_enum
from cdlm.graphql.hash_chain import HashChainReport
from cdlm.graphql.pagination import (
    After,
    Before,
    Connection,
    First,
    Last,
    SortKey,
    paginate,
)
from cdlm.graphql.permissions import allow
from cdlm.graphql.relay import Node, NodeKind, global_id, parse_id, split_global_id
from cdlm.ledgers import verify as ledgers
from cdlm.ledgers.api import verification_report
from cdlm.quality.fields import profile_path


class AuditActorKind(Enum):
    """Who did an audited action (values as the trail stores them)."""

    STAFF_USER = PrincipalKind.USER.value
    API_KEY = PrincipalKind.API_KEY.value
    SYSTEM = PrincipalKind.SYSTEM.value
    ANONYMOUS = PrincipalKind.ANONYMOUS.value


describe_enum(
    AuditActorKind,
    "Who did an audited action.",
    {
        AuditActorKind.STAFF_USER: "A signed-in staff user (`actor` is the StaffUser).",
        AuditActorKind.API_KEY: "A caller with an API key (`actor` is the ApiKey).",
        AuditActorKind.SYSTEM: "cdlm itself: a scheduled job or a command run by an operator.",
        AuditActorKind.ANONYMOUS: "A caller without credentials: a failed sign-in, or a data "
        "subject using the public request mutations.",
    },
)

#: The API types of the audit trail's target types whose ids are UUIDs of API objects: their
#: ids are shown (and found) as global ids.
TARGET_NODE_TYPES: dict[str, str] = {
    "api_key": "ApiKey",
    "customer": "Customer",
    "data_subject_request": "DataSubjectRequest",
    "legal_hold": "LegalHold",
    "match_candidate": "MatchCandidate",
    "purpose": "Purpose",
    "retention_policy": "RetentionPolicy",
    "staff_user": "StaffUser",
}
#: Names of the personal parts of a customer an entry records that are not profile fields,
#: as the API paths below a customer.
_CUSTOMER_PARTS = {
    "identities": "identities.value",
    "event_properties": "events.properties",
    "invalid_values": "quality.invalidValues.value",
}
#: Target types whose ``fields`` name something other than API fields (kept as written).
_NOT_FIELDS = {"sweep_evidence"}  # the retention categories a sweep disposed of


def _camel(name: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)


def api_field_path(target_type: str | None, name: str) -> str:
    """The API path, below the entry's target, of a field name the trail records
    (``given_name`` of a customer -> ``profile.givenName``; ``display_name`` -> ``displayName``)."""
    if target_type in _NOT_FIELDS:
        return name
    if target_type == "customer":
        path = profile_path(name)
        if path != name:
            return path
        if name in _CUSTOMER_PARTS:
            return _CUSTOMER_PARTS[name]
    return ".".join(_camel(part) for part in name.split("."))


def _target_id(target_type: str | None, raw: str | None) -> strawberry.ID | None:
    if raw is None:
        return None
    node_type = TARGET_NODE_TYPES.get(target_type or "")
    if node_type is not None:
        try:
            return global_id(node_type, uuid.UUID(raw))
        except ValueError:
            pass
    return strawberry.ID(raw)


AuditActor = Annotated[
    StaffUserNode | ApiKeyNode,
    strawberry.union(
        "AuditActor", description="Who did an audited action: a staff user or an API key."
    ),
]


@strawberry.type(
    name="AuditEntry",
    description="One audited action: who did what to which record, and when. Entries are "
    "append-only and hash-chained: `verifyAuditChain` proves none was changed or removed.",
)
class AuditEntryNode(Node):
    sequence: int = strawberry.field(description="Position in the trail (1, 2, 3, ...).")
    occurred_at: datetime = strawberry.field(description="When the action happened.")
    actor_kind: AuditActorKind = strawberry.field(description="Who did it.")
    actor_id: strawberry.ID | None = strawberry.field(
        description="Global id of the StaffUser or ApiKey that did it; null for the system "
        "and anonymous callers."
    )
    actor_role: Role | None = strawberry.field(
        description="The actor's role at the time; null for anonymous callers."
    )
    action: str = strawberry.field(
        description="What was done, as `<thing>.<verb>`: `customer.read`, "
        "`staff_user.create`, `auth.login_failed`..."
    )
    target_type: str | None = strawberry.field(
        description="The kind of record acted on, in snake_case as recorded: `customer`, "
        "`staff_user`, `api_key`, `data_subject_request`, `legal_hold`, `purpose`, "
        "`retention_policy`, `match_candidate`, `staff_session`, `event_batch`, "
        "`import_run`, `sweep_run`, `sweep_evidence`; null when the action has no target."
    )
    target_id: strawberry.ID | None = strawberry.field(
        description="The record acted on: a global id when it is an object of the API "
        "(fetch it with `node(id:)`), else the record's own key; null for a read record (see "
        "subjectIds) or an action without a target."
    )
    fields: list[str] = strawberry.field(
        description="The personal fields read or changed, as API paths below the target "
        "(`profile.email`, `displayName`; never their values)."
    )
    request_id: str | None = strawberry.field(
        description="The request that did it (the `X-Request-Id` response header); null for "
        "work outside a request."
    )
    subject_ids: list[strawberry.ID] = strawberry.field(
        description="Global ids of the records (of targetType, usually customers) a read "
        "record covers: a request's reads of personal data are one record. Empty for other "
        "entries, whose target is targetId."
    )
    hash: str = strawberry.field(
        description="SHA-256 (hex) of the entry's content chained to the previous entry's hash."
    )
    actor_uuid: strawberry.Private[uuid.UUID | None]

    @strawberry.field(
        description="The staff user or API key that did it; null for the system and anonymous "
        "callers.",
        extensions=allow(Role.ADMIN),
    )
    async def actor(self, info: Info[Any, Any]) -> AuditActor | None:
        if self.actor_uuid is None:
            return None
        if self.actor_kind is AuditActorKind.STAFF_USER:
            return await staff_user_node(info, self.actor_uuid)
        if self.actor_kind is AuditActorKind.API_KEY:
            return await api_key_node(info, self.actor_uuid)
        return None

    @classmethod
    def from_row(cls, row: AuditEntry) -> "AuditEntryNode":
        kind = AuditActorKind(row.actor_kind)
        actor_type = {AuditActorKind.STAFF_USER: "StaffUser", AuditActorKind.API_KEY: "ApiKey"}
        subject_type = TARGET_NODE_TYPES.get(row.target_type or "")
        return cls(
            id=global_id("AuditEntry", row.id),
            sequence=row.sequence,
            occurred_at=row.occurred_at,
            actor_kind=kind,
            actor_id=(
                global_id(actor_type[kind], row.actor_id)
                if row.actor_id is not None and kind in actor_type
                else None
            ),
            actor_role=Role(row.actor_role) if row.actor_role else None,
            action=row.action,
            target_type=row.target_type,
            target_id=_target_id(row.target_type, row.target_id),
            fields=[api_field_path(row.target_type, name) for name in row.fields_touched],
            request_id=row.request_id,
            subject_ids=[
                global_id(subject_type, subject) if subject_type else strawberry.ID(str(subject))
                for subject in row.subject_ids or ()
            ],
            hash=row.hash,
            actor_uuid=row.actor_id if kind in actor_type else None,
        )


@strawberry.input(description="Which audit entries to list; criteria combine with AND.")
class AuditLogFilter:
    actor_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only what this StaffUser or ApiKey (global id) did."
    )
    actor_kind: AuditActorKind | None = strawberry.field(
        default=None, description="Only what actors of this kind did."
    )
    action: str | None = strawberry.field(
        default=None, description="Only this action, exactly (e.g. `customer.read`)."
    )
    target_type: str | None = strawberry.field(
        default=None, description="Only entries about records of this kind (e.g. `customer`)."
    )
    target_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Only entries about this record, as entries show it in `targetId` (a "
        "global id for an object of the API); also finds the read records that cover it (see "
        "subjectIds).",
    )
    occurred_from: datetime | None = strawberry.field(
        default=None, description="Only entries at or after this moment (inclusive)."
    )
    occurred_to: datetime | None = strawberry.field(
        default=None, description="Only entries before this moment (exclusive)."
    )


def audit_filter(given: AuditLogFilter) -> service.AuditFilter:
    """The service's criteria for ``given``; a malformed actor id is an INVALID_ID error."""
    target_id: str | None = given.target_id
    if given.target_id is not None:
        found = split_global_id(given.target_id)
        if found is not None and found[0] in TARGET_NODE_TYPES.values():
            target_id = str(found[1])
    return service.AuditFilter(
        actor_id=(
            parse_id(given.actor_id, "filter.actorId", "StaffUser", "ApiKey")
            if given.actor_id is not None
            else None
        ),
        actor_kind=given.actor_kind.value if given.actor_kind is not None else None,
        action=given.action,
        target_type=given.target_type,
        target_id=target_id,
        occurred_from=given.occurred_from,
        occurred_to=given.occurred_to,
    )


@strawberry.type
class AuditQuery:
    @strawberry.field(
        description="The audit trail, newest first (read records are listed once the "
        "sequencer has chained them, within seconds).",
        extensions=allow(*OVERSIGHT_ROLES),
    )
    async def audit_log(
        self,
        filter: Annotated[
            AuditLogFilter | None,
            strawberry.argument(description="Which entries; default: all of them."),
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[AuditEntryNode]:
        page = await paginate(
            service.entries(audit_filter(filter or AuditLogFilter())),
            order=[SortKey("sequence", descending=True)],
            first=first,
            after=after,
            last=last,
            before=before,
        )
        return page.to_connection(AuditEntryNode.from_row)

    @strawberry.field(
        description="Re-compute the audit trail's hash chain from its newest checkpoint (the "
        "entries since, and that the checkpointed entry is still there unchanged) and report "
        "the first broken link, if any. `cdlm verify --full` re-hashes the whole trail.",
        extensions=allow(*OVERSIGHT_ROLES),
    )
    async def verify_audit_chain(self, info: Info[Any, Any]) -> HashChainReport:
        return await verification_report(info.context.settings, ledgers.AUDIT, "AuditEntry")


async def _audit_entry_objects(info: Info[Any, Any], ids: list[uuid.UUID]) -> list[object | None]:
    rows = await info.context.loaders.get(loaders.audit_entries_by_id).load_many(ids)
    return [AuditEntryNode.from_row(row) if row is not None else None for row in rows]


#: How node(id:) fetches this domain's objects.
NODE_KINDS: tuple[NodeKind, ...] = (
    NodeKind.of("AuditEntry", OVERSIGHT_ROLES, _audit_entry_objects),
)

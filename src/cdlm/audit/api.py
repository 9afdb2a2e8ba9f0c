"""GraphQL API of the audit trail."""

from datetime import datetime

import strawberry

from cdlm.audit import service
from cdlm.audit.models import AuditEntry
from cdlm.core.roles import OVERSIGHT_ROLES
from cdlm.graphql.pagination import Connection, SortKey, paginate
from cdlm.graphql.permissions import allow
from cdlm.graphql.relay import NodeKind
from cdlm.graphql.scalars import parse_id


@strawberry.type(
    name="AuditEntry", description="One audited action (who did what to which record, and when)."
)
class AuditEntryNode:
    id: strawberry.ID
    sequence: int = strawberry.field(description="Position in the trail (1, 2, 3, ...).")
    occurred_at: datetime
    actor_kind: str
    actor_id: strawberry.ID | None
    actor_role: str | None
    action: str
    target_type: str | None
    target_id: str | None
    fields: list[str] = strawberry.field(
        description="Names of the personal fields read or changed (never their values)."
    )
    request_id: str | None
    subject_ids: list[strawberry.ID] = strawberry.field(
        description=(
            "The records (of targetType, usually customers) a read record covers: a request's "
            "reads of personal data are one record. Empty for other entries, whose target is "
            "targetId."
        )
    )
    hash: str

    @classmethod
    def from_row(cls, row: AuditEntry) -> "AuditEntryNode":
        return cls(
            id=strawberry.ID(str(row.id)),
            sequence=row.sequence,
            occurred_at=row.occurred_at,
            actor_kind=row.actor_kind,
            actor_id=strawberry.ID(str(row.actor_id)) if row.actor_id else None,
            actor_role=row.actor_role,
            action=row.action,
            target_type=row.target_type,
            target_id=row.target_id,
            fields=list(row.fields_touched),
            request_id=row.request_id,
            subject_ids=[strawberry.ID(str(subject)) for subject in row.subject_ids or ()],
            hash=row.hash,
        )


@strawberry.input(description="Every criterion is optional; they combine with AND.")
class AuditLogFilter:
    actor_id: strawberry.ID | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = strawberry.field(
        default=None,
        description="An id also finds the read records that cover it (see subjectIds).",
    )
    occurred_from: datetime | None = strawberry.field(default=None, description="Inclusive.")
    occurred_to: datetime | None = strawberry.field(default=None, description="Exclusive.")


@strawberry.type(description="Result of re-computing the audit trail's hash chain.")
class AuditChainReport:
    ok: bool
    entries_checked: int
    head_hash: str = strawberry.field(
        description="Hash of the last intact entry; record it elsewhere to detect truncation."
    )
    first_broken_sequence: int | None
    first_broken_id: strawberry.ID | None
    problem: str | None
    pending_entries: int = strawberry.field(
        description=(
            "Read records written but not chained yet (the sequencer chains them within "
            "seconds). They are not part of the check and are neither missing nor broken."
        )
    )
    oldest_pending_seconds: float | None = strawberry.field(
        description="Seconds the oldest pending read record has waited; null when none is pending."
    )


@strawberry.type
class AuditQuery:
    @strawberry.field(
        description="The audit trail, newest first.", extensions=allow(*OVERSIGHT_ROLES)
    )
    async def audit_log(
        self,
        filter: AuditLogFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[AuditEntryNode]:
        given = filter or AuditLogFilter()
        criteria = service.AuditFilter(
            actor_id=parse_id(given.actor_id, "filter.actorId") if given.actor_id else None,
            action=given.action,
            target_type=given.target_type,
            target_id=given.target_id,
            occurred_from=given.occurred_from,
            occurred_to=given.occurred_to,
        )
        page = await paginate(
            service.entries(criteria),
            order=[SortKey("sequence", descending=True)],
            first=first,
            after=after,
        )
        return page.to_connection(AuditEntryNode.from_row)

    @strawberry.field(
        description="Re-compute the hash chain and report the first broken link.",
        extensions=allow(*OVERSIGHT_ROLES),
    )
    async def verify_audit_chain(self) -> AuditChainReport:
        report = await service.verify_chain()
        return AuditChainReport(
            ok=report.ok,
            entries_checked=report.entries_checked,
            head_hash=report.head_hash,
            first_broken_sequence=report.first_broken_sequence,
            first_broken_id=(
                strawberry.ID(str(report.first_broken_id)) if report.first_broken_id else None
            ),
            problem=report.problem,
            pending_entries=report.pending,
            oldest_pending_seconds=(
                report.oldest_pending_age.total_seconds()
                if report.oldest_pending_age is not None
                else None
            ),
        )


#: How node(id:) fetches this domain's objects.
NODE_KINDS: tuple[NodeKind, ...] = ()

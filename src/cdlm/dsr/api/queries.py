"""Staff queries of data subject requests."""

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types.info import Info

from cdlm.core.errors import NotFound
from cdlm.dsr import service
from cdlm.dsr.api.types import HANDLERS, DataSubjectRequestNode
from cdlm.dsr.models import RequestType
from cdlm.dsr.workflow import Status
from cdlm.graphql.pagination import Connection, SortKey, paginate
from cdlm.graphql.permissions import allow
from cdlm.graphql.scalars import parse_id

OLDEST_FIRST = [SortKey("received_at"), SortKey("id")]


@strawberry.input(description="Every criterion is optional; they combine with AND.")
class DataSubjectRequestFilter:
    status: Status | None = None
    type: RequestType | None = None
    overdue: bool | None = None
    assignee_id: strawberry.ID | None = None
    customer_id: strawberry.ID | None = None


@strawberry.type
class StatusCount:
    status: Status
    count: int


@strawberry.type
class TypeCount:
    type: RequestType
    count: int


@strawberry.type(description="How the request work stands.")
class DataSubjectRequestMetrics:
    open: int
    overdue: int
    due_soon: int = strawberry.field(description="Open, running, due within the warning days.")
    completed: int
    median_days_to_complete: float | None
    by_status: list[StatusCount]
    by_type: list[TypeCount]


@strawberry.type
class DsrQuery:
    @strawberry.field(
        description="Data subject requests, oldest first.", extensions=allow(*HANDLERS)
    )
    async def data_subject_requests(
        self,
        filter: DataSubjectRequestFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[DataSubjectRequestNode]:
        given = filter or DataSubjectRequestFilter()
        criteria = service.RequestFilter(
            status=given.status,
            type=given.type,
            overdue=given.overdue,
            assignee_id=(
                parse_id(given.assignee_id, "filter.assigneeId") if given.assignee_id else None
            ),
            customer_id=(
                parse_id(given.customer_id, "filter.customerId") if given.customer_id else None
            ),
        )
        page = await paginate(
            service.requests(criteria), order=OLDEST_FIRST, first=first, after=after
        )
        return page.to_connection(DataSubjectRequestNode.from_row)

    @strawberry.field(
        description="One request with its timeline (null when unknown).",
        extensions=allow(*HANDLERS),
    )
    async def data_subject_request(self, id: strawberry.ID) -> DataSubjectRequestNode | None:
        try:
            return DataSubjectRequestNode.from_row(await service.get(parse_id(id, "id")))
        except NotFound:
            return None

    @strawberry.field(
        description="Open, overdue and due-soon counts, and the median days to complete.",
        extensions=allow(*HANDLERS),
    )
    async def data_subject_request_metrics(
        self, info: Info[Any, Any], received_since: datetime | None = None
    ) -> DataSubjectRequestMetrics:
        found = await service.metrics(info.context.settings.dsr_due_soon_days, received_since)
        return DataSubjectRequestMetrics(
            open=found.open,
            overdue=found.overdue,
            due_soon=found.due_soon,
            completed=found.completed,
            median_days_to_complete=found.median_days_to_complete,
            by_status=[StatusCount(status=s, count=n) for s, n in sorted(found.by_status.items())],
            by_type=[TypeCount(type=t, count=n) for t, n in sorted(found.by_type.items())],
        )

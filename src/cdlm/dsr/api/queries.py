"""Staff queries of data subject requests."""

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.core.errors import NotFound
from cdlm.dsr import service
from cdlm.dsr.api.types import HANDLERS, TYPE_NAME, DataSubjectRequestNode
from cdlm.dsr.models import RequestType
from cdlm.dsr.workflow import Status
from cdlm.graphql.pagination import (
    After,
    Before,
    CountedConnection,
    First,
    Last,
    SortKey,
    paginate,
)
from cdlm.graphql.permissions import allow
from cdlm.graphql.relay import parse_id, parse_optional_id

OLDEST_FIRST = [SortKey("received_at"), SortKey("id")]


@strawberry.input(
    description="Which requests to list. Every criterion is optional (omitted or null: any); "
    "they combine with AND."
)
class DataSubjectRequestFilter:
    status: Status | None = strawberry.field(
        default=None, description="Only requests in this status."
    )
    type: RequestType | None = strawberry.field(
        default=None, description="Only requests for this right."
    )
    overdue: bool | None = strawberry.field(
        default=None,
        description="true: only open requests past their due date; false: only the others.",
    )
    assignee_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only requests assigned to this staff user (a StaffUser id)."
    )
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only requests about this customer (a Customer id)."
    )


@strawberry.type(
    description="A page of data subject requests, oldest received first, that can tell how "
    "many requests match the filter."
)
class DataSubjectRequestConnection(CountedConnection[DataSubjectRequestNode]):
    pass


@strawberry.type(description="How many requests are in one status.")
class DataSubjectRequestStatusCount:
    status: Status = strawberry.field(description="The status.")
    count: int = strawberry.field(description="How many requests are in it.")


@strawberry.type(description="How many requests exercise one right.")
class DataSubjectRequestTypeCount:
    type: RequestType = strawberry.field(description="The right.")
    count: int = strawberry.field(description="How many requests exercise it.")


@strawberry.type(
    description="How the request work stands (of the requests received since `receivedSince`, "
    "or of all)."
)
class DataSubjectRequestMetrics:
    open: int = strawberry.field(description="Requests not closed yet.")
    overdue: int = strawberry.field(
        description="Open requests past their due date (whose clock runs)."
    )
    due_soon: int = strawberry.field(
        description="Open requests whose clock runs, due within the warning days "
        "(CDLM_DSR_DUE_SOON_DAYS)."
    )
    completed: int = strawberry.field(description="Requests completed.")
    median_days_to_complete: float | None = strawberry.field(
        description="Median days from receipt to completion, less the time spent waiting on "
        "the requester (null: none completed)."
    )
    by_status: list[DataSubjectRequestStatusCount] = strawberry.field(
        description="Requests per status (statuses with none are left out)."
    )
    by_type: list[DataSubjectRequestTypeCount] = strawberry.field(
        description="Requests per right (rights with none are left out)."
    )


@strawberry.type
class DsrQuery:
    @strawberry.field(
        description="Data subject requests, oldest received first, with paging both ways "
        "and the total count.",
        extensions=allow(*HANDLERS),
    )
    async def data_subject_requests(
        self,
        filter: Annotated[
            DataSubjectRequestFilter | None,
            strawberry.argument(description="Which requests (default: all)."),
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> DataSubjectRequestConnection:
        given = filter or DataSubjectRequestFilter()
        criteria = service.RequestFilter(
            status=given.status,
            type=given.type,
            overdue=given.overdue,
            assignee_id=parse_optional_id(given.assignee_id, "filter.assigneeId", "StaffUser"),
            customer_id=parse_optional_id(given.customer_id, "filter.customerId", "Customer"),
        )
        page = await paginate(
            service.requests(criteria),
            order=OLDEST_FIRST,
            first=first,
            after=after,
            last=last,
            before=before,
        )
        connection = page.to_connection(
            DataSubjectRequestNode.from_row, DataSubjectRequestConnection
        )
        assert isinstance(connection, DataSubjectRequestConnection)
        return connection

    @strawberry.field(
        description="One request with its timeline (null when no request has this id).",
        extensions=allow(*HANDLERS),
    )
    async def data_subject_request(
        self,
        id: Annotated[strawberry.ID, strawberry.argument(description="The request's global id.")],
    ) -> DataSubjectRequestNode | None:
        try:
            return DataSubjectRequestNode.from_row(await service.get(parse_id(id, "id", TYPE_NAME)))
        except NotFound:
            return None

    @strawberry.field(
        description="Open, overdue and due-soon counts, counts per status and per right, and "
        "the median days to complete.",
        extensions=allow(*HANDLERS),
    )
    async def data_subject_request_metrics(
        self,
        info: Info[Any, Any],
        received_since: Annotated[
            datetime | None,
            strawberry.argument(
                description="Count only requests received at or after this moment (default: "
                "all requests)."
            ),
        ] = None,
    ) -> DataSubjectRequestMetrics:
        found = await service.metrics(info.context.settings.dsr_due_soon_days, received_since)
        return DataSubjectRequestMetrics(
            open=found.open,
            overdue=found.overdue,
            due_soon=found.due_soon,
            completed=found.completed,
            median_days_to_complete=found.median_days_to_complete,
            by_status=[
                DataSubjectRequestStatusCount(status=s, count=n)
                for s, n in sorted(found.by_status.items())
            ],
            by_type=[
                DataSubjectRequestTypeCount(type=t, count=n)
                for t, n in sorted(found.by_type.items())
            ],
        )

"""Root queries of integration: the review queue and the match runs."""

from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.graphql.pagination import After, Before, First, Last, SortKey, paginate
from cdlm.graphql.permissions import allow
from cdlm.graphql.relay import parse_optional_id
from cdlm.matching import service
from cdlm.matching.api.types import (
    CUSTOMER,
    READERS,
    RUN_READERS,
    MatchCandidateConnection,
    MatchCandidateNode,
    MatchRunConnection,
    MatchRunNode,
)
from cdlm.matching.models import CandidateStatus, RunStatus

MOST_PROBABLE = [SortKey("probability", descending=True), SortKey("id")]
NEWEST_FIRST = [SortKey("started_at", descending=True), SortKey("id")]


@strawberry.input(description="Criteria of the review queue; they combine with AND.")
class MatchCandidateFilter:
    status: CandidateStatus | None = strawberry.field(
        default=CandidateStatus.PENDING,
        description="Pairs in this status; PENDING (the review queue) when not given, null "
        "for every status.",
    )
    min_probability: float | None = strawberry.field(
        default=None, description="Only pairs at least this probable (0 to 1); null: any."
    )
    customer_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Only pairs with this customer (a Customer global id) on either side; "
        "null: any.",
    )


@strawberry.input(description="Criteria of the list of match runs.")
class MatchRunFilter:
    status: RunStatus | None = strawberry.field(
        default=None, description="Only runs in this state; null: every run."
    )


@strawberry.type
class MatchingQuery:
    @strawberry.field(
        description="Pairs of profiles that may be one person, most probable first: by "
        "default the review queue (PENDING pairs). Profiles are masked for your role as "
        "everywhere; scores and comparison levels hold no values.",
        extensions=allow(*READERS),
    )
    async def match_candidates(
        self,
        info: Info[Any, Any],
        filter: Annotated[
            MatchCandidateFilter | None,
            strawberry.argument(description="Which pairs; the review queue when not given."),
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> MatchCandidateConnection:
        given = filter or MatchCandidateFilter()
        criteria = service.CandidateFilter(
            given.status,
            given.min_probability,
            parse_optional_id(given.customer_id, "filter.customerId", CUSTOMER),
        )
        page = await paginate(
            service.candidates(criteria),
            order=MOST_PROBABLE,
            first=first,
            after=after,
            last=last,
            before=before,
        )
        connection = page.to_connection(MatchCandidateNode.from_row, MatchCandidateConnection)
        assert isinstance(connection, MatchCandidateConnection)
        return connection

    @strawberry.field(
        description="Match runs with their evidence, newest first.",
        extensions=allow(*RUN_READERS),
    )
    async def match_runs(
        self,
        info: Info[Any, Any],
        filter: Annotated[
            MatchRunFilter | None,
            strawberry.argument(description="Which runs; every run when not given."),
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> MatchRunConnection:
        given = filter or MatchRunFilter()
        page = await paginate(
            service.runs(service.RunFilter(given.status)),
            order=NEWEST_FIRST,
            first=first,
            after=after,
            last=last,
            before=before,
        )
        connection = page.to_connection(MatchRunNode.from_row, MatchRunConnection)
        assert isinstance(connection, MatchRunConnection)
        return connection

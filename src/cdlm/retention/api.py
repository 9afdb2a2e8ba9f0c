"""GraphQL API of legal holds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.auth.roles import OVERSIGHT_ROLES
from cdlm.graphql.errors import InvalidStateError, NotFoundError, ValidationError, errors_as_data
from cdlm.graphql.permissions import allow, require_principal
from cdlm.graphql.scalars import parse_id
from cdlm.retention import service
from cdlm.retention.models import LegalHold


@strawberry.type(description="Data that must be kept whatever a request or policy says.")
class LegalHoldNode:
    id: strawberry.ID
    customer_id: strawberry.ID | None
    category: str | None = strawberry.field(
        description="events, events.<type> or source_records (for everyone)."
    )
    reason: str
    placed_at: datetime
    ends_at: datetime | None
    released_at: datetime | None

    @classmethod
    def from_row(cls, row: LegalHold) -> LegalHoldNode:
        return cls(
            id=strawberry.ID(str(row.id)),
            customer_id=strawberry.ID(str(row.customer_id)) if row.customer_id else None,
            category=row.category,
            reason=row.reason,
            placed_at=row.placed_at,
            ends_at=row.ends_at,
            released_at=row.released_at,
        )


@strawberry.input(description="Hold one customer, or a category of everyone's data.")
class PlaceLegalHoldInput:
    reason: str
    customer_id: strawberry.ID | None = None
    category: str | None = None
    ends_at: datetime | None = None


@strawberry.input
class ReleaseLegalHoldInput:
    id: strawberry.ID


@strawberry.type
class LegalHoldSaved:
    hold: LegalHoldNode


HoldResult = Annotated[
    LegalHoldSaved | ValidationError | NotFoundError | InvalidStateError,
    strawberry.union("LegalHoldResult"),
]


@strawberry.type
class RetentionQuery:
    @strawberry.field(description="Legal holds, newest first.", extensions=allow(*OVERSIGHT_ROLES))
    async def legal_holds(self, include_ended: bool = False) -> list[LegalHoldNode]:
        return [LegalHoldNode.from_row(h) for h in await service.holds(include_ended)]


@strawberry.type
class RetentionMutation:
    @strawberry.mutation(description="Place a legal hold.", extensions=allow(*OVERSIGHT_ROLES))
    @errors_as_data
    async def place_legal_hold(
        self, info: Info[Any, Any], input: PlaceLegalHoldInput
    ) -> HoldResult:
        hold = await service.place_hold(
            await require_principal(info),
            reason=input.reason,
            customer_id=parse_id(input.customer_id, "input.customerId")
            if input.customer_id
            else None,
            category=input.category,
            ends_at=input.ends_at,
        )
        return LegalHoldSaved(hold=LegalHoldNode.from_row(hold))

    @strawberry.mutation(description="End a legal hold now.", extensions=allow(*OVERSIGHT_ROLES))
    @errors_as_data
    async def release_legal_hold(
        self, info: Info[Any, Any], input: ReleaseLegalHoldInput
    ) -> HoldResult:
        hold = await service.release_hold(
            await require_principal(info), parse_id(input.id, "input.id")
        )
        return LegalHoldSaved(hold=LegalHoldNode.from_row(hold))

"""A small schema built with cdlm's GraphQL conventions, to test them through the real app."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry

from cdlm.api.schema import CdlmSchema, hardening_extensions
from cdlm.config import Settings
from cdlm.core import clock
from cdlm.core.errors import Conflict, DomainError, FieldIssue, PermissionDenied, ValidationFailed
from cdlm.core.personal_data import PersonalData
from cdlm.core.roles import ALL_ROLES
from cdlm.graphql.errors import USER_ERROR_TYPES, ConflictError, ValidationError, user_error
from cdlm.graphql.masking import personal
from cdlm.graphql.pagination import Connection, SortKey, paginate
from cdlm.graphql.permissions import allow
from tests.support.models import Widget


@strawberry.type
class WidgetNode:
    id: strawberry.ID
    name: str
    rank: int

    @classmethod
    def from_row(cls, row: Widget) -> WidgetNode:
        return cls(id=strawberry.ID(str(row.id)), name=row.name, rank=row.rank)


@strawberry.type
class WidgetCreated:
    widget: WidgetNode


CreateWidgetResult = Annotated[
    WidgetCreated | ValidationError | ConflictError, strawberry.union("CreateWidgetResult")
]


async def create_widget(name: str, rank: int) -> Widget:
    issues = []
    if not name.strip():
        issues.append(FieldIssue("input.name", ValidationFailed.code, "Name must not be empty."))
    if not 0 <= rank <= 100:
        issues.append(FieldIssue("input.rank", ValidationFailed.code, "Rank must be 0 to 100."))
    if issues:
        raise ValidationFailed.from_issues(issues)
    if await Widget.exists(name=name.strip()):
        raise Conflict("A widget with this name exists.", field="input.name")
    return await Widget.create(
        id=uuid.uuid4(), name=name.strip(), rank=rank, created_at=clock.now()
    )


@strawberry.type
class Contact:
    email: str = strawberry.field(extensions=personal(PersonalData.EMAIL))
    phone: str = strawberry.field(extensions=personal(PersonalData.PHONE))
    name: str = strawberry.field(extensions=personal(PersonalData.NAME))
    birth_date: str = strawberry.field(extensions=personal(PersonalData.BIRTH_DATE))
    emails: list[str] = strawberry.field(extensions=personal(PersonalData.EMAIL))
    plain: str


@strawberry.type
class Query:
    @strawberry.field(extensions=allow(*ALL_ROLES))
    async def contact(self) -> Contact:
        return Contact(
            email="jane.doe@example.com",
            phone="+447700900121",
            name="Jane Doe",
            birth_date="1990-04-12",
            emails=["jane.doe@example.com", "jd@work.example"],
            plain="not personal",
        )

    @strawberry.field
    async def widgets(
        self, first: int | None = None, after: str | None = None, by_rank: bool = False
    ) -> Connection[WidgetNode]:
        order = (
            [SortKey("rank", descending=True), SortKey("id")]
            if by_rank
            else [SortKey("created_at"), SortKey("id")]
        )
        page = await paginate(Widget.all(), order=order, first=first, after=after)
        return page.to_connection(WidgetNode.from_row)

    @strawberry.field
    def boom(self) -> str:
        raise RuntimeError("failure quoting jane.doe@example.com")

    @strawberry.field
    def forbidden(self) -> str:
        raise PermissionDenied("You may not do this.")


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_widget(self, name: str, rank: int) -> CreateWidgetResult:
        try:
            row = await create_widget(name, rank)
        except DomainError as error:
            return user_error(error)  # type: ignore[return-value]
        return WidgetCreated(widget=WidgetNode.from_row(row))


def widget_schema(settings: Settings | None = None) -> CdlmSchema:
    return CdlmSchema(
        query=Query,
        mutation=Mutation,
        types=list(USER_ERROR_TYPES),
        extensions=hardening_extensions(settings),
    )

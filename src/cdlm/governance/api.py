"""GraphQL API of governance: the data map and the records of processing."""

from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types.info import Info

from cdlm.core.roles import OVERSIGHT_ROLES, Role
from cdlm.governance import datamap, ropa
from cdlm.graphql.permissions import allow


@strawberry.type(description="One place cdlm keeps personal data.")
class DataMapEntry:
    field: str = strawberry.field(
        description="Where it shows in the API, e.g. customer.profile.email."
    )
    table: str
    column: str
    data_category: str = strawberry.field(description="fideslang data category.")
    data_subject: str = strawberry.field(description="customer, requester or employee.")
    encrypted: bool = strawberry.field(description="Encrypted at rest.")
    clear_roles: list[Role] = strawberry.field(description="Roles that read it in clear.")
    purposes: list[str] = strawberry.field(description="Purposes using its data category.")
    retention: list[str] = strawberry.field(description="The policies that govern it.")
    note: str

    @classmethod
    def of(cls, entry: datamap.Entry) -> "DataMapEntry":
        place = entry.place
        return cls(
            field=place.field,
            table=place.table,
            column=place.column,
            data_category=place.data_category,
            data_subject=place.data_subject,
            encrypted=place.encrypted,
            clear_roles=sorted(place.clear_roles),
            purposes=entry.purposes,
            retention=entry.retention,
            note=place.note,
        )


@strawberry.type
class GovernanceQuery:
    @strawberry.field(
        description="Every place personal data is kept, from the live configuration.",
        extensions=allow(*OVERSIGHT_ROLES),
    )
    async def data_map(self) -> list[DataMapEntry]:
        return [DataMapEntry.of(e) for e in await datamap.data_map()]

    @strawberry.field(
        description="Records of processing activities (GDPR Art. 30) as JSON.",
        extensions=allow(*OVERSIGHT_ROLES),
    )
    async def records_of_processing(self, info: Info[Any, Any]) -> JSON:
        found: JSON = await ropa.records_of_processing(info.context.settings)  # type: ignore[assignment]
        return found

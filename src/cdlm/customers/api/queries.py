"""Queries of the customer 360."""

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types.info import Info

from cdlm.core.errors import NotFound
from cdlm.core.identifiers import IdentifierKind
from cdlm.core.roles import Role
from cdlm.core.vocabulary import LifecycleStage
from cdlm.customers import service
from cdlm.customers.api.reading import customer_nodes
from cdlm.customers.api.types import CustomerNode
from cdlm.graphql.pagination import Connection, SortKey, paginate
from cdlm.graphql.permissions import allow
from cdlm.graphql.scalars import parse_id

READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.ANALYST, Role.AGENT)
#: Looking a person up by their email or phone re-identifies them: not for analysts.
LOOKUP_READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.AGENT)
LIST_READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.ANALYST)
RECENTLY_UPDATED = [SortKey("updated_at", descending=True), SortKey("id")]
#: Root fields answered through compiled plans once a document has been seen (the customer
#: 360 and lists of customers: what frontends ask for most).
PLANNED_ROOTS = frozenset({"customer", "customerByIdentifier", "customers"})


@strawberry.input(description="Every criterion is optional; they combine with AND.")
class CustomerFilter:
    updated_since: datetime | None = None
    quality_below: float | None = strawberry.field(
        default=None, description="Stored quality score strictly below this (0 to 1)."
    )
    source_system: str | None = None
    lifecycle_stage: LifecycleStage | None = None
    include_restricted: bool = strawberry.field(
        default=False,
        description="Restricted customers (GDPR Art. 18: stored, not processed) are left out "
        "unless asked for.",
    )


def _present(node: CustomerNode | None) -> CustomerNode:
    if node is None:  # erased between the page's statement and the read: rare, not hidden
        raise NotFound("A customer of this page was erased while it was read.")
    return node


@strawberry.type
class CustomerQuery:
    @strawberry.field(
        description="One customer by id (null when unknown).", extensions=allow(*READERS)
    )
    async def customer(self, info: Info[Any, Any], id: strawberry.ID) -> CustomerNode | None:
        return (await customer_nodes(info, [parse_id(id, "id")]))[0]

    @strawberry.field(
        description="The customer an email, phone or external id (crm:123) belongs to.",
        extensions=allow(*LOOKUP_READERS),
    )
    async def customer_by_identifier(
        self, info: Info[Any, Any], kind: IdentifierKind, value: str
    ) -> CustomerNode | None:
        row = await service.find_by_identifier(info.context.vault, kind, value)
        if row is None:
            return None
        # A lookup by identifier is itself a use of personal data, whatever is selected.
        return (await customer_nodes(info, [row.id], also=("identifier_lookup",)))[0]

    @strawberry.field(
        description="Customers, most recently updated first.", extensions=allow(*LIST_READERS)
    )
    async def customers(
        self,
        info: Info[Any, Any],
        filter: CustomerFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[CustomerNode]:
        given = filter or CustomerFilter()
        criteria = service.CustomerFilter(
            updated_since=given.updated_since,
            quality_below=given.quality_below,
            source_system=given.source_system,
            lifecycle_stage=given.lifecycle_stage,
            include_restricted=given.include_restricted,
        )
        # The page's keys only: the customers themselves are read with what was selected.
        keys = service.customers(criteria).only("id", "updated_at")
        page = await paginate(keys, order=RECENTLY_UPDATED, first=first, after=after)
        ids = [row.id for row in page.rows]
        nodes = dict(zip(ids, await customer_nodes(info, ids), strict=True))
        return page.to_connection(lambda row: _present(nodes[row.id]))

"""Queries of the customer 360."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.core.errors import NotFound
from cdlm.core.roles import Role
from cdlm.customer360 import reader
from cdlm.customers import service
from cdlm.customers.api.reading import customer_nodes, role_of, selected
from cdlm.customers.api.types import CustomerNode, EventNode, SourceRecordNode, utc_moment
from cdlm.customers.models import SourceRecord
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
from cdlm.graphql.relay import NodeKind, parse_id
from cdlm.graphql.vocabulary import IdentifierKind, LifecycleStage

READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.ANALYST, Role.AGENT)
#: Looking a person up by their email or phone re-identifies them: not for analysts.
LOOKUP_READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.AGENT)
LIST_READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.ANALYST)
RECENTLY_UPDATED = [SortKey("updated_at", descending=True), SortKey("id")]
#: Root fields answered through compiled plans once a document has been seen (the customer
#: 360 and lists of customers: what frontends ask for most).
PLANNED_ROOTS = frozenset({"customer", "customerByIdentifier", "customers"})


@strawberry.input(description="Which customers to list; every criterion is optional (AND).")
class CustomerFilter:
    updated_since: datetime | None = strawberry.field(
        default=None,
        description="Only customers whose profile changed at or after this moment (with a "
        "time zone).",
    )
    quality_below: float | None = strawberry.field(
        default=None, description="Stored quality score strictly below this (0 to 1)."
    )
    source_system: str | None = strawberry.field(
        default=None, description="Only customers this system sent data about, e.g. crm."
    )
    lifecycle_stage: LifecycleStage | None = strawberry.field(
        default=None, description="Only customers at this stage."
    )
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
    async def customer(
        self,
        info: Info[Any, Any],
        id: Annotated[strawberry.ID, strawberry.argument(description="The customer's id.")],
    ) -> CustomerNode | None:
        return (await customer_nodes(info, [parse_id(id, "id", "Customer")]))[0]

    @strawberry.field(
        description="The customer an email, phone or external id (crm:123) belongs to.",
        extensions=allow(*LOOKUP_READERS),
    )
    async def customer_by_identifier(
        self,
        info: Info[Any, Any],
        kind: Annotated[IdentifierKind, strawberry.argument(description="What `value` is.")],
        value: Annotated[
            str,
            strawberry.argument(
                description="The email, phone (E.164 or national with a + prefix) or external "
                "id as `system:id`; normalized before the lookup."
            ),
        ],
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
        filter: Annotated[
            CustomerFilter | None, strawberry.argument(description="Which customers to list.")
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[CustomerNode]:
        given = filter or CustomerFilter()
        criteria = service.CustomerFilter(
            updated_since=utc_moment(given.updated_since, "filter.updatedSince"),
            quality_below=given.quality_below,
            source_system=given.source_system,
            lifecycle_stage=given.lifecycle_stage,
            include_restricted=given.include_restricted,
        )
        # The page's keys only: the customers themselves are read with what was selected.
        keys = service.customers(criteria).only("id", "updated_at")
        page = await paginate(
            keys, order=RECENTLY_UPDATED, first=first, after=after, last=last, before=before
        )
        ids = [row.id for row in page.rows]
        nodes = dict(zip(ids, await customer_nodes(info, ids), strict=True))
        return page.to_connection(lambda row: _present(nodes[row.id]))


async def _customers(info: Info[Any, Any], ids: list[uuid.UUID]) -> Sequence[object | None]:
    return await customer_nodes(info, ids)


async def _events(info: Info[Any, Any], ids: list[uuid.UUID]) -> Sequence[object | None]:
    found = await reader.events(info.context.vault, ids)
    role = role_of(info)
    shown = [EventNode.of(found[i][1], role) if i in found else None for i in ids]
    owners = [found[i][0] for i in ids if i in found]
    if owners and "properties" in selected(info).paths:
        info.context.audit_read(owners, ["event_properties"])
    return shown


async def _sources(info: Info[Any, Any], ids: list[uuid.UUID]) -> Sequence[object | None]:
    # Records a legal hold keeps through erasure stay with the erased customer: like the
    # customer and its events, they are not readable here.
    found = SourceRecord.filter(id__in=ids, customer__erased_at__isnull=True)
    rows = {row.id: row for row in await found}
    return [SourceRecordNode.from_row(rows[i]) if i in rows else None for i in ids]


NODE_KINDS = (
    NodeKind.of("Customer", READERS, _customers),
    NodeKind.of("Event", READERS, _events),
    NodeKind.of("SourceRecord", READERS, _sources),
)

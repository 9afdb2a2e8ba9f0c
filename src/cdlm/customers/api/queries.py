"""Queries of the customer 360."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types.info import Info

from cdlm.core.errors import NotFound
from cdlm.core.identifiers import IdentifierKind
from cdlm.core.roles import Role
from cdlm.core.vocabulary import LifecycleStage
from cdlm.customers import service
from cdlm.customers.api.types import CustomerNode
from cdlm.customers.models import Customer
from cdlm.graphql.pagination import Connection, SortKey, paginate
from cdlm.graphql.permissions import allow, require_principal
from cdlm.graphql.scalars import parse_id
from cdlm.graphql.selection import selected_paths

READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.ANALYST, Role.AGENT)
#: Looking a person up by their email or phone re-identifies them: not for analysts.
LOOKUP_READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.AGENT)
LIST_READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.ANALYST)
RECENTLY_UPDATED = [SortKey("updated_at", descending=True), SortKey("id")]

#: Selection path → name of the personal field it reads (for the audit trail).
PERSONAL_SELECTIONS = {
    "profile.givenName": "given_name",
    "profile.familyName": "family_name",
    "profile.email": "email",
    "profile.phone": "phone",
    "profile.birthDate": "birth_date",
    "profile.address.line1": "address_line1",
    "profile.address.line2": "address_line2",
    "profile.address.city": "city",
    "profile.address.region": "region",
    "profile.address.postalCode": "postal_code",
    "profile.address.country": "country",
    "identities.value": "identities",
    "events.edges.node.properties": "event_properties",
    "events.nodes.properties": "event_properties",
    "quality.invalidValues.value": "invalid_values",
    "consents.permitted": "consents",
    "consents.decision": "consents",
    "consents.decidedAt": "consents",
}


def personal_fields_read(info: Info[Any, Any], below: str = "") -> list[str]:
    """Names of the personal fields the query selected below this field (and ``below``)."""
    selected = selected_paths(info)
    return sorted(
        {name for path, name in PERSONAL_SELECTIONS.items() if f"{below}{path}" in selected}
    )


async def _audited(info: Info[Any, Any], rows: list[Customer], also: tuple[str, ...] = ()) -> None:
    """Audit the read alongside field resolution; the response waits for it to commit."""
    fields = [*personal_fields_read(info), *also]
    info.context.defer(
        service.audit_reads(await require_principal(info), [row.id for row in rows], fields)
    )


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


@strawberry.type
class CustomerQuery:
    @strawberry.field(
        description="One customer by id (null when unknown).", extensions=allow(*READERS)
    )
    async def customer(self, info: Info[Any, Any], id: strawberry.ID) -> CustomerNode | None:
        try:
            row = await service.get_customer(parse_id(id, "id"))
        except NotFound:
            return None
        await _audited(info, [row])
        return CustomerNode.from_row(row)

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
        await _audited(info, [row], also=("identifier_lookup",))
        return CustomerNode.from_row(row)

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
        page = await paginate(
            service.customers(criteria), order=RECENTLY_UPDATED, first=first, after=after
        )
        await _audited(info, page.rows)
        return page.to_connection(CustomerNode.from_row)

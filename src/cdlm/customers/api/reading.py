"""Customers for a GraphQL request: the parts its selection asks for, read in one statement
(:mod:`cdlm.customer360.reader`), shown as the caller's role may see them, and the personal
fields read noted for the request's one audit record."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLObjectType,
    GraphQLSkipDirective,
    InlineFragmentNode,
    SelectionSetNode,
)
from graphql.execution.values import (
    VariableValues,
    get_argument_values,
    get_directive_values,
)
from strawberry.types.base import get_object_definition
from strawberry.types.info import Info

from cdlm.core.errors import DomainError
from cdlm.customer360 import reader
from cdlm.customer360.values import EventWindow, Parts, Profile360
from cdlm.customers.api.types import CustomerNode, EventFilter, event_window
from cdlm.customers.attributes import ATTRIBUTES
from cdlm.graphql.pagination import PageArgs
from cdlm.quality.fields import PROFILE


@dataclass(frozen=True)
class PersonalRead:
    """What selecting a path below a customer reads: the name the audit trail records and
    the data map entry of the data (None: linked to the person, but not a kept value)."""

    name: str
    place: str | None


_CONNECTION_LEVELS = ("edges.node.", "nodes.")
#: Selection path below a customer → what it reads. A test checks that every personal field
#: of the customer types is here, and on the data map.
PERSONAL_READS: dict[str, PersonalRead] = {
    **{
        f"profile.{field.api_path}": PersonalRead(field.name, f"customer.profile.{field.name}")
        for field in PROFILE
    },
    "identities.value": PersonalRead("identities", "customer.identities.email"),
    **{
        f"analytics.{a.api_path}": PersonalRead(
            "analysis_attributes", f"customer.analytics.{a.api_path}"
        )
        for a in ATTRIBUTES
    },
    "recommendations.items": PersonalRead("recommendations", None),
    "nextBestAction.action": PersonalRead("next_best_action", None),
    "events.edges.node.properties": PersonalRead("event_properties", "customer.events.properties"),
    "events.nodes.properties": PersonalRead("event_properties", "customer.events.properties"),
    **{
        f"journey.{level}event.properties": PersonalRead(
            "event_properties", "customer.events.properties"
        )
        for level in _CONNECTION_LEVELS
    },
    "quality.invalidValues.value": PersonalRead(
        "invalid_values", "customer.quality.invalidValues.value"
    ),
    **{
        f"consents.{name}": PersonalRead("consents", None)
        for name in (
            "permitted",
            "restricted",
            "decision",
            "byDefault",
            "noticeVersion",
            "decidedAt",
        )
    },
}


class Selected:
    """What a query selected below a field: dotted paths (``@skip``/``@include`` honoured,
    fragments followed) and the coerced arguments of each ``events`` selection (there may be
    several, under aliases). Read from the operation's syntax tree once per field."""

    def __init__(self, info: Info[Any, Any], below: str) -> None:
        self.paths: set[str] = set()
        self.events: list[dict[str, Any]] = []
        self._below = below
        raw = info._raw_info
        self._fragments = raw.fragments
        variables = raw.variable_values
        # Strawberry's executor hands resolvers the coerced values as a plain dict.
        self._variables = (
            VariableValues({}, variables) if isinstance(variables, dict) else variables
        )
        customer = raw.schema.get_type(get_object_definition(CustomerNode, strict=True).name)
        assert isinstance(customer, GraphQLObjectType)
        self._events_field = customer.fields["events"]
        for node in raw.field_nodes:
            if node.selection_set is not None:
                self._walk(node.selection_set, "")

    def _included(self, node: FieldNode | InlineFragmentNode | FragmentSpreadNode) -> bool:
        if not node.directives:
            return True
        skip = get_directive_values(GraphQLSkipDirective, node, self._variables)
        if skip is not None and skip.get("if") is True:
            return False
        include = get_directive_values(GraphQLIncludeDirective, node, self._variables)
        return include is None or include.get("if") is not False

    def _walk(self, selections: SelectionSetNode, prefix: str) -> None:
        for node in selections.selections:
            if not isinstance(node, FieldNode | InlineFragmentNode | FragmentSpreadNode):
                continue
            if not self._included(node):
                continue
            if isinstance(node, FieldNode):
                path = self._normalized(f"{prefix}{node.name.value}")
                self.paths.add(path)
                if path == f"{self._below}events":
                    self.events.append(
                        get_argument_values(self._events_field, node, self._variables)
                    )
                if node.selection_set is not None:
                    self._walk(node.selection_set, f"{path}.")
            elif isinstance(node, InlineFragmentNode):
                self._walk(node.selection_set, prefix)
            else:
                fragment = self._fragments.get(node.name.value)
                if fragment is not None:
                    self._walk(fragment.selection_set, prefix)

    @staticmethod
    def _normalized(path: str) -> str:
        for level in _CONNECTION_LEVELS:
            if path.startswith(level):
                return path[len(level) :]
        return path

    def parts(self) -> Parts:
        """The parts of the 360 to read."""
        below = self._below
        return Parts(
            profile=f"{below}profile" in self.paths,
            identities=f"{below}identities" in self.paths,
            consents=f"{below}consents" in self.paths,
            events=frozenset(filter(None, (_window(a) for a in self.events))),
        )

    def personal_fields(self) -> list[str]:
        """Names of the personal fields read."""
        below = self._below
        return sorted(
            {read.name for path, read in PERSONAL_READS.items() if below + path in self.paths}
        )


def _filter(value: Any) -> EventFilter | None:
    """The ``filter`` argument as coerced (an EventFilter, or a plain dict of its fields)."""
    if value is None or isinstance(value, EventFilter):
        return value
    return EventFilter(
        type=value.get("type"),
        occurred_from=value.get("occurredFrom", value.get("occurred_from")),
        occurred_to=value.get("occurredTo", value.get("occurred_to")),
    )


def _window(arguments: dict[str, Any]) -> EventWindow | None:
    """The window an ``events`` selection asks for; None when it is refused (the resolver
    refuses it again, with its field)."""
    try:
        page = PageArgs(
            arguments.get("first"),
            arguments.get("after"),
            arguments.get("last"),
            arguments.get("before"),
        )
        return event_window(_filter(arguments.get("filter")), page)
    except DomainError:
        return None


def selected(info: Info[Any, Any], below: str = "") -> Selected:
    """What the current field selected (``below``: the path of the customer inside it, e.g.
    ``customer.`` in a mutation payload)."""
    return Selected(info, below)


def role_of(info: Info[Any, Any]) -> Any:
    principal = info.context.authenticated_principal
    return principal.role if principal is not None else None


async def customer_nodes(
    info: Info[Any, Any],
    ids: Sequence[uuid.UUID],
    *,
    below: str = "",
    also: Sequence[str] = (),
) -> list[CustomerNode | None]:
    """The customers ``ids`` (a merged id gives its survivor; unknown and erased: None), with
    what the selection asks for read in one statement; the read is noted for the audit."""
    choice = selected(info, below)
    found = await reader.read(info.context.vault, ids, choice.parts())
    return _shown(info, ids, found, choice, also)


def _shown(
    info: Info[Any, Any],
    ids: Sequence[uuid.UUID],
    found: dict[uuid.UUID, Profile360],
    choice: Selected,
    also: Sequence[str],
) -> list[CustomerNode | None]:
    info.context.audit_read(
        [read.customer.id for read in found.values()], [*choice.personal_fields(), *also]
    )
    role = role_of(info)
    vault = info.context.vault
    return [CustomerNode.of(found[i], role, vault) if i in found else None for i in ids]


async def _read_batch(parts: Parts, vault: Any, ids: list[uuid.UUID]) -> list[Profile360 | None]:
    found = await reader.read(vault, ids, parts)
    return [found.get(i) for i in ids]


async def customer_node(
    info: Info[Any, Any], customer_id: uuid.UUID, *, below: str = ""
) -> CustomerNode | None:
    """:func:`customer_nodes` for one customer, batched with the other customers the request
    asks for with the same selection (a list of match candidates reads its customers in one
    statement)."""
    choice = selected(info, below)
    parts = choice.parts()
    read = await info.context.loaders.get(_read_batch, parts, info.context.vault).load(customer_id)
    found = {customer_id: read} if read is not None else {}
    return _shown(info, [customer_id], found, choice, ())[0]

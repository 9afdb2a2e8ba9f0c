"""GraphQL API of customers: the 360 type, queries, acquisition and rectification."""

from cdlm.customers.api.mutations import EVENT_RECORD_SCALAR, CustomerMutation, EventRecord
from cdlm.customers.api.queries import PLANNED_ROOTS, CustomerQuery
from cdlm.graphql.relay import NodeKind

#: How node(id:) fetches this domain's objects.
NODE_KINDS: tuple[NodeKind, ...] = ()

__all__ = [
    "EVENT_RECORD_SCALAR",
    "NODE_KINDS",
    "PLANNED_ROOTS",
    "CustomerMutation",
    "CustomerQuery",
    "EventRecord",
]

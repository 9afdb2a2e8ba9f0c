"""GraphQL API of customers: the 360 type, queries, acquisition and rectification."""

from cdlm.customers.api.mutations import EVENT_RECORD_SCALAR, CustomerMutation, EventRecord
from cdlm.customers.api.queries import PLANNED_ROOTS, CustomerQuery

__all__ = [
    "EVENT_RECORD_SCALAR",
    "PLANNED_ROOTS",
    "CustomerMutation",
    "CustomerQuery",
    "EventRecord",
]

"""GraphQL API of customers: the 360 type, queries, acquisition and rectification."""

from cdlm.customers.api.mutations import CustomerMutation
from cdlm.customers.api.queries import NODE_KINDS, PLANNED_ROOTS, CustomerQuery

__all__ = [
    "NODE_KINDS",
    "PLANNED_ROOTS",
    "CustomerMutation",
    "CustomerQuery",
]

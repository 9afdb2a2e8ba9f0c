"""GraphQL API of customers: the 360 type, queries, acquisition and rectification."""

from cdlm.customers.api.mutations import CustomerMutation
from cdlm.customers.api.queries import CustomerQuery

__all__ = ["CustomerMutation", "CustomerQuery"]

"""GraphQL API of data subject requests."""

from cdlm.dsr.api.mutations import DsrMutation
from cdlm.dsr.api.public import PublicDsrMutation, PublicDsrQuery
from cdlm.dsr.api.queries import DsrQuery

__all__ = ["DsrMutation", "DsrQuery", "PublicDsrMutation", "PublicDsrQuery"]

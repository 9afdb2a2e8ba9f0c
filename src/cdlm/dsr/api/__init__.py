"""GraphQL API of data subject requests."""

from cdlm.dsr.api.mutations import DsrMutation
from cdlm.dsr.api.public import PublicDsrMutation, PublicDsrQuery
from cdlm.dsr.api.queries import DsrQuery
from cdlm.graphql.relay import NodeKind

#: How node(id:) fetches this domain's objects.
NODE_KINDS: tuple[NodeKind, ...] = ()

__all__ = ["NODE_KINDS", "DsrMutation", "DsrQuery", "PublicDsrMutation", "PublicDsrQuery"]

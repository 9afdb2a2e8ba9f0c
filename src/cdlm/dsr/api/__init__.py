"""GraphQL API of data subject requests."""

from cdlm.dsr.api.mutations import DsrMutation
from cdlm.dsr.api.public import PublicDsrMutation, PublicDsrQuery
from cdlm.dsr.api.queries import DsrQuery
from cdlm.dsr.api.types import REQUEST_NODE
from cdlm.graphql.relay import NodeKind

#: How node(id:) fetches this domain's objects.
NODE_KINDS: tuple[NodeKind, ...] = (REQUEST_NODE,)

__all__ = ["NODE_KINDS", "DsrMutation", "DsrQuery", "PublicDsrMutation", "PublicDsrQuery"]

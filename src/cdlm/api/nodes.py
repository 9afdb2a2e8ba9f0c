"""``node(id:)`` and ``nodes(ids:)``: any object by its global id, with the permissions of
the object's own query (each domain declares its kinds in ``NODE_KINDS``)."""

import uuid
from collections import defaultdict
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.analytics.api import NODE_KINDS as ANALYTICS_NODES
from cdlm.analytics.segments.api import NODE_KINDS as SEGMENT_NODES
from cdlm.analytics.segments.export_api import NODE_KINDS as SEGMENT_EXPORT_NODES
from cdlm.audit.api import NODE_KINDS as AUDIT_NODES
from cdlm.auth.api import NODE_KINDS as AUTH_NODES
from cdlm.consent.api import NODE_KINDS as CONSENT_NODES
from cdlm.core.errors import ErrorCode, PermissionDenied, ValidationFailed
from cdlm.customers.api import NODE_KINDS as CUSTOMER_NODES
from cdlm.dsr.api import NODE_KINDS as DSR_NODES
from cdlm.graphql.permissions import authenticated
from cdlm.graphql.relay import Node, NodeDirectory, NodeKind
from cdlm.matching.api import NODE_KINDS as MATCHING_NODES
from cdlm.retention.api import NODE_KINDS as RETENTION_NODES

DIRECTORY = NodeDirectory(
    [
        *AUTH_NODES,
        *AUDIT_NODES,
        *CUSTOMER_NODES,
        *CONSENT_NODES,
        *DSR_NODES,
        *RETENTION_NODES,
        *MATCHING_NODES,
        *ANALYTICS_NODES,
        *SEGMENT_NODES,
        *SEGMENT_EXPORT_NODES,
    ]
)
#: Most ids one ``nodes`` call takes (a page's worth).
MAX_NODES = 100


async def fetch_nodes(info: Info[Any, Any], ids: list[str], field: str) -> list[object | None]:
    """The objects behind ``ids``, in order (None for an id of nothing), one batch per type.

    Every type asked for must admit the caller's role, or the whole field is refused; an id
    that is malformed or names no type is an ``INVALID_ID`` error on ``field``.
    """
    caller = info.context.caller()
    wanted: dict[str, list[tuple[int, uuid.UUID]]] = defaultdict(list)
    kinds: dict[str, NodeKind] = {}
    for position, value in enumerate(ids):
        found = DIRECTORY.kind_of(value)
        if found is None:
            path = field if len(ids) == 1 and field == "id" else f"{field}.{position}"
            raise ValidationFailed(
                "This is not the id of an object.", field=path, code=ErrorCode.INVALID_ID
            )
        kind, key = found
        kinds[kind.type_name] = kind
        wanted[kind.type_name].append((position, key))
    if any(caller is None or caller.role not in kind.roles for kind in kinds.values()):
        raise PermissionDenied("Your role does not allow reading one of these objects.")
    answer: list[object | None] = [None] * len(ids)
    for type_name, positions in wanted.items():
        found_objects = await kinds[type_name].fetch(info, [key for _, key in positions])
        for (position, _), obj in zip(positions, found_objects, strict=True):
            answer[position] = obj
    return answer


@strawberry.type
class NodeQuery:
    @strawberry.field(
        description=(
            "Any object by its global id (null when nothing has that id), for clients that "
            "refetch what they hold. Each type admits the roles of its own query."
        ),
        extensions=authenticated(),
    )
    async def node(
        self,
        info: Info[Any, Any],
        id: Annotated[strawberry.ID, strawberry.argument(description="A global id.")],
    ) -> Node | None:
        return (await fetch_nodes(info, [id], "id"))[0]  # type: ignore[return-value]

    @strawberry.field(
        description=(
            f"Several objects by their global ids (at most {MAX_NODES}), in the order asked, "
            "null where nothing has that id. Each type admits the roles of its own query."
        ),
        extensions=authenticated(),
    )
    async def nodes(
        self,
        info: Info[Any, Any],
        ids: Annotated[list[strawberry.ID], strawberry.argument(description="Global ids.")],
    ) -> list[Node | None]:
        if len(ids) > MAX_NODES:
            raise ValidationFailed(
                f"At most {MAX_NODES} ids at once.", field="ids", code=ErrorCode.TOO_MANY_ITEMS
            )
        return await fetch_nodes(info, list(ids), "ids")  # type: ignore[return-value]

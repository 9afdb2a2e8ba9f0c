"""Relay object identification: opaque global ids and the ``Node`` interface.

Every object the API can fetch again implements :class:`Node`; its ``id`` is a global id, the
base64 of ``<TypeName>:<uuid>`` as Relay tooling expects. Clients treat it as opaque: they get
it from a response and send it back, to ``node(id:)`` or wherever an object is referred to
(``customerId``, ``assigneeId``...). :func:`parse_id` is the one way an argument becomes the
UUID the services use; an id of another type, or one that is not an id at all, is an
``INVALID_ID`` validation error on the argument's path.

Domains describe how to fetch their nodes with :class:`NodeKind`; the schema root gathers them
into a :class:`NodeDirectory` behind ``node``/``nodes``, which admits the same roles as the
type's own root fields.
"""

from __future__ import annotations

import binascii
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import strawberry
from strawberry.relay.utils import from_base64, to_base64
from strawberry.types.info import Info

from cdlm.core.errors import ErrorCode, ValidationFailed
from cdlm.core.roles import Role

_INVALID = "This is not an id of the expected kind."


@strawberry.interface(
    description=(
        "An object with a global id. Fetch it again with `node(id:)` (or several with "
        "`nodes(ids:)`), with the same roles as the object's own query."
    )
)
class Node:
    id: strawberry.ID = strawberry.field(
        description=(
            "Opaque global id: keep it as given and send it back wherever this object is "
            "referred to; it never changes."
        )
    )


def global_id(type_name: str, key: uuid.UUID | str) -> strawberry.ID:
    """The global id of the ``type_name`` object whose database id is ``key``."""
    return strawberry.ID(to_base64(type_name, str(key)))


def split_global_id(value: str) -> tuple[str, uuid.UUID] | None:
    """The type name and UUID inside a global id; None when ``value`` is not one."""
    try:
        type_name, key = from_base64(value)
        return type_name, uuid.UUID(key)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        return None


def parse_id(value: str, field: str, *type_names: str) -> uuid.UUID:
    """The UUID behind the global id ``value`` of one of ``type_names``.

    Anything else (malformed, or the id of another type) raises an ``INVALID_ID``
    :class:`ValidationFailed` on ``field``, the argument's camelCase path.
    """
    if not type_names:
        raise ValueError("parse_id needs the type names it accepts")
    found = split_global_id(str(value))
    if found is None or found[0] not in type_names:
        raise ValidationFailed(_INVALID, field=field, code=ErrorCode.INVALID_ID)
    return found[1]


def parse_optional_id(value: str | None, field: str, *type_names: str) -> uuid.UUID | None:
    """:func:`parse_id` for an argument that may be null."""
    return None if value is None else parse_id(value, field, *type_names)


#: Fetches objects of one kind by database id, in the order asked, None for those not found.
NodeFetcher = Callable[[Info[Any, Any], list[uuid.UUID]], Awaitable[Sequence[object | None]]]


R = TypeVar("R")


def in_order(
    found: Mapping[uuid.UUID, R], ids: Sequence[uuid.UUID], convert: Callable[[R], object]
) -> list[object | None]:
    """The objects of ``ids`` in the order asked, converted; None for an id ``found`` lacks."""
    return [convert(found[i]) if i in found else None for i in ids]


def rows_fetcher(
    load: Callable[[list[uuid.UUID]], Awaitable[Mapping[uuid.UUID, R]]],
    convert: Callable[[R], object],
) -> NodeFetcher:
    """A fetcher for a type whose objects are built from their rows alone: ``load`` reads the
    rows by id, ``convert`` shows one."""

    async def fetch(info: Info[Any, Any], ids: list[uuid.UUID]) -> Sequence[object | None]:
        return in_order(await load(ids), ids, convert)

    return fetch


@dataclass(frozen=True)
class NodeKind:
    """How ``node(id:)`` fetches one type: who may read it, and the batch that reads it."""

    type_name: str
    roles: frozenset[Role]
    fetch: NodeFetcher

    @classmethod
    def of(cls, type_name: str, roles: Iterable[Role], fetch: NodeFetcher) -> NodeKind:
        """A kind readable by ``roles``."""
        return cls(type_name, frozenset(roles), fetch)


class NodeDirectory:
    """Every :class:`NodeKind` of the schema, by type name."""

    def __init__(self, kinds: Iterable[NodeKind]) -> None:
        self.kinds: Mapping[str, NodeKind] = {}
        found: dict[str, NodeKind] = {}
        for kind in kinds:
            if kind.type_name in found:
                raise ValueError(f"node type {kind.type_name} is declared twice")
            found[kind.type_name] = kind
        self.kinds = found

    def kind_of(self, value: str) -> tuple[NodeKind, uuid.UUID] | None:
        """The kind and database id behind a global id; None when it names no known type."""
        found = split_global_id(value)
        if found is None or found[0] not in self.kinds:
            return None
        return self.kinds[found[0]], found[1]

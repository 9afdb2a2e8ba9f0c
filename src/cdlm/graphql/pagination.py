"""Relay connections with opaque keyset cursors.

A cursor encodes the sort-key values of the last row seen, so the next page is a range scan
(``WHERE (k1, k2) > (v1, v2)``) that stays fast and stable when rows are added, unlike offsets.
Pages go both ways, as Relay specifies: ``first``/``after`` forwards, ``last``/``before``
backwards; pages are capped at :data:`MAX_PAGE_SIZE`.

A cursor is bound to the list it was made for: :func:`paginate` puts the table of its query
in the cursor beside the ordering, so lists sorted alike (staff users and API keys, both newest
first) refuse each other's cursors. Timestamps come back as aware UTC datetimes: one without
zone, or one that leaves datetime's range once in UTC, is ``INVALID_CURSOR`` like any other
forged value.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

import strawberry
from tortoise import fields
from tortoise.expressions import Q
from tortoise.fields.base import Field
from tortoise.models import Model
from tortoise.queryset import QuerySet

from cdlm.core.errors import ErrorCode, ValidationFailed
from cdlm.db.reads import read_connection, replica_reads

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
#: Descriptions of the paging arguments, the same on every connection field.
FIRST = f"Page forwards: this many items (1 to {MAX_PAGE_SIZE}, default {DEFAULT_PAGE_SIZE})."
AFTER = "Page forwards: the items after this cursor (a page's `endCursor`)."
LAST = f"Page backwards: this many items (1 to {MAX_PAGE_SIZE}) before `before` or the end."
BEFORE = "Page backwards: the items before this cursor (a page's `startCursor`)."
#: The paging arguments of every connection field, described once.
First = Annotated[int | None, strawberry.argument(description=FIRST)]
After = Annotated[str | None, strawberry.argument(description=AFTER)]
Last = Annotated[int | None, strawberry.argument(description=LAST)]
Before = Annotated[str | None, strawberry.argument(description=BEFORE)]
_CURSOR_VERSION = 1
_MAX_CURSOR_LENGTH = 1024

ModelT = TypeVar("ModelT", bound=Model)
NodeT = TypeVar("NodeT")


@strawberry.type(description="Where a page sits in the whole list.")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="More items follow this page: ask with `first` and `after: endCursor`."
    )
    has_previous_page: bool = strawberry.field(
        description="Items come before this page: ask with `last` and `before: startCursor`."
    )
    start_cursor: str | None = strawberry.field(
        description="The cursor of the page's first item (null when the page is empty)."
    )
    end_cursor: str | None = strawberry.field(
        description="The cursor of the page's last item (null when the page is empty)."
    )


@strawberry.type(description="One item of a connection with its cursor.")
class Edge(Generic[NodeT]):
    node: NodeT = strawberry.field(description="The item.")
    make_cursor: strawberry.Private[Callable[[], str]]

    @strawberry.field(
        description="Opaque cursor of this item: pass it as `after` or `before` to page on."
    )
    def cursor(self) -> str:
        # Made when asked for: most pages are read through `nodes`.
        return self.make_cursor()


@strawberry.type(description="A page of a list, Relay style.")
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]] = strawberry.field(description="The items with their cursors.")
    page_info: PageInfo = strawberry.field(description="Where this page sits in the list.")

    @strawberry.field(description="The items of this page (the edges' nodes).")
    def nodes(self) -> list[NodeT]:
        return [edge.node for edge in self.edges]


@strawberry.type(description="A page of a list, Relay style, that can tell the list's size.")
class CountedConnection(Connection[NodeT]):
    """Subclass it per node type (``class ApiKeyConnection(CountedConnection[ApiKey])``) for
    lists small enough to count on every request that asks."""

    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many items the whole list has, with its filter applied.")
    async def total_count(self) -> int:
        return await self.count()


@dataclass(frozen=True)
class SortKey:
    """One column of a keyset ordering."""

    field: str
    descending: bool = False


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"u": str(value)}
    if isinstance(value, Decimal):
        return {"d": str(value)}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot use {type(value).__name__} in a cursor")


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((kind, raw),) = value.items()
        if kind == "t":
            if not isinstance(raw, str):
                raise ValueError("malformed cursor timestamp")
            moment = datetime.fromisoformat(raw)
            if moment.tzinfo is None:
                raise ValueError("cursor timestamp without zone")
            # Raises OverflowError for moments outside datetime's range once in UTC
            # (0001-01-01T00:00:00+14:00): the caller refuses them like any forged value.
            return moment.astimezone(UTC)
        if kind == "u":
            return uuid.UUID(raw)
        if kind == "d":
            return Decimal(raw)
        raise ValueError("unknown cursor value kind")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError("malformed cursor value")


def _list_tag(order: Sequence[SortKey], list_name: str | None) -> str:
    ordering = ",".join(f"-{k.field}" if k.descending else k.field for k in order)
    return ordering if list_name is None else f"{list_name}:{ordering}"


def encode_cursor(
    order: Sequence[SortKey], values: Sequence[Any], *, list_name: str | None = None
) -> str:
    """An opaque cursor for a row of the list ``list_name`` whose values of the sort keys
    ``order`` are ``values``.

    Without ``list_name`` the cursor is bound to the ordering alone, so a list that does not
    go through :func:`paginate` must have an ordering no other such list uses.
    """
    payload = json.dumps(
        [_CURSOR_VERSION, _list_tag(order, list_name), [_encode_value(v) for v in values]],
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(
    cursor: str,
    order: Sequence[SortKey],
    field: str = "after",
    *,
    list_name: str | None = None,
) -> list[Any]:
    """The sort-key values inside ``cursor``; a bad cursor raises :class:`ValidationFailed`.

    A cursor only fits the list (``list_name``) and ordering it was made for: one from another
    list or sort is refused. Timestamps come back in UTC.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        if len(cursor) > _MAX_CURSOR_LENGTH:
            raise ValueError("cursor too long")
        raw = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
        version, tag, values = json.loads(raw)
        if version != _CURSOR_VERSION or not isinstance(values, list):
            raise ValueError("unsupported cursor")
        if tag != _list_tag(order, list_name) or len(values) != len(order):
            raise ValueError("cursor of another list")
        return [_decode_value(v) for v in values]
    except Exception:  # any malformed or forged content is the caller's error, never a 500
        raise ValidationFailed(
            "The cursor is not valid for this list.", field=field, code=ErrorCode.INVALID_CURSOR
        ) from None


_INT_BOUNDS = {
    "SmallIntField": 2**15,
    "IntField": 2**31,
    "BigIntField": 2**63,
}


def _coerce(field: Field[Any], value: Any) -> Any:
    """``value`` checked against the model field it is compared with (forged cursors)."""
    kind = type(field).__name__
    if isinstance(field, fields.DatetimeField):
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise TypeError("expected an aware datetime")
    elif isinstance(field, fields.UUIDField):
        if not isinstance(value, uuid.UUID):
            raise TypeError("expected a UUID")
    elif kind in _INT_BOUNDS:
        bound = _INT_BOUNDS[kind]
        if not isinstance(value, int) or isinstance(value, bool) or not -bound <= value < bound:
            raise TypeError("expected an integer in range")
    elif isinstance(field, fields.BooleanField):
        if not isinstance(value, bool):
            raise TypeError("expected a boolean")
    elif isinstance(field, fields.FloatField):
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # JSON writes 1.0 as 1
        if not isinstance(value, float) or not math.isfinite(value):
            raise TypeError("expected a finite number")
    elif isinstance(field, fields.DecimalField):
        if not isinstance(value, Decimal) or not value.is_finite():
            raise TypeError("expected a decimal")
    elif isinstance(field, fields.CharField | fields.TextField):
        if not isinstance(value, str):
            raise TypeError("expected a string")
    else:
        raise TypeError(f"cannot paginate on {kind}")
    return value


def _sort_fields(model: type[Model], order: Sequence[SortKey]) -> list[Field[Any]]:
    found: list[Field[Any]] = []
    for key in order:
        field = model._meta.fields_map.get(key.field)
        if field is None:
            raise ValueError(f"{model.__name__} has no field {key.field}")
        if field.null:
            raise ValueError(f"cannot paginate on nullable {model.__name__}.{key.field}")
        found.append(field)
    last = found[-1]
    if not (last.pk or last.unique):
        raise ValueError("the last sort key must be unique (e.g. the primary key)")
    return found


def check_page_size(first: int | None, field: str = "first") -> int:
    """``first`` or the default, refusing sizes outside ``1..MAX_PAGE_SIZE``."""
    if first is None:
        return DEFAULT_PAGE_SIZE
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise ValidationFailed(f"{field} must be between 1 and {MAX_PAGE_SIZE}.", field=field)
    return first


def _reversed(order: Sequence[SortKey]) -> list[SortKey]:
    return [SortKey(key.field, not key.descending) for key in order]


def _after_filter(keys: Sequence[SortKey], values: Sequence[Any]) -> Q:
    """Rows strictly after ``values`` in the ordering ``keys`` (mixed directions allowed)."""
    disjuncts: list[Q] = []
    for position, key in enumerate(keys):
        equal = {k.field: v for k, v in zip(keys[:position], values[:position], strict=True)}
        operator = "lt" if key.descending else "gt"
        disjuncts.append(Q(**equal, **{f"{key.field}__{operator}": values[position]}))
    combined = disjuncts[0]
    for extra in disjuncts[1:]:
        combined = combined | extra
    return combined


@dataclass(frozen=True)
class PageArgs:
    """The paging arguments of a connection field: ``first``/``after`` or ``last``/``before``."""

    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    @property
    def backwards(self) -> bool:
        """True when the page is counted back from ``before`` (or from the end)."""
        return self.last is not None

    def size(self) -> int:
        """The page size asked for, or the default; refuses both directions at once."""
        if self.first is not None and self.last is not None:
            raise ValidationFailed("Give first or last, not both.", field="last")
        if self.backwards:
            return check_page_size(self.last, field="last")
        return check_page_size(self.first)


@dataclass(frozen=True)
class Page(Generic[ModelT]):
    """Rows of one page, in list order, with their cursors."""

    rows: list[ModelT]
    order: Sequence[SortKey]
    list_name: str
    has_next_page: bool
    has_previous_page: bool
    count: Callable[[], Awaitable[int]]

    def cursor(self, row: ModelT) -> str:
        """The cursor of ``row``."""
        values = [getattr(row, k.field) for k in self.order]
        return encode_cursor(self.order, values, list_name=self.list_name)

    def to_connection(
        self, convert: Callable[[ModelT], NodeT], cls: type[Connection[NodeT]] = Connection
    ) -> Connection[NodeT]:
        """The GraphQL connection of this page, converting each row with ``convert``; ``cls``
        a :class:`CountedConnection` subclass for a list that tells its size."""
        edges = [
            Edge(node=convert(row), make_cursor=functools.partial(self.cursor, row))
            for row in self.rows
        ]
        info = PageInfo(
            has_next_page=self.has_next_page,
            has_previous_page=self.has_previous_page,
            start_cursor=self.cursor(self.rows[0]) if self.rows else None,
            end_cursor=self.cursor(self.rows[-1]) if self.rows else None,
        )
        if issubclass(cls, CountedConnection):
            return cls(edges=edges, page_info=info, count=self.count)
        return cls(edges=edges, page_info=info)


def _checked_cursor(
    cursor: str, field: str, order: Sequence[SortKey], sort_fields: list[Field[Any]], name: str
) -> list[Any]:
    values = decode_cursor(cursor, order, field, list_name=name)
    try:
        return [_coerce(f, v) for f, v in zip(sort_fields, values, strict=True)]
    except TypeError:
        raise ValidationFailed(
            "The cursor is not valid for this list.", field=field, code=ErrorCode.INVALID_CURSOR
        ) from None


async def paginate(
    query: QuerySet[ModelT],
    *,
    order: Sequence[SortKey],
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Page[ModelT]:
    """One page of ``query`` in keyset ``order``: the ``first`` rows after ``after``, or the
    ``last`` rows before ``before`` (both cursors may bound the same page).

    Sort keys must be non-nullable columns and the last one unique (e.g. ``id``), so every row
    has exactly one place in the order. Cursors are bound to the query's table: one made for
    another list is refused even when both lists sort alike. The page's ``count`` counts the
    whole ``query`` when awaited.
    """
    if not order:
        raise ValueError("paginate needs at least one sort key")
    args = PageArgs(first, after, last, before)
    sort_fields = _sort_fields(query.model, order)
    list_name = query.model._meta.db_table
    size = args.size()
    whole = query
    if after is not None:
        query = query.filter(
            _after_filter(order, _checked_cursor(after, "after", order, sort_fields, list_name))
        )
    if before is not None:
        values = _checked_cursor(before, "before", order, sort_fields, list_name)
        query = query.filter(_after_filter(_reversed(order), values))
    walk = _reversed(order) if args.backwards else list(order)
    ordering = [f"-{k.field}" if k.descending else k.field for k in walk]
    rows = await _read_page(query.order_by(*ordering).limit(size + 1))
    more = len(rows) > size
    rows = rows[:size]
    if args.backwards:
        rows.reverse()
    return Page(
        rows=rows,
        order=order,
        list_name=list_name,
        has_next_page=(before is not None) if args.backwards else more,
        has_previous_page=more if args.backwards else (after is not None),
        count=functools.partial(_count, whole),
    )


@replica_reads
async def _read_page(query: QuerySet[ModelT]) -> list[ModelT]:
    return list(await query.using_db(read_connection()))


@replica_reads
async def _count(query: QuerySet[Any]) -> int:
    return await query.using_db(read_connection()).count()

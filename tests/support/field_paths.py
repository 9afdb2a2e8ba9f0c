"""Every error ``field`` a response carries names a real argument path of the operation.

:func:`check_field_paths` is applied by the test client to every response the suite receives:
a user error or field issue inside a mutation's result, and a top-level error's
``extensions.field``, must be a dotted camelCase path that starts at one of the field's
arguments and walks its input types (numbers step into lists), e.g. ``input.profile.email``
or ``input.events.3.amount``.
"""

from __future__ import annotations

import functools
from typing import Any

from graphql import (
    FieldNode,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
    parse,
)

from cdlm.api.schema import create_schema


@functools.cache
def _schema() -> GraphQLSchema:
    return create_schema()._schema


def _unwrap(kind: Any) -> Any:
    return kind.of_type if isinstance(kind, GraphQLNonNull) else kind


def path_problem(field: GraphQLField, path: str) -> str | None:
    """Why ``path`` names no argument path of ``field``; None when it does."""
    first, *rest = path.split(".")
    if first not in field.args:
        return f"{path!r}: {first!r} is not an argument"
    kind: GraphQLInputType = _unwrap(field.args[first].type)
    for step in rest:
        if step.isdigit():
            if not isinstance(kind, GraphQLList):
                return f"{path!r}: {step} indexes something that is not a list"
            kind = _unwrap(kind.of_type)
            continue
        if isinstance(kind, GraphQLList):
            return f"{path!r}: {step!r} follows a list without a position"
        if not isinstance(kind, GraphQLInputObjectType):
            return f"{path!r}: {step!r} is below a scalar"
        if step not in kind.fields:
            return f"{path!r}: {kind.name} has no field {step!r}"
        kind = _unwrap(kind.fields[step].type)
    return None


def _error_fields(value: Any) -> list[str]:
    """``field`` values of user errors and field issues anywhere inside ``value``."""
    found: list[str] = []
    if isinstance(value, dict):
        if isinstance(value.get("field"), str) and ("code" in value or "message" in value):
            found.append(value["field"])
        for item in value.values():
            found += _error_fields(item)
    elif isinstance(value, list):
        for item in value:
            found += _error_fields(item)
    return found


@functools.lru_cache(maxsize=1024)
def _root_fields(document: str) -> tuple[OperationType, dict[str, str]] | None:
    parsed = parse(document)
    operations = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1:
        return None
    operation = operations[0]
    names = {
        (s.alias or s.name).value: s.name.value
        for s in operation.selection_set.selections
        if isinstance(s, FieldNode)
    }
    return operation.operation, names


def _field_at(
    schema: GraphQLSchema, root: GraphQLObjectType, path: list[Any], document: str
) -> GraphQLField | None:
    """The schema field a top-level error's path ends at (aliases resolved at the root)."""
    found = _root_fields(document)
    if found is None or not path or not isinstance(path[0], str):
        return None
    name = found[1].get(path[0], path[0])
    field = root.fields.get(name)
    for step in path[1:]:
        if field is None or isinstance(step, int):
            continue
        parent = get_named_type(field.type)
        if not isinstance(parent, GraphQLObjectType) or step not in parent.fields:
            return None  # an alias below the root: not checked
        field = parent.fields[step]
    return field if isinstance(field, GraphQLField) else None


def check_field_paths(document: str, body: dict[str, Any]) -> list[str]:
    """Problems with the error paths of one response (empty when every path is real)."""
    try:
        found = _root_fields(document)
    except Exception:  # a document that does not parse has no paths to check
        return []
    if found is None:
        return []
    schema = _schema()
    operation, names = found
    problems: list[str] = []
    root = schema.mutation_type if operation is OperationType.MUTATION else schema.query_type
    if root is None:
        return []
    if operation is OperationType.MUTATION and isinstance(body.get("data"), dict):
        for alias, result in body["data"].items():
            field = root.fields.get(names.get(alias, ""))
            if field is None:
                continue
            for path in _error_fields(result):
                problem = path_problem(field, path)
                if problem:
                    problems.append(f"{names[alias]}: {problem}")
    for error in body.get("errors") or []:
        at = (error.get("extensions") or {}).get("field")
        if not isinstance(at, str):
            continue
        field = _field_at(schema, root, error.get("path") or [], document)
        if field is not None:
            problem = path_problem(field, at)
            if problem:
                problems.append(f"top-level error: {problem}")
    return problems

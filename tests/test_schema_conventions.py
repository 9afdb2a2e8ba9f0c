"""The schema follows its naming conventions and describes everything, for the frontend
developers who live in it: one test per named type, so a failure names the type."""

from __future__ import annotations

import re

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLUnionType,
    get_named_type,
)

from cdlm.api.schema import create_schema

pytestmark = pytest.mark.pure
SCHEMA = create_schema()._schema
#: GraphQL's own scalars and introspection types are described by the specification.
BUILT_IN = {"String", "Int", "Float", "Boolean", "ID"}
TYPES = sorted(
    name for name in SCHEMA.type_map if not name.startswith("__") and name not in BUILT_IN
)
MUTATIONS = SCHEMA.mutation_type.fields if SCHEMA.mutation_type else {}


def _undescribed(named: GraphQLNamedType) -> list[str]:
    missing = [] if named.description else ["(the type)"]
    if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
        for name, field in named.fields.items():
            if not field.description:
                missing.append(name)
            missing += [f"{name}({arg})" for arg, a in field.args.items() if not a.description]
    elif isinstance(named, GraphQLInputObjectType):
        missing += [name for name, field in named.fields.items() if not field.description]
    elif isinstance(named, GraphQLEnumType):
        missing += [name for name, value in named.values.items() if not value.description]
    return missing


@pytest.mark.parametrize("type_name", TYPES)
def test_every_type_field_argument_and_value_is_described(type_name: str) -> None:
    assert _undescribed(SCHEMA.type_map[type_name]) == []


@pytest.mark.parametrize("type_name", TYPES)
def test_types_are_bare_nouns(type_name: str) -> None:
    assert not type_name.endswith("Node") or type_name == "Node"
    assert not re.search(r"NodeConnection|NodeEdge", type_name)


def _upper_first(name: str) -> str:
    return name[0].upper() + name[1:]


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_mutation_has_its_own_result_union_and_input(mutation: str) -> None:
    field = MUTATIONS[mutation]
    result = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    assert isinstance(result, GraphQLUnionType), f"{mutation} does not return a result union"
    assert result.name == f"{_upper_first(mutation)}Result"
    if "input" in field.args:
        assert get_named_type(field.args["input"].type).name == f"{_upper_first(mutation)}Input"
    others = [name for name, arg in field.args.items() if name not in {"input", "idempotencyKey"}]
    assert others == [], "a mutation takes its input as `input` (and an idempotencyKey)"


def test_no_input_type_serves_two_mutations() -> None:
    inputs = [
        get_named_type(field.args["input"].type).name
        for field in MUTATIONS.values()
        if "input" in field.args
    ]
    assert len(inputs) == len(set(inputs))


def test_user_error_codes_are_only_about_the_input() -> None:
    codes = SCHEMA.type_map["UserErrorCode"]
    assert isinstance(codes, GraphQLEnumType)
    assert not {"UNAUTHENTICATED", "FORBIDDEN", "INTERNAL"} & set(codes.values)


@pytest.mark.parametrize("type_name", TYPES)
def test_objects_with_an_id_are_nodes(type_name: str) -> None:
    named = SCHEMA.type_map[type_name]
    if isinstance(named, GraphQLObjectType) and "id" in named.fields:
        assert "Node" in {interface.name for interface in named.interfaces}


RESULT_UNIONS = sorted(
    name
    for name, named in SCHEMA.type_map.items()
    if isinstance(named, GraphQLUnionType) and name.endswith("Result")
)


@pytest.mark.parametrize("union", RESULT_UNIONS)
def test_result_unions_describe_exactly_their_members(union: str) -> None:
    named = SCHEMA.type_map[union]
    assert isinstance(named, GraphQLUnionType)
    described = set(re.findall(r"\b([A-Z]\w+Error)\b", named.description or ""))
    members = {member.name for member in named.types if member.name.endswith("Error")}
    assert described == members
    assert len(named.types) == len(members) + 1, "one success type, then errors"


def _root_lists() -> list[tuple[str, str]]:
    query = SCHEMA.query_type
    assert query is not None
    found = []
    for name, field in query.fields.items():
        kind = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
        if isinstance(kind, GraphQLList) or get_named_type(kind).name.endswith("Connection"):
            found.append((name, get_named_type(kind).name))
    return found


@pytest.mark.parametrize(("field", "type_name"), _root_lists())
def test_root_lists_of_objects_are_connections_with_a_filter_both_ways(
    field: str, type_name: str
) -> None:
    named = SCHEMA.type_map[type_name]
    if field == "nodes" or not type_name.endswith("Connection"):
        # Plain lists are only for `nodes` and report rows that are not objects of their own.
        assert field == "nodes" or "Node" not in {i.name for i in getattr(named, "interfaces", [])}
        return
    query = SCHEMA.query_type
    assert query is not None
    assert {"filter", "first", "after", "last", "before"} <= set(query.fields[field].args)

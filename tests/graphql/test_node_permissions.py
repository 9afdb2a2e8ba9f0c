"""``node``/``nodes`` admit, per type, exactly the roles of the type's own query: the same
matrix as the root fields, walked for every kind of node."""

from __future__ import annotations

import uuid

import pytest
from graphql import GraphQLNonNull, get_named_type

from cdlm.api.nodes import DIRECTORY
from cdlm.api.schema import create_schema
from cdlm.auth.settings import AuthSettings
from cdlm.core.roles import Role
from cdlm.graphql.permissions import RoleAccess
from cdlm.graphql.relay import global_id
from tests.conftest import GraphQLClient
from tests.factories import bearer, make_api_key

schema = create_schema()
KINDS = sorted(DIRECTORY.kinds)


def _fetch_by_id_roles(type_name: str) -> frozenset[Role] | None:
    """The roles of the root query that fetches ``type_name`` by its id, if there is one."""
    query = schema._schema.query_type
    assert query is not None
    definition = schema.query.__strawberry_definition__  # type: ignore[union-attr]
    for field in definition.fields:
        name = schema.config.name_converter.get_graphql_name(field)
        graphql_field = query.fields[name]
        if get_named_type(graphql_field.type).name != type_name or "id" not in graphql_field.args:
            continue
        if not isinstance(graphql_field.args["id"].type, GraphQLNonNull):
            continue
        access = [e for e in field.extensions if isinstance(e, RoleAccess)]
        return access[0].roles if access else None
    return None


def test_every_node_type_is_a_schema_type_implementing_node() -> None:
    for type_name in KINDS:
        named = schema._schema.type_map[type_name]
        assert "Node" in {i.name for i in getattr(named, "interfaces", [])}, type_name


def test_every_type_implementing_node_can_be_fetched_by_node() -> None:
    implementing = {
        named.name
        for named in schema._schema.type_map.values()
        if "Node" in {i.name for i in getattr(named, "interfaces", [])}
    }
    assert implementing == set(KINDS)


@pytest.mark.parametrize("type_name", KINDS)
def test_a_node_type_admits_the_roles_of_its_fetch_by_id_query(type_name: str) -> None:
    roles = _fetch_by_id_roles(type_name)
    if roles is not None:
        assert DIRECTORY.kinds[type_name].roles == roles


NODE = "query($id: ID!) { node(id: $id) { __typename id } }"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename } }"


@pytest.mark.parametrize("role", list(Role))
async def test_node_matrix(gql: GraphQLClient, auth: AuthSettings, role: Role) -> None:
    headers = bearer(await make_api_key(auth, role))
    for type_name in KINDS:
        unknown = global_id(type_name, uuid.uuid4())
        body = await gql(NODE, {"id": unknown}, headers=headers)
        allowed = role in DIRECTORY.kinds[type_name].roles
        if allowed:
            assert body == {"data": {"node": None}}, (type_name, body)
        else:
            codes = [e["extensions"]["code"] for e in body["errors"]]
            assert codes == ["FORBIDDEN"], (type_name, body)
    # nodes: refused as a whole when one type is not readable by the role.
    everything = [global_id(t, uuid.uuid4()) for t in KINDS]
    body = await gql(NODES, {"ids": everything}, headers=headers)
    if all(role in DIRECTORY.kinds[t].roles for t in KINDS):
        assert body["data"]["nodes"] == [None] * len(KINDS)
    else:
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def test_node_needs_authentication(gql: GraphQLClient) -> None:
    body = await gql(NODE, {"id": global_id("Customer", uuid.uuid4())})
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not base64 at all",
        global_id("NoSuchType", uuid.uuid4()),
        "Q3VzdG9tZXI6bm90LWEtdXVpZA==",
    ],
)
async def test_a_malformed_id_is_an_invalid_id_error(
    gql: GraphQLClient, auth: AuthSettings, value: str
) -> None:
    headers = bearer(await make_api_key(auth, Role.ADMIN))
    body = await gql(NODE, {"id": value}, headers=headers)
    assert body["data"] == {"node": None}
    assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in body["errors"]] == [
        ("INVALID_ID", "id")
    ]
    body = await gql(NODES, {"ids": [global_id("Customer", uuid.uuid4()), value]}, headers=headers)
    assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in body["errors"]] == [
        ("INVALID_ID", "ids.1")
    ]


async def test_nodes_takes_at_most_a_page_of_ids(gql: GraphQLClient, auth: AuthSettings) -> None:
    headers = bearer(await make_api_key(auth, Role.ADMIN))
    ids = [global_id("Customer", uuid.uuid4()) for _ in range(101)]
    body = await gql(NODES, {"ids": ids}, headers=headers)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["TOO_MANY_ITEMS"]

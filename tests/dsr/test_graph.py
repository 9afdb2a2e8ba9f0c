"""Requests as a graph: global ids behind node/nodes, the list paged both ways with its total,
the references a request leads to, and each mutation's own result union with exactly its
errors."""

from __future__ import annotations

import logging
import uuid

import pytest
from graphql import GraphQLUnionType

from cdlm.api.schema import create_schema
from cdlm.auth.settings import AuthSettings
from cdlm.core.roles import Role
from cdlm.dsr.models import DataSubjectRequest
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.dsr.support import (
    ASSIGN,
    EXTEND,
    RESEND_LINK,
    SUBMIT,
    approved,
    change,
    execute,
    file_request,
    key,
    request_gid,
    submission,
)
from tests.factories import bearer, gid, make_api_key, make_customer, make_staff
from tests.support.audit import read_records

NODE = """
query($id: ID!) { node(id: $id) { __typename id ... on DataSubjectRequest { status type } } }
"""
NODES = """
query($ids: [ID!]!) { nodes(ids: $ids) { id ... on DataSubjectRequest { status } } }
"""
PAGE = """
query($filter: DataSubjectRequestFilter, $first: Int, $after: String, $last: Int,
      $before: String) {
  dataSubjectRequests(filter: $filter, first: $first, after: $after, last: $last,
                      before: $before) {
    totalCount
    nodes { id }
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
REFERENCES = """
query($id: ID!) {
  dataSubjectRequest(id: $id) {
    customerId
    customer { id profile { email } }
    assigneeId
    duplicateOfId
    duplicateOf { id }
  }
}
"""
ASSIGNEE = """
query($id: ID!) {
  dataSubjectRequest(id: $id) { assigneeId assignee { id displayName role } }
}
"""


@pytest.fixture(autouse=True)
def notifications(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cdlm.notifications")


async def _filed(gql: GraphQLClient, headers: dict[str, str], email: str, **extra: object) -> str:
    filed = await file_request(gql, headers, "ACCESS", email, **extra)
    assert filed["__typename"] == "DataSubjectRequestFiled", filed
    request_id: str = filed["request"]["id"]
    return request_id


# ------------------------------------------------------------------------------- nodes


async def test_a_request_is_a_node_for_the_roles_that_read_requests(
    gql: GraphQLClient, admin_headers: dict[str, str], auth: AuthSettings
) -> None:
    request_id = await _filed(gql, admin_headers, "node@example.com")
    assert request_id == request_gid(key(request_id))
    officer = bearer(await make_api_key(auth, Role.PRIVACY_OFFICER))
    for headers in (admin_headers, officer):
        found = await gql(NODE, {"id": request_id}, headers)
        assert found == {
            "data": {
                "node": {
                    "__typename": "DataSubjectRequest",
                    "id": request_id,
                    "status": "VERIFIED",
                    "type": "ACCESS",
                }
            }
        }
    other = await _filed(gql, admin_headers, "other@example.com", jurisdiction="CCPA")
    unknown = request_gid(uuid.uuid4())
    many = await gql(NODES, {"ids": [other, unknown, request_id]}, officer)
    assert many["data"]["nodes"] == [
        {"id": other, "status": "VERIFIED"},
        None,
        {"id": request_id, "status": "VERIFIED"},
    ]
    assert (await gql(NODE, {"id": unknown}, admin_headers))["data"] == {"node": None}


@pytest.mark.parametrize("role", [Role.AGENT, Role.ANALYST, Role.STEWARD, Role.INGEST])
async def test_roles_that_do_not_read_requests_get_no_node(
    gql: GraphQLClient, admin_headers: dict[str, str], auth: AuthSettings, role: Role
) -> None:
    request_id = await _filed(gql, admin_headers, "hidden@example.com")
    refused = await gql(NODE, {"id": request_id}, bearer(await make_api_key(auth, role)))
    assert refused["data"] == {"node": None}
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["FORBIDDEN"]


async def test_a_malformed_request_id_is_an_invalid_id_wherever_it_is_given(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    request_id = await _filed(gql, admin_headers, "ids@example.com")
    malformed = await gql(NODE, {"id": "not-an-id"}, admin_headers)
    assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in malformed["errors"]] == [
        ("INVALID_ID", "id")
    ]
    # The database id alone, or the id of another type, is not a request's id.
    for wrong in (str(key(request_id)), gid("Customer", key(request_id))):
        answer = await gql(
            "query($id: ID!) { dataSubjectRequest(id: $id) { id } }", {"id": wrong}, admin_headers
        )
        [error] = answer["errors"]
        assert (error["extensions"]["code"], error["extensions"]["field"]) == ("INVALID_ID", "id")
    for criterion in ("customerId", "assigneeId"):
        for wrong in (str(key(request_id)), request_id):
            listed = await gql(PAGE, {"filter": {criterion: wrong}}, admin_headers)
            [error] = listed["errors"]
            assert (error["extensions"]["code"], error["extensions"]["field"]) == (
                "INVALID_ID",
                f"filter.{criterion}",
            )


# ------------------------------------------------------------------------------ paging


async def test_the_list_pages_both_ways_and_counts_what_the_filter_keeps(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    ids = [await _filed(gql, admin_headers, f"p{n}@example.org") for n in range(5)]
    cancelled = ids[1]
    await change(gql, admin_headers, cancelled, "CANCELLED", "Withdrawn.")

    first = (await gql(PAGE, {"first": 2}, admin_headers))["data"]["dataSubjectRequests"]
    assert first["totalCount"] == 5
    assert [n["id"] for n in first["nodes"]] == ids[:2]
    assert (first["pageInfo"]["hasNextPage"], first["pageInfo"]["hasPreviousPage"]) == (
        True,
        False,
    )

    # Backwards from the end, then from a cursor: the same order, oldest first.
    last = (await gql(PAGE, {"last": 2}, admin_headers))["data"]["dataSubjectRequests"]
    assert [n["id"] for n in last["nodes"]] == ids[3:]
    assert (last["pageInfo"]["hasNextPage"], last["pageInfo"]["hasPreviousPage"]) == (
        False,
        True,
    )
    before = last["pageInfo"]["startCursor"]
    earlier = (await gql(PAGE, {"last": 2, "before": before}, admin_headers))["data"][
        "dataSubjectRequests"
    ]
    assert [n["id"] for n in earlier["nodes"]] == ids[1:3]
    assert [e["node"]["id"] for e in earlier["edges"]] == ids[1:3]
    assert earlier["pageInfo"]["hasNextPage"] is True
    assert earlier["totalCount"] == 5

    verified = {"status": "VERIFIED"}
    kept = (await gql(PAGE, {"filter": verified, "last": 1}, admin_headers))["data"][
        "dataSubjectRequests"
    ]
    assert kept["totalCount"] == 4
    assert [n["id"] for n in kept["nodes"]] == ids[4:]

    both = await gql(PAGE, {"first": 1, "last": 1}, admin_headers)
    assert both["errors"][0]["extensions"]["field"] == "last"


# -------------------------------------------------------------------------- references


async def test_a_request_leads_to_its_customer_and_to_the_request_it_repeats(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault, auth: AuthSettings
) -> None:
    customer = await make_customer(vault, email="ref@example.com", birth_date="1990-04-01")
    request_id = await _filed(gql, admin_headers, "ref@example.com")
    repeat = await _filed(gql, admin_headers, "ref@example.com")
    shown = (await gql(REFERENCES, {"id": repeat}, admin_headers))["data"]["dataSubjectRequest"]
    customer_id = gid("Customer", customer.customer_id)
    assert shown["customerId"] == customer_id
    assert shown["customer"]["profile"] == {"email": "ref@example.com"}
    assert (shown["assigneeId"], shown["duplicateOfId"]) == (None, request_id)
    assert shown["duplicateOf"] == {"id": request_id}
    # The customer is shown as the caller's role may see it (an agent, who files, sees no
    # birth date), and the read is audited like any read of a customer.
    agent = bearer(await make_api_key(auth, Role.AGENT))
    filed = await gql(
        """
        mutation($input: FileDataSubjectRequestInput!) {
          fileDataSubjectRequest(input: $input) {
            ... on DataSubjectRequestFiled {
              request { customer { profile { email birthDate } } }
            }
          }
        }
        """,
        {
            "input": {
                **submission("RESTRICTION", "ref@example.com"),
                "verificationMethod": "KNOWN_CONTACT_DETAILS",
            }
        },
        agent,
    )
    profile = filed["data"]["fileDataSubjectRequest"]["request"]["customer"]["profile"]
    assert profile == {"email": "ref@example.com", "birthDate": None}  # a date has no mask
    reads = await read_records("customer.read", customer.customer_id)
    assert [r.actor_role for r in reads] == ["admin", "agent"]
    # An agent files requests but reads no others: the original is known by id only.
    agent_copy = await gql(
        """
        mutation($input: FileDataSubjectRequestInput!) {
          fileDataSubjectRequest(input: $input) {
            ... on DataSubjectRequestFiled { request { duplicateOfId duplicateOf { id } } }
          }
        }
        """,
        {
            "input": {
                **submission("ACCESS", "ref@example.com"),
                "verificationMethod": "IDENTITY_DOCUMENT",
            }
        },
        agent,
    )
    filed_copy = agent_copy["data"]["fileDataSubjectRequest"]["request"]
    assert filed_copy == {"duplicateOfId": request_id, "duplicateOf": None}
    assert [e["extensions"]["code"] for e in agent_copy["errors"]] == ["FORBIDDEN"]
    # No customer matched: both null.
    unknown = await _filed(gql, admin_headers, "nobody@example.com")
    answer = (await gql(REFERENCES, {"id": unknown}, admin_headers))["data"]["dataSubjectRequest"]
    assert (answer["customerId"], answer["customer"], answer["duplicateOf"]) == (None, None, None)


async def test_the_assignee_is_a_staff_user_that_only_admins_may_read(
    gql: GraphQLClient, admin_headers: dict[str, str], auth: AuthSettings
) -> None:
    officer = await make_staff(auth, Role.PRIVACY_OFFICER, name="Odile Officer")
    officer_id = gid("StaffUser", officer.user.id)
    request_id = await _filed(gql, admin_headers, "assigned@example.com")
    await gql(ASSIGN, {"id": request_id, "assignee": officer_id}, admin_headers)
    shown = (await gql(ASSIGNEE, {"id": request_id}, admin_headers))["data"]
    assert shown["dataSubjectRequest"]["assigneeId"] == officer_id
    assignee = shown["dataSubjectRequest"]["assignee"]
    assert (assignee["displayName"], assignee["role"]) == ("Odile Officer", "PRIVACY_OFFICER")
    # A privacy officer reads requests, but not staff users: the id, not the person.
    as_officer = bearer(await make_api_key(auth, Role.PRIVACY_OFFICER))
    partial = await gql(ASSIGNEE, {"id": request_id}, as_officer)
    assert partial["data"]["dataSubjectRequest"] == {"assigneeId": officer_id, "assignee": None}
    assert [e["extensions"]["code"] for e in partial["errors"]] == ["FORBIDDEN"]
    assert partial["errors"][0]["path"] == ["dataSubjectRequest", "assignee"]


async def test_references_of_a_page_cost_the_same_statements_for_1_or_10_requests(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault, auth: AuthSettings, sql: object
) -> None:
    from tests.support.sql_counter import StatementRecorder

    assert isinstance(sql, StatementRecorder)
    officer = gid("StaffUser", (await make_staff(auth, Role.PRIVACY_OFFICER)).user.id)
    for n in range(10):
        await make_customer(vault, email=f"c{n}@example.org")
        request_id = await _filed(gql, admin_headers, f"c{n}@example.org")
        await gql(ASSIGN, {"id": request_id, "assignee": officer}, admin_headers)
        await _filed(gql, admin_headers, f"c{n}@example.org")  # a duplicate of it
    page = """
    query($first: Int!) {
      dataSubjectRequests(first: $first, filter: {status: CANCELLED}) {
        nodes {
          customer { id profile { email } }
          duplicateOf { id assignee { displayName } customer { id } }
        }
      }
    }
    """
    counts = {}
    for size in (1, 10):
        with sql.recording():
            body = await gql(page, {"first": size}, admin_headers)
        nodes = body["data"]["dataSubjectRequests"]["nodes"]
        assert len(nodes) == size
        assert all(n["duplicateOf"]["assignee"] is not None for n in nodes)
        counts[size] = sql.count
    assert counts[1] == counts[10], counts


# --------------------------------------------------------------------- result unions


def _members(union: str) -> set[str]:
    found = create_schema()._schema.type_map[union]
    assert isinstance(found, GraphQLUnionType)
    return {member.name for member in found.types}


@pytest.mark.parametrize(
    ("union", "members"),
    [
        (
            "SubmitDataSubjectRequestResult",
            {"DataSubjectRequestReceived", "ValidationError", "RateLimitedError", "ConflictError"},
        ),
        (
            "VerifyDataSubjectRequestResult",
            {
                "DataSubjectRequestVerified",
                "ValidationError",
                "NotFoundError",
                "InvalidStateError",
                "RateLimitedError",
            },
        ),
        (
            "ResendVerificationCodeResult",
            {
                "VerificationCodeSent",
                "ValidationError",
                "NotFoundError",
                "InvalidStateError",
                "RateLimitedError",
            },
        ),
        (
            "FileDataSubjectRequestResult",
            {"DataSubjectRequestFiled", "ValidationError", "ConflictError"},
        ),
        (
            "ChangeDataSubjectRequestStatusResult",
            {
                "DataSubjectRequestStatusChanged",
                "ValidationError",
                "NotFoundError",
                "InvalidStateError",
            },
        ),
        (
            "ExtendDataSubjectRequestDeadlineResult",
            {
                "DataSubjectRequestDeadlineExtended",
                "ValidationError",
                "NotFoundError",
                "InvalidStateError",
            },
        ),
        (
            "AssignDataSubjectRequestResult",
            {"DataSubjectRequestAssigned", "ValidationError", "NotFoundError", "InvalidStateError"},
        ),
        (
            "ResendDataSubjectRequestExportLinkResult",
            {
                "DataSubjectRequestExportLinkResent",
                "ValidationError",
                "NotFoundError",
                "InvalidStateError",
                "PolicyViolationError",
            },
        ),
        (
            "ExecuteDataSubjectRequestResult",
            {
                "DataSubjectRequestExecuted",
                "ValidationError",
                "NotFoundError",
                "InvalidStateError",
                "PolicyViolationError",
            },
        ),
    ],
)
def test_each_mutation_lists_exactly_the_errors_it_can_return(
    union: str, members: set[str]
) -> None:
    assert _members(union) == members


async def test_assigning_takes_an_assignee_or_null_and_refuses_an_omitted_one(
    gql: GraphQLClient, admin_headers: dict[str, str], auth: AuthSettings
) -> None:
    officer = gid("StaffUser", (await make_staff(auth, Role.PRIVACY_OFFICER)).user.id)
    request_id = await _filed(gql, admin_headers, "assign@example.com")
    await gql(ASSIGN, {"id": request_id, "assignee": officer}, admin_headers)
    omitted = await gql(
        """
        mutation($id: ID!) {
          assignDataSubjectRequest(input: {id: $id}) {
            __typename ... on UserError { code field }
            ... on DataSubjectRequestAssigned { request { assigneeId } }
          }
        }
        """,
        {"id": request_id},
        admin_headers,
    )
    assert omitted["data"]["assignDataSubjectRequest"] == {
        "__typename": "ValidationError",
        "code": "REQUIRED",
        "field": "input.assigneeId",
    }
    row = await DataSubjectRequest.get(id=key(request_id))
    assert gid("StaffUser", row.assignee_id) == officer  # nothing lost
    wrong_kind = await gql(ASSIGN, {"id": request_id, "assignee": request_id}, admin_headers)
    assert (
        wrong_kind["data"]["assignDataSubjectRequest"]["code"],
        wrong_kind["data"]["assignDataSubjectRequest"]["field"],
    ) == ("INVALID_ID", "input.assigneeId")
    inactive = await make_staff(auth, Role.PRIVACY_OFFICER)
    inactive.user.active = False
    await inactive.user.save(update_fields=["active"])
    gone = await gql(
        ASSIGN, {"id": request_id, "assignee": gid("StaffUser", inactive.user.id)}, admin_headers
    )
    assert gone["data"]["assignDataSubjectRequest"]["code"] == "NOT_FOUND"
    cleared = await gql(ASSIGN, {"id": request_id, "assignee": None}, admin_headers)
    result = cleared["data"]["assignDataSubjectRequest"]
    assert result["__typename"] == "DataSubjectRequestAssigned"
    assert result["request"]["assigneeId"] is None
    assert result["request"]["timeline"][-1]["note"] == "unassigned"
    kinds = [(e["kind"], e["note"]) for e in result["request"]["timeline"]]
    assert ("ASSIGNED", f"to {officer}") in kinds  # cdlm's note names staff by global id


async def test_staff_mutations_refuse_ids_of_nothing_and_of_other_types(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    nothing = request_gid(uuid.uuid4())
    customer = gid("Customer", uuid.uuid4())
    documents = {
        "changeDataSubjectRequestStatus": (
            "mutation($id: ID!) { changeDataSubjectRequestStatus("
            "input: {id: $id, status: APPROVED}) { __typename ... on UserError { code field } } }"
        ),
        "extendDataSubjectRequestDeadline": EXTEND,
        "assignDataSubjectRequest": ASSIGN,
        "resendDataSubjectRequestExportLink": RESEND_LINK,
        "executeDataSubjectRequest": (
            "mutation($id: ID!) { executeDataSubjectRequest(input: {id: $id}) "
            "{ __typename ... on UserError { code field } } }"
        ),
    }
    for mutation, document in documents.items():
        for given, code in ((nothing, "NOT_FOUND"), (customer, "INVALID_ID"), ("", "INVALID_ID")):
            variables = {"id": given, "reason": "Because.", "assignee": None}
            answer = await gql(document, variables, admin_headers)
            result = answer["data"][mutation]
            assert (result["code"], result["field"]) == (code, "input.id"), (mutation, given)


async def test_a_link_cannot_be_resent_to_a_requester_without_email_or_phone(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    await make_customer(vault, external_ids=["crm:501"])
    request_id = await approved(
        gql,
        admin_headers,
        "ACCESS",
        "unused@example.com",
        identifier={"kind": "EXTERNAL_ID", "value": "crm:501"},
    )
    done = await execute(gql, admin_headers, request_id)
    assert done["request"]["status"] == "COMPLETED"
    assert done["request"]["progress"]["sendLink"]["sent"] is False
    refused = (await gql(RESEND_LINK, {"id": request_id}, admin_headers))["data"][
        "resendDataSubjectRequestExportLink"
    ]
    assert (refused["__typename"], refused["code"], refused["field"]) == (
        "PolicyViolationError",
        "POLICY_VIOLATION",
        "input.id",
    )


async def test_filing_refuses_a_customer_id_of_another_type_and_a_reused_key(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    wrong = await file_request(
        gql, admin_headers, "ACCESS", "filer@example.com", customerId=request_gid(uuid.uuid4())
    )
    assert (wrong["__typename"], wrong["code"], wrong["field"]) == (
        "ValidationError",
        "INVALID_ID",
        "input.customerId",
    )
    nobody = await file_request(
        gql, admin_headers, "ACCESS", "filer@example.com", customerId=gid("Customer", uuid.uuid4())
    )
    assert (nobody["code"], nobody["field"]) == ("VALIDATION", "input.customerId")
    from tests.dsr.support import FILE

    base = {
        **submission("ACCESS", "filer@example.com"),
        "verificationMethod": "IDENTITY_DOCUMENT",
    }
    first = await gql(FILE, {"input": base, "key": "letter-17"}, admin_headers)
    again = await gql(FILE, {"input": base, "key": "letter-17"}, admin_headers)
    assert again["data"]["fileDataSubjectRequest"]["replayed"] is True
    assert (
        again["data"]["fileDataSubjectRequest"]["request"]["id"]
        == first["data"]["fileDataSubjectRequest"]["request"]["id"]
    )
    other = {**base, "type": "ERASURE"}
    mismatch = (await gql(FILE, {"input": other, "key": "letter-17"}, admin_headers))["data"][
        "fileDataSubjectRequest"
    ]
    assert (mismatch["__typename"], mismatch["code"], mismatch["field"]) == (
        "ConflictError",
        "IDEMPOTENCY_MISMATCH",
        "idempotencyKey",
    )
    assert await DataSubjectRequest.all().count() == 1


async def test_a_submission_returns_the_request_as_its_requester_follows_it(
    gql: GraphQLClient,
) -> None:
    answer = await gql(SUBMIT, {"input": submission("OPT_OUT_OF_SALE", "optout@example.com")})
    received = answer["data"]["submitDataSubjectRequest"]
    assert received["verificationExpiresAt"] is None  # an opt-out needs no code
    assert received["request"]["requestId"] == received["requestId"]
    assert received["request"]["type"] == "OPT_OUT_OF_SALE"
    assert received["request"]["status"] == received["status"] == "OPEN"

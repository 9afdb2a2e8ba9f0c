"""Helpers of the data subject request tests: GraphQL documents and the requester's inbox.

The app's notifier is the log notifier, so the requester's inbox is the ``cdlm.notifications``
log (captured with ``caplog``).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import GraphQLClient

SUBMIT = """
mutation($input: SubmitDataSubjectRequestInput!, $key: String) {
  submitDataSubjectRequest(input: $input, idempotencyKey: $key) {
    __typename
    ... on DataSubjectRequestReceived { requestId status verificationExpiresAt replayed }
    ... on UserError { code field message }
  }
}
"""
VERIFY = """
mutation($id: ID!, $code: String!) {
  verifyDataSubjectRequest(input: {requestId: $id, code: $code}) {
    __typename
    ... on DataSubjectRequestVerified { requestId status }
    ... on UserError { code field message }
  }
}
"""
RESEND = """
mutation($id: ID!) {
  resendVerificationCode(input: {requestId: $id}) {
    __typename
    ... on VerificationCodeSent { expiresAt }
    ... on UserError { code field message }
  }
}
"""
REQUEST_FIELDS = """
  id type status publicStatus jurisdiction customerId dueAt daysLeft overdue paused extended
  extensionReason reason duplicateOfId verificationMethod subject attention certificate progress
  assigneeId acknowledgeBy
  timeline { kind fromStatus toStatus actorKind note }
"""
RESULT = f"""
    __typename
    ... on DataSubjectRequestSaved {{ replayed request {{ {REQUEST_FIELDS} }} }}
    ... on UserError {{ code field message }}
"""
FILE = f"""
mutation($input: FileDataSubjectRequestInput!, $key: String) {{
  fileDataSubjectRequest(input: $input, idempotencyKey: $key) {{ {RESULT} }}
}}
"""
CHANGE = f"""
mutation($id: ID!, $status: RequestStatus!, $reason: String) {{
  changeDataSubjectRequestStatus(input: {{id: $id, status: $status, reason: $reason}}) {{
    {RESULT}
  }}
}}
"""
EXTEND = f"""
mutation($id: ID!, $reason: String!) {{
  extendDataSubjectRequestDeadline(input: {{id: $id, reason: $reason}}) {{ {RESULT} }}
}}
"""
ASSIGN = f"""
mutation($id: ID!, $assignee: ID) {{
  assignDataSubjectRequest(input: {{id: $id, assigneeId: $assignee}}) {{ {RESULT} }}
}}
"""
EXECUTE = f"""
mutation($id: ID!) {{
  executeDataSubjectRequest(input: {{id: $id}}) {{ {RESULT} }}
}}
"""
GET = f"""
query($id: ID!) {{ dataSubjectRequest(id: $id) {{ {REQUEST_FIELDS} }} }}
"""


def inbox(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str]]:
    """(template, masked recipient, text) of every message the log notifier delivered."""
    return [
        (r.template, r.recipient, r.text)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "cdlm.notifications" and r.getMessage() == "notification"
    ]


def export_link(caplog: pytest.LogCaptureFixture) -> str:
    """The path of the latest link to a copy of someone's data."""
    texts = [t for template, _, t in inbox(caplog) if template == "export_ready"]
    assert texts, "no link was sent"
    found = re.search(r"(/exports/cdlm_dl_\w+_[\w-]+)", texts[-1])
    assert found is not None
    return found.group(1)


def last_code(caplog: pytest.LogCaptureFixture) -> str:
    """The latest verification code sent."""
    codes = [t for template, _, t in inbox(caplog) if template == "verification_code"]
    assert codes, "no code was sent"
    found = re.search(r"request is (\d{6})\.", codes[-1])
    assert found is not None
    return found.group(1)


def submission(
    request_type: str = "ACCESS", email: str = "ada@example.com", **extra: Any
) -> dict[str, Any]:
    return {"type": request_type, "identifier": {"kind": "EMAIL", "value": email}, **extra}


async def submit(
    gql: GraphQLClient, request_type: str = "ACCESS", email: str = "ada@example.com", **extra: Any
) -> dict[str, Any]:
    answer = await gql(SUBMIT, {"input": submission(request_type, email, **extra)})
    assert "errors" not in answer, answer
    result: dict[str, Any] = answer["data"]["submitDataSubjectRequest"]
    return result


async def file_request(
    gql: GraphQLClient,
    headers: dict[str, str],
    request_type: str = "ACCESS",
    email: str = "ada@example.com",
    **extra: Any,
) -> dict[str, Any]:
    variables = {
        "input": {
            "type": request_type,
            "identifier": {"kind": "EMAIL", "value": email},
            "verificationMethod": "IDENTITY_DOCUMENT",
            **extra,
        }
    }
    answer = await gql(FILE, variables, headers)
    assert "errors" not in answer, answer
    result: dict[str, Any] = answer["data"]["fileDataSubjectRequest"]
    return result


async def change(
    gql: GraphQLClient,
    headers: dict[str, str],
    request_id: str,
    status: str,
    reason: str | None = None,
) -> dict[str, Any]:
    answer = await gql(CHANGE, {"id": request_id, "status": status, "reason": reason}, headers)
    assert "errors" not in answer, answer
    result: dict[str, Any] = answer["data"]["changeDataSubjectRequestStatus"]
    return result


async def execute(gql: GraphQLClient, headers: dict[str, str], request_id: str) -> dict[str, Any]:
    answer = await gql(EXECUTE, {"id": request_id}, headers)
    assert "errors" not in answer, answer
    result: dict[str, Any] = answer["data"]["executeDataSubjectRequest"]
    return result


async def approved(
    gql: GraphQLClient, headers: dict[str, str], request_type: str, email: str, **extra: Any
) -> str:
    """A staff-filed request, verified and approved; its id."""
    filed = await file_request(gql, headers, request_type, email, **extra)
    assert filed["__typename"] == "DataSubjectRequestSaved", filed
    request_id: str = filed["request"]["id"]
    moved = await change(gql, headers, request_id, "APPROVED")
    assert moved["request"]["status"] == "APPROVED", moved
    return request_id

"""Helpers of the data subject request tests: GraphQL documents and the requester's inbox.

The app's notifier is the log notifier, so the requester's inbox is the ``cdlm.notifications``
log (captured with ``caplog``).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from cdlm.graphql.relay import split_global_id
from tests.conftest import GraphQLClient
from tests.factories import gid

PUBLIC_VIEW = "request { requestId type status receivedAt dueAt }"
SUBMIT = f"""
mutation($input: SubmitDataSubjectRequestInput!, $key: String) {{
  submitDataSubjectRequest(input: $input, idempotencyKey: $key) {{
    __typename
    ... on DataSubjectRequestReceived {{
      requestId status verificationExpiresAt replayed {PUBLIC_VIEW}
    }}
    ... on UserError {{ code field message }}
    ... on ValidationError {{ issues {{ field code }} }}
  }}
}}
"""
VERIFY = f"""
mutation($id: ID!, $code: String!) {{
  verifyDataSubjectRequest(input: {{requestId: $id, code: $code}}) {{
    __typename
    ... on DataSubjectRequestVerified {{ requestId status {PUBLIC_VIEW} }}
    ... on UserError {{ code field message }}
  }}
}}
"""
RESEND = f"""
mutation($id: ID!) {{
  resendVerificationCode(input: {{requestId: $id}}) {{
    __typename
    ... on VerificationCodeSent {{ requestId expiresAt {PUBLIC_VIEW} }}
    ... on UserError {{ code field message }}
  }}
}}
"""
CERTIFICATE_FIELDS = """
  certificateId requestId jurisdiction receivedAt issuedAt controller customerId dataFound
  erased { profileFields identities events { type count } sourceRecords refusedValues
           earlierAccessExports }
  keysDestroyed { customerKey earlierRequestKeys }
  suppressedIdentifiers
  retained { category count reason legalHoldId until }
  retainedDataIsRestricted
  erasedLater { categories legalHoldIds erasedAt events sourceRecords earlierAccessExports
                retainedKeyDestroyed }
  sha256 canonicalJson
"""
PROGRESS_FIELDS = """
  stepsDone legalHoldId
  collect { dataFound sizeBytes }
  sendLink { expiresAt sent }
  rectify { dataFound fields }
  restrict { dataFound newlyRestricted }
  recordConsent { dataFound consentEntryIds }
  plan { dataFound held { profileFields identities events { type count } sourceRecords
         refusedValues } retained { category count reason legalHoldId until } consentEntries }
  retain { rowsResealed }
  suppress { identifiersSuppressed }
  shred { customerKey earlierAccessExports earlierRequestKeys }
  delete { events sourceRecords identities mergedProfiles refusedValues matchRecords
           customerDeleted }
"""
REQUEST_FIELDS = f"""
  id type status publicStatus jurisdiction customerId dueAt daysLeft overdue paused extended
  extensionReason reason duplicateOfId verificationMethod subject attention
  assigneeId acknowledgeBy
  certificate {{ {CERTIFICATE_FIELDS} }}
  progress {{ {PROGRESS_FIELDS} }}
  timeline {{ kind fromStatus toStatus actorKind actorId note }}
"""


def result_selection(payload: str, extra: str = "") -> str:
    """The selection of a staff mutation's result: its payload's request, or the error."""
    return f"""
    __typename
    ... on {payload} {{ {extra} request {{ {REQUEST_FIELDS} }} }}
    ... on UserError {{ code field message }}
    ... on ValidationError {{ issues {{ field code }} }}
"""


FILE = f"""
mutation($input: FileDataSubjectRequestInput!, $key: String) {{
  fileDataSubjectRequest(input: $input, idempotencyKey: $key) {{
    {result_selection("DataSubjectRequestFiled", "replayed")}
  }}
}}
"""
CHANGE = f"""
mutation($id: ID!, $status: DataSubjectRequestStatus!, $reason: String) {{
  changeDataSubjectRequestStatus(input: {{id: $id, status: $status, reason: $reason}}) {{
    {result_selection("DataSubjectRequestStatusChanged")}
  }}
}}
"""
EXTEND = f"""
mutation($id: ID!, $reason: String!) {{
  extendDataSubjectRequestDeadline(input: {{id: $id, reason: $reason}}) {{
    {result_selection("DataSubjectRequestDeadlineExtended")}
  }}
}}
"""
ASSIGN = f"""
mutation($id: ID!, $assignee: ID) {{
  assignDataSubjectRequest(input: {{id: $id, assigneeId: $assignee}}) {{
    {result_selection("DataSubjectRequestAssigned")}
  }}
}}
"""
EXECUTE = f"""
mutation($id: ID!) {{
  executeDataSubjectRequest(input: {{id: $id}}) {{
    {result_selection("DataSubjectRequestExecuted")}
  }}
}}
"""
RESEND_LINK = f"""
mutation($id: ID!) {{
  resendDataSubjectRequestExportLink(input: {{id: $id}}) {{
    {result_selection("DataSubjectRequestExportLinkResent")}
  }}
}}
"""
GET = f"""
query($id: ID!) {{ dataSubjectRequest(id: $id) {{ {REQUEST_FIELDS} }} }}
"""


def key(global_id: str) -> uuid.UUID:
    """The database id behind a request's global id (as the API returns it)."""
    found = split_global_id(global_id)
    assert found is not None, global_id
    assert found[0] == "DataSubjectRequest", global_id
    return found[1]


def request_gid(request_id: uuid.UUID | str) -> str:
    """The global id of the request whose database id is ``request_id``."""
    return gid("DataSubjectRequest", request_id)


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
    assert filed["__typename"] == "DataSubjectRequestFiled", filed
    request_id: str = filed["request"]["id"]
    moved = await change(gql, headers, request_id, "APPROVED")
    assert moved["request"]["status"] == "APPROVED", moved
    return request_id

"""Self-service intake: submission, the verification code, rate limits, duplicates."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from cdlm.auth.models import ApiKey
from cdlm.auth.settings import AuthSettings
from cdlm.core import clock
from cdlm.dsr.models import DataSubjectRequest, Notification, RequestEvent, VerificationCode
from cdlm.dsr.workflow import Status
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.dsr.support import (
    GET,
    RESEND,
    SUBMIT,
    VERIFY,
    file_request,
    inbox,
    key,
    last_code,
    request_gid,
    submission,
    submit,
)
from tests.factories import gid, make_customer

pytestmark = pytest.mark.usefixtures("notifications")

JAN_10 = datetime(2026, 1, 10, tzinfo=UTC)
LINKS = """
query($id: ID!) {
  dataSubjectRequest(id: $id) {
    reason
    timeline { kind note }
    duplicateOf { id status duplicateOf { id } }
  }
}
"""


@pytest.fixture
def notifications(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cdlm.notifications")


async def test_submission_sends_a_code_and_pauses_the_clock(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture, admin_headers: dict[str, str]
) -> None:
    received = await submit(gql)
    assert received["__typename"] == "DataSubjectRequestReceived"
    assert received["status"] == "OPEN"
    assert received["verificationExpiresAt"] is not None
    [(template, recipient, text)] = inbox(caplog)
    assert template == "verification_code"
    assert recipient != "ada@example.com"
    assert recipient.endswith("@example.com")
    code = last_code(caplog)
    assert code in text
    stored = await VerificationCode.get(request_id=key(received["requestId"]))
    assert stored.code_hash.startswith("$argon2id$")
    assert code not in stored.code_hash
    sent = await Notification.get(request_id=key(received["requestId"]))
    assert sent.sent_at is not None
    assert sent.payload_sealed is None
    request = (await gql(GET, {"id": received["requestId"]}, admin_headers))["data"][
        "dataSubjectRequest"
    ]
    assert request["status"] == "IDENTITY_PENDING"
    assert request["paused"] is True
    assert request["subject"] == "ada@example.com"


async def test_the_right_code_verifies_and_matches_the_customer(
    gql: GraphQLClient,
    caplog: pytest.LogCaptureFixture,
    vault: Vault,
    admin_headers: dict[str, str],
) -> None:
    customer = await make_customer(vault, email="Ada@Example.com", given_name="Ada")
    with clock.frozen_at(JAN_10):
        received = await submit(gql, "ACCESS", "ada@example.COM")
    with clock.frozen_at(JAN_10 + timedelta(minutes=5)):
        answer = await gql(VERIFY, {"id": received["requestId"], "code": last_code(caplog)})
    verified = answer["data"]["verifyDataSubjectRequest"]
    assert verified == {
        "__typename": "DataSubjectRequestVerified",
        "requestId": received["requestId"],
        "status": "OPEN",
        "request": {
            "requestId": received["requestId"],
            "type": "ACCESS",
            "status": "OPEN",
            "receivedAt": "2026-01-10T00:00:00+00:00",
            "dueAt": "2026-02-10T00:05:00+00:00",
        },
    }
    request = (await gql(GET, {"id": received["requestId"]}, admin_headers))["data"][
        "dataSubjectRequest"
    ]
    assert request["status"] == "VERIFIED"
    assert request["customerId"] == gid("Customer", customer.customer_id)
    assert request["verificationMethod"] == "EMAIL_CODE"
    assert request["paused"] is False
    # One month (GDPR) plus the five minutes the request waited on the requester.
    row = await DataSubjectRequest.get(id=key(received["requestId"]))
    assert row.due_at == datetime(2026, 2, 10, 0, 5, tzinfo=UTC)


async def test_a_wrong_code_costs_an_attempt_and_changes_nothing_else(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    received = await submit(gql)
    code = last_code(caplog)
    wrong = "000000" if code != "000000" else "111111"
    answer = await gql(VERIFY, {"id": received["requestId"], "code": wrong})
    refused = answer["data"]["verifyDataSubjectRequest"]
    assert refused["code"] == "WRONG_CODE"
    assert refused["field"] == "input.code"
    assert "4 attempts left" in refused["message"]
    row = await DataSubjectRequest.get(id=key(received["requestId"]))
    assert row.status is Status.IDENTITY_PENDING
    assert row.verified_at is None
    assert (await VerificationCode.get(request_id=row.id)).attempts == 1
    answer = await gql(VERIFY, {"id": received["requestId"], "code": "not a code"})
    assert answer["data"]["verifyDataSubjectRequest"]["code"] == "WRONG_CODE"


async def test_too_many_wrong_codes_lock_the_code_until_a_new_one_is_sent(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    received = await submit(gql)
    code = last_code(caplog)
    wrong = "000000" if code != "000000" else "111111"
    codes = []
    for _ in range(5):
        answer = await gql(VERIFY, {"id": received["requestId"], "code": wrong})
        codes.append(answer["data"]["verifyDataSubjectRequest"]["code"])
    assert codes == ["WRONG_CODE"] * 4 + ["RATE_LIMITED"]
    answer = await gql(VERIFY, {"id": received["requestId"], "code": code})
    assert answer["data"]["verifyDataSubjectRequest"]["code"] == "RATE_LIMITED"
    resent = (await gql(RESEND, {"id": received["requestId"]}))["data"]["resendVerificationCode"]
    assert resent["__typename"] == "VerificationCodeSent"
    fresh = last_code(caplog)
    answer = await gql(VERIFY, {"id": received["requestId"], "code": fresh})
    assert answer["data"]["verifyDataSubjectRequest"]["__typename"] == "DataSubjectRequestVerified"


async def test_an_expired_code_is_refused(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    received = await submit(gql)
    with clock.travel(timedelta(minutes=11)):
        answer = await gql(VERIFY, {"id": received["requestId"], "code": last_code(caplog)})
    refused = answer["data"]["verifyDataSubjectRequest"]
    assert refused["code"] == "CODE_EXPIRED"
    row = await DataSubjectRequest.get(id=key(received["requestId"]))
    assert row.status is Status.IDENTITY_PENDING


async def test_verifying_an_unknown_or_settled_request_is_refused(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    unknown = await gql(VERIFY, {"id": request_gid(uuid.uuid4()), "code": "123456"})
    assert unknown["data"]["verifyDataSubjectRequest"]["code"] == "NOT_FOUND"
    for wrong in ("nope", str(uuid.uuid4()), gid("Customer", uuid.uuid4())):
        malformed = await gql(VERIFY, {"id": wrong, "code": "123456"})
        refused = malformed["data"]["verifyDataSubjectRequest"]
        assert (refused["code"], refused["field"]) == ("INVALID_ID", "input.requestId")
    received = await submit(gql)
    code = last_code(caplog)
    await gql(VERIFY, {"id": received["requestId"], "code": code})
    again = await gql(VERIFY, {"id": received["requestId"], "code": code})
    assert again["data"]["verifyDataSubjectRequest"]["code"] == "INVALID_STATE"
    resend = await gql(RESEND, {"id": received["requestId"]})
    assert resend["data"]["resendVerificationCode"]["code"] == "INVALID_STATE"


async def test_submissions_are_rate_limited_per_identifier_and_per_address(
    gql: GraphQLClient,
) -> None:
    codes = []
    for _ in range(6):
        answer = await gql(SUBMIT, {"input": submission("ACCESS", "grace@example.com")})
        codes.append(answer["data"]["submitDataSubjectRequest"]["__typename"])
    assert codes == ["DataSubjectRequestReceived"] * 5 + ["RateLimitedError"]
    others = []
    for n in range(6):
        answer = await gql(SUBMIT, {"input": submission("ACCESS", f"p{n}@example.org")})
        others.append(answer["data"]["submitDataSubjectRequest"]["__typename"])
    # Ten per address and hour: the sixth above was counted too.
    assert others == ["DataSubjectRequestReceived"] * 4 + ["RateLimitedError"] * 2
    assert await DataSubjectRequest.all().count() == 9


async def test_bad_input_is_refused_with_paths_and_nothing_is_stored(gql: GraphQLClient) -> None:
    cases = [
        (submission(identifier := "ACCESS", "not-an-email"), "input.identifier.value"),
        ({**submission(), "identifier": {"kind": "EXTERNAL_ID", "value": "crm:1"}}, None),
        (submission("RECTIFICATION"), "input.corrections"),
        (submission("RECTIFICATION", corrections={"email": "broken"}), "input.corrections.email"),
        (submission("ACCESS", corrections={"givenName": "Ada"}), "input.corrections"),
        (submission("OBJECTION", purposes=["no-such-purpose"]), "input.purposes.0"),
        (submission("ACCESS", note="x" * 2001), "input.note"),
    ]
    del identifier
    for given, path in cases:
        answer = await gql(SUBMIT, {"input": given})
        refused = answer["data"]["submitDataSubjectRequest"]
        assert refused["__typename"] == "ValidationError", (given, refused)
        if path is not None:
            assert refused["field"] == path, (given, refused)
    assert await DataSubjectRequest.all().count() == 0


async def test_opt_out_of_sale_needs_no_verification(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    received = await submit(gql, "OPT_OUT_OF_SALE", jurisdiction="CCPA")
    assert received["verificationExpiresAt"] is None
    row = await DataSubjectRequest.get(id=key(received["requestId"]))
    assert row.status is Status.VERIFIED
    assert row.verification_method is not None
    assert row.verification_method.value == "not_required"
    # CCPA: receipt is confirmed (and must be within 10 business days).
    assert [t for t, _, _ in inbox(caplog)] == ["request_received"]
    assert row.acknowledge_by is not None


async def test_a_replayed_submission_returns_the_first_request(gql: GraphQLClient) -> None:
    variables = {"input": submission(), "key": "form-42"}
    first = (await gql(SUBMIT, variables))["data"]["submitDataSubjectRequest"]
    again = (await gql(SUBMIT, variables))["data"]["submitDataSubjectRequest"]
    assert again["requestId"] == first["requestId"]
    assert again["replayed"] is True
    other = {"input": submission("ERASURE"), "key": "form-42"}
    mismatch = (await gql(SUBMIT, other))["data"]["submitDataSubjectRequest"]
    assert mismatch["code"] == "IDEMPOTENCY_MISMATCH"
    assert await DataSubjectRequest.all().count() == 1


async def test_a_verified_repeat_of_an_open_request_is_linked_not_run_twice(
    gql: GraphQLClient,
    caplog: pytest.LogCaptureFixture,
    admin_headers: dict[str, str],
    vault: Vault,
) -> None:
    await make_customer(vault, email="ada@example.com")
    first = await file_request(gql, admin_headers, "ERASURE")
    original = first["request"]["id"]
    repeat = await submit(gql, "ERASURE")
    answer = await gql(VERIFY, {"id": repeat["requestId"], "code": last_code(caplog)})
    assert answer["data"]["verifyDataSubjectRequest"]["status"] == "OPEN"  # the original's
    linked = (await gql(GET, {"id": repeat["requestId"]}, admin_headers))["data"][
        "dataSubjectRequest"
    ]
    assert linked["status"] == "CANCELLED"
    assert linked["duplicateOfId"] == original
    assert linked["publicStatus"] == "OPEN"
    notes = [e.note for e in await RequestEvent.filter(request_id=key(original))]
    assert f"request {key(repeat['requestId'])}" in notes
    # The API shows the notes and reasons in cdlm's words with global ids, and both links.
    shown = (await gql(LINKS, {"id": original}, admin_headers))["data"]["dataSubjectRequest"]
    assert shown["timeline"][-1] == {
        "kind": "DUPLICATE_LINKED",
        "note": f"request {repeat['requestId']}",
    }
    assert shown["duplicateOf"] is None
    linked = (await gql(LINKS, {"id": repeat["requestId"]}, admin_headers))["data"][
        "dataSubjectRequest"
    ]
    assert linked["reason"] == f"Duplicate of request {original}."
    assert linked["duplicateOf"] == {"id": original, "status": "VERIFIED", "duplicateOf": None}
    # Another right of the same person is not a duplicate.
    other = await file_request(gql, admin_headers, "ACCESS")
    assert other["request"]["status"] == "VERIFIED"


async def test_staff_filing_records_the_verification_method(
    gql: GraphQLClient, admin_headers: dict[str, str], auth: AuthSettings
) -> None:
    filed = await file_request(gql, admin_headers, "RESTRICTION", receivedAt="2020-01-01T00:00:00Z")
    assert filed["__typename"] == "ValidationError"
    assert filed["field"] == "input.receivedAt"
    filed = await file_request(gql, admin_headers, "RESTRICTION", verificationMethod="NOT_REQUIRED")
    assert filed["__typename"] == "ValidationError"
    assert filed["field"] == "input.verificationMethod"
    filed = await file_request(gql, admin_headers, "RESTRICTION")
    request = filed["request"]
    assert request["status"] == "VERIFIED"
    assert request["verificationMethod"] == "IDENTITY_DOCUMENT"
    assert request["customerId"] is None
    assert [e["kind"] for e in request["timeline"]] == ["RECEIVED", "STATUS_CHANGED"]
    assert request["timeline"][1]["actorKind"] == "API_KEY"
    [key_id] = await ApiKey.all().values_list("id", flat=True)
    assert request["timeline"][1]["actorId"] == gid("ApiKey", key_id)


async def test_duplicates_need_the_same_details_and_a_verified_requester(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    first = await file_request(
        gql, admin_headers, "RECTIFICATION", corrections={"givenName": "Ada"}
    )
    other = await file_request(
        gql, admin_headers, "RECTIFICATION", corrections={"familyName": "Lovelace"}
    )
    assert other["request"]["status"] == "VERIFIED"  # asks for something else
    same = await file_request(gql, admin_headers, "RECTIFICATION", corrections={"givenName": "Ada"})
    assert same["request"]["duplicateOfId"] == first["request"]["id"]
    # Opt-outs need no verification: linking one would tell anyone about open requests.
    await submit(gql, "OPT_OUT_OF_SALE")
    second = await submit(gql, "OPT_OUT_OF_SALE")
    row = await DataSubjectRequest.get(id=key(second["requestId"]))
    assert row.status is Status.VERIFIED
    assert row.duplicate_of_id is None


async def test_codes_cannot_be_guessed_by_asking_for_new_ones(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    received = await submit(gql)
    results = []
    for _ in range(3):
        code = last_code(caplog)
        wrong = "000000" if code != "000000" else "111111"
        for _ in range(4):
            answer = await gql(VERIFY, {"id": received["requestId"], "code": wrong})
            results.append(answer["data"]["verifyDataSubjectRequest"]["code"])
        resent = await gql(RESEND, {"id": received["requestId"]})
        results.append(resent["data"]["resendVerificationCode"]["__typename"])
    # Ten wrong codes in all lock the request, whatever new codes were sent.
    assert results.count("WRONG_CODE") == 9
    assert results[-2:] == ["RATE_LIMITED", "RateLimitedError"]
    answer = await gql(VERIFY, {"id": received["requestId"], "code": last_code(caplog)})
    assert answer["data"]["verifyDataSubjectRequest"]["code"] == "RATE_LIMITED"


async def test_staff_cannot_attach_a_request_to_someone_elses_customer(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    await make_customer(vault, email="ada@example.com")
    other = (await make_customer(vault, email="bob@example.com")).customer_id
    filed = await file_request(gql, admin_headers, "ERASURE", customerId=gid("Customer", other))
    assert filed["code"] == "IDENTITY_CONFLICT"
    assert filed["field"] == "input.customerId"
    assert await DataSubjectRequest.all().count() == 0

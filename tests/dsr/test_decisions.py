"""Staff decisions, the legal clock with a moved clock, lists, metrics and the tick."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from cdlm.auth.settings import AuthSettings
from cdlm.config import Settings
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.dsr.models import DataSubjectRequest, RequestEvent
from cdlm.dsr.notifier import STAFF_TEXT_PLACEHOLDER, LogNotifier
from cdlm.dsr.service import DECISIONS
from cdlm.dsr.tick import tick
from cdlm.dsr.workflow import TRANSITIONS, Status
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.dsr.support import (
    ASSIGN,
    EXTEND,
    GET,
    VERIFY,
    change,
    file_request,
    inbox,
    key,
    last_code,
    request_gid,
    submit,
)
from tests.factories import gid, make_staff
from tests.support.audit import subjects_read

JAN_10 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)

LIST = """
query($filter: DataSubjectRequestFilter) {
  dataSubjectRequests(filter: $filter) { nodes { id status overdue daysLeft } }
}
"""
METRICS = """
{ dataSubjectRequestMetrics { open overdue dueSoon completed medianDaysToComplete
  byStatus { status count } byType { type count } } }
"""


@pytest.fixture(autouse=True)
def notifications(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cdlm.notifications")


async def _filed(
    gql: GraphQLClient, headers: dict[str, str], request_type: str = "ACCESS", **extra: object
) -> str:
    filed = await file_request(gql, headers, request_type, **extra)
    request_id: str = filed["request"]["id"]
    return request_id


@pytest.mark.parametrize("start", list(Status))
@pytest.mark.parametrize("target", sorted(DECISIONS))
async def test_every_staff_decision_from_every_status(
    gql: GraphQLClient, admin_headers: dict[str, str], start: Status, target: Status
) -> None:
    request_id = await _filed(gql, admin_headers)
    await DataSubjectRequest.filter(id=key(request_id)).update(status=start)
    before = await RequestEvent.filter(request_id=key(request_id)).count()
    answer = await change(gql, admin_headers, request_id, target.name, reason="checked")
    row = await DataSubjectRequest.get(id=key(request_id))
    if target in TRANSITIONS[start]:
        assert answer["request"]["status"] == target.name
        assert row.status is target
        assert await RequestEvent.filter(request_id=key(request_id)).count() == before + 1
    else:
        assert answer["code"] == "INVALID_STATE"
        assert row.status is start
        assert await RequestEvent.filter(request_id=key(request_id)).count() == before


async def test_statuses_set_by_the_workflow_cannot_be_set_by_hand(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    request_id = await _filed(gql, admin_headers)
    for target in ("IN_PROGRESS", "COMPLETED", "VERIFIED", "FAILED", "RECEIVED"):
        answer = await change(gql, admin_headers, request_id, target)
        assert answer["code"] == "INVALID_STATE"
        assert answer["field"] == "input.status"
    unknown = await change(gql, admin_headers, request_gid(uuid.uuid4()), "APPROVED")
    assert unknown["code"] == "NOT_FOUND"


async def test_a_denial_needs_a_reason_and_is_told_to_the_requester(
    gql: GraphQLClient, admin_headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    request_id = await _filed(gql, admin_headers)
    for reason in (None, "   ", "x" * 501):
        refused = await change(gql, admin_headers, request_id, "DENIED", reason)
        assert refused["__typename"] == "ValidationError"
        assert refused["field"] == "input.reason"
    assert (await DataSubjectRequest.get(id=key(request_id))).status is Status.VERIFIED
    denied = await change(
        gql, admin_headers, request_id, "DENIED", "The request is manifestly unfounded."
    )
    assert denied["request"]["status"] == "DENIED"
    assert denied["request"]["publicStatus"] == "DENIED"
    assert denied["request"]["reason"] == "The request is manifestly unfounded."
    # The log notifier (the local inbox) leaves out what staff wrote.
    [(_template, _, text)] = [m for m in inbox(caplog) if m[0] == "request_denied"]
    assert "manifestly unfounded" not in text
    assert STAFF_TEXT_PLACEHOLDER in text


async def test_a_hold_pauses_work_until_approved_again(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    request_id = await _filed(gql, admin_headers)
    assert (await change(gql, admin_headers, request_id, "ON_HOLD"))["code"] == "REQUIRED"
    held = await change(gql, admin_headers, request_id, "ON_HOLD", "Litigation hold L-7")
    assert held["request"]["status"] == "ON_HOLD"
    assert held["request"]["publicStatus"] == "IN_PROGRESS"
    resumed = await change(gql, admin_headers, request_id, "APPROVED")
    assert resumed["request"]["status"] == "APPROVED"
    kinds = [(e["fromStatus"], e["toStatus"]) for e in resumed["request"]["timeline"][1:]]
    assert kinds == [
        ("RECEIVED", "VERIFIED"),
        ("VERIFIED", "ON_HOLD"),
        ("ON_HOLD", "APPROVED"),
    ]


async def test_the_clock_pauses_while_waiting_for_verification(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture, admin_headers: dict[str, str]
) -> None:
    with clock.frozen_at(JAN_10):
        received = await submit(gql)
    later = JAN_10 + timedelta(days=10)
    with clock.frozen_at(later):
        await gql(
            "mutation($id: ID!) { resendVerificationCode(input: {requestId: $id}) { __typename } }",
            {"id": received["requestId"]},
        )
        await gql(VERIFY, {"id": received["requestId"], "code": last_code(caplog)})
        request = (await gql(GET, {"id": received["requestId"]}, admin_headers))["data"][
            "dataSubjectRequest"
        ]
    # One month from receipt, plus the ten days the requester took to verify.
    assert request["dueAt"] == "2026-02-20T09:00:00+00:00"
    assert request["daysLeft"] == 31
    assert request["paused"] is False


async def test_overdue_with_a_moved_clock_and_the_overdue_filter(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    with clock.frozen_at(JAN_10):
        late = await _filed(gql, admin_headers)
        on_time = await _filed(gql, admin_headers, "RESTRICTION")
        await change(gql, admin_headers, on_time, "CANCELLED", "withdrawn by the requester")
    with clock.frozen_at(JAN_10 + timedelta(days=32)):
        request = (await gql(GET, {"id": late}, admin_headers))["data"]["dataSubjectRequest"]
        assert request["overdue"] is True
        assert request["daysLeft"] == -1
        overdue = (await gql(LIST, {"filter": {"overdue": True}}, admin_headers))["data"]
        assert [n["id"] for n in overdue["dataSubjectRequests"]["nodes"]] == [late]
        fine = (await gql(LIST, {"filter": {"overdue": False}}, admin_headers))["data"]
        assert [n["id"] for n in fine["dataSubjectRequests"]["nodes"]] == [on_time]
        metrics = (await gql(METRICS, None, admin_headers))["data"]["dataSubjectRequestMetrics"]
    assert metrics["open"] == 1
    assert metrics["overdue"] == 1
    assert {"status": "CANCELLED", "count": 1} in metrics["byStatus"]


async def test_one_extension_with_a_reason_moves_the_due_date(
    gql: GraphQLClient, admin_headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with clock.frozen_at(JAN_10):
        request_id = await _filed(gql, admin_headers)
        missing = await gql(EXTEND, {"id": request_id, "reason": " "}, admin_headers)
        assert missing["data"]["extendDataSubjectRequestDeadline"]["code"] == "REQUIRED"
        answer = await gql(
            EXTEND, {"id": request_id, "reason": "Complex: records in 4 systems."}, admin_headers
        )
        extended = answer["data"]["extendDataSubjectRequestDeadline"]["request"]
        assert extended["extended"] is True
        assert extended["dueAt"] == "2026-04-10T09:00:00+00:00"  # one month + two
        again = await gql(EXTEND, {"id": request_id, "reason": "more"}, admin_headers)
        assert again["data"]["extendDataSubjectRequestDeadline"]["code"] == "INVALID_STATE"
    [text] = [t for template, _, t in inbox(caplog) if template == "deadline_extended"]
    assert "2026-04-10" in text
    assert "Complex" not in text
    assert STAFF_TEXT_PLACEHOLDER in text


async def test_extensions_the_law_does_not_allow_are_refused(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    with clock.frozen_at(JAN_10):
        lgpd = await _filed(gql, admin_headers, jurisdiction="LGPD")
        gdpr = await _filed(gql, admin_headers, "RESTRICTION")
    with clock.frozen_at(JAN_10 + timedelta(days=1)):
        answer = await gql(EXTEND, {"id": lgpd, "reason": "busy"}, admin_headers)
    assert answer["data"]["extendDataSubjectRequestDeadline"]["code"] == "INVALID_STATE"
    with clock.frozen_at(JAN_10 + timedelta(days=40)):
        answer = await gql(EXTEND, {"id": gdpr, "reason": "too late"}, admin_headers)
    refused = answer["data"]["extendDataSubjectRequestDeadline"]
    assert refused["code"] == "INVALID_STATE"
    assert "passed" in refused["message"]
    assert (await DataSubjectRequest.get(id=key(gdpr))).extended is False


async def test_assignment_and_the_assignee_filter(
    gql: GraphQLClient, admin_headers: dict[str, str], auth: AuthSettings
) -> None:
    officer = await make_staff(auth, Role.PRIVACY_OFFICER)
    request_id = await _filed(gql, admin_headers)
    await _filed(gql, admin_headers, "RESTRICTION")
    unknown = await gql(
        ASSIGN, {"id": request_id, "assignee": gid("StaffUser", uuid.uuid4())}, admin_headers
    )
    assert unknown["data"]["assignDataSubjectRequest"]["field"] == "input.assigneeId"
    officer_id = gid("StaffUser", officer.user.id)
    answer = await gql(ASSIGN, {"id": request_id, "assignee": officer_id}, admin_headers)
    assert answer["data"]["assignDataSubjectRequest"]["request"]["assigneeId"] == officer_id
    mine = await gql(LIST, {"filter": {"assigneeId": officer_id}}, admin_headers)
    assert [n["id"] for n in mine["data"]["dataSubjectRequests"]["nodes"]] == [request_id]


async def test_the_tick_flags_due_soon_and_overdue_once(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault, settings: Settings
) -> None:
    with clock.frozen_at(JAN_10):
        lgpd = await _filed(gql, admin_headers, jurisdiction="LGPD")  # due in 15 days
        gdpr = await _filed(gql, admin_headers, "RESTRICTION")  # due in a month
    with clock.frozen_at(JAN_10 + timedelta(days=10)):
        first = await tick(vault, LogNotifier(), settings)
        again = await tick(vault, LogNotifier(), settings)
    assert (first.flagged_due_soon, first.flagged_overdue) == (1, 0)
    assert (again.flagged_due_soon, again.flagged_overdue) == (0, 0)
    with clock.frozen_at(JAN_10 + timedelta(days=16)):
        later = await tick(vault, LogNotifier(), settings)
    assert (later.flagged_due_soon, later.flagged_overdue, later.open_overdue) == (0, 1, 1)
    kinds = [e.kind for e in await RequestEvent.filter(request_id=key(lgpd)).order_by("id")]
    assert kinds[-2:] == ["due_soon", "overdue"]
    assert (await DataSubjectRequest.get(id=key(lgpd))).attention == "overdue"
    assert (await DataSubjectRequest.get(id=key(gdpr))).attention is None


async def test_metrics_give_the_median_days_to_complete(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    from cdlm.dsr.service import move

    for days in (2, 4, 9):
        with clock.frozen_at(JAN_10):
            request_id = await _filed(gql, admin_headers, "RESTRICTION", email=f"p{days}@ex.org")
        with clock.frozen_at(JAN_10 + timedelta(days=days)):
            row = await DataSubjectRequest.get(id=key(request_id))
            for target in (Status.APPROVED, Status.IN_PROGRESS, Status.COMPLETED):
                await move(row, target, SYSTEM)
    metrics = (await gql(METRICS, None, admin_headers))["data"]["dataSubjectRequestMetrics"]
    assert metrics["completed"] == 3
    assert metrics["medianDaysToComplete"] == 4.0
    assert metrics["open"] == 0


async def test_the_tick_closes_requests_never_verified(
    gql: GraphQLClient, vault: Vault, settings: Settings, admin_headers: dict[str, str]
) -> None:
    with clock.frozen_at(JAN_10):
        received = await submit(gql)
    with clock.frozen_at(JAN_10 + timedelta(days=29)):
        assert (await tick(vault, LogNotifier(), settings)).expired_unverified == 0
    with clock.frozen_at(JAN_10 + timedelta(days=31)):
        report = await tick(vault, LogNotifier(), settings)
        view = await gql(
            "query($id: ID!) { dataSubjectRequestStatus(requestId: $id) { status } }",
            {"id": received["requestId"]},
        )
    assert report.expired_unverified == 1
    assert view["data"]["dataSubjectRequestStatus"]["status"] == "EXPIRED"
    row = await DataSubjectRequest.get(id=key(received["requestId"]))
    assert row.status is Status.CANCELLED
    assert row.subject_sealed is None
    assert await vault.customer_keys([row.id]) == {}


async def test_the_tick_sends_a_held_request_back_when_its_hold_ends(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault, settings: Settings
) -> None:
    from cdlm.retention import service as retention
    from tests.dsr.support import approved, execute
    from tests.factories import make_customer

    customer_id = (await make_customer(vault, email="held@example.com")).customer_id
    hold = await retention.place_hold(SYSTEM, reason="Claim", customer_id=customer_id)
    request_id = await approved(gql, admin_headers, "ERASURE", "held@example.com")
    held = await execute(gql, admin_headers, request_id)
    assert held["request"]["status"] == "ON_HOLD"
    assert (await tick(vault, LogNotifier(), settings)).resumed_after_hold == 0
    await retention.release_hold(SYSTEM, hold.id)
    assert (await tick(vault, LogNotifier(), settings)).resumed_after_hold == 1
    row = await DataSubjectRequest.get(id=key(request_id))
    assert row.status is Status.APPROVED
    assert "held_by" not in row.progress


async def test_the_tick_deletes_old_exports_no_link_can_fetch_unless_held(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault, settings: Settings
) -> None:
    from cdlm.dsr.models import AccessExport
    from cdlm.holds import service as legal_holds
    from cdlm.retention import service as retention
    from tests.dsr.support import approved, execute
    from tests.factories import make_customer

    await make_customer(vault, email="copy@example.com")
    request_id = await approved(gql, admin_headers, "ACCESS", "copy@example.com")
    await execute(gql, admin_headers, request_id)
    assert (await tick(vault, LogNotifier(), settings)).exports_deleted == 0
    with clock.travel(timedelta(seconds=settings.export_download_ttl + 60)):
        # No link works any more, but staff can still send a new one for a while.
        assert (await tick(vault, LogNotifier(), settings)).exports_deleted == 0
    with clock.travel(timedelta(days=31)):
        await retention.place_hold(SYSTEM, reason="Regulator inquiry", category="dsr.exports")
        assert (await tick(vault, LogNotifier(), settings)).exports_deleted == 0
        await retention.release_hold(SYSTEM, (await legal_holds.holds())[0].id)
        assert (await tick(vault, LogNotifier(), settings)).exports_deleted == 1
    assert await AccessExport.all().count() == 0


async def test_the_request_list_sends_the_same_statements_for_1_or_10_requests(
    gql: GraphQLClient, admin_headers: dict[str, str], sql: object
) -> None:
    from tests.support.sql_counter import StatementRecorder

    assert isinstance(sql, StatementRecorder)
    page = """
    query($first: Int!) {
      dataSubjectRequests(first: $first) {
        nodes { id subject publicStatus timeline { kind } dueAt }
      }
    }
    """
    for n in range(10):
        await _filed(gql, admin_headers, email=f"p{n}@example.org")
    before = await subjects_read("dsr.read")
    counts = {}
    for size in (1, 10):
        with sql.recording():
            body = await gql(page, {"first": size}, admin_headers)
        assert len(body["data"]["dataSubjectRequests"]["nodes"]) == size
        counts[size] = sql.count
    assert counts[1] == counts[10], counts
    # Every contact read is audited: 1 then 10.
    assert await subjects_read("dsr.read") == before + 11


async def test_closed_requests_cannot_be_assigned_and_bad_ids_are_refused(
    gql: GraphQLClient, admin_headers: dict[str, str], auth: AuthSettings
) -> None:
    officer = await make_staff(auth, Role.PRIVACY_OFFICER)
    request_id = await _filed(gql, admin_headers)
    await change(gql, admin_headers, request_id, "CANCELLED", "withdrawn")
    closed = await gql(
        ASSIGN, {"id": request_id, "assignee": gid("StaffUser", officer.user.id)}, admin_headers
    )
    assert closed["data"]["assignDataSubjectRequest"]["code"] == "INVALID_STATE"
    malformed = await gql(ASSIGN, {"id": "nope", "assignee": None}, admin_headers)
    assert malformed["data"]["assignDataSubjectRequest"]["field"] == "input.id"
    resend = await gql(
        'mutation { resendVerificationCode(input: {requestId: "nope"}) '
        "{ __typename ... on UserError { code field } } }"
    )
    assert resend["data"]["resendVerificationCode"] == {
        "__typename": "ValidationError",
        "code": "INVALID_ID",
        "field": "input.requestId",
    }


async def test_median_days_leave_out_the_time_spent_waiting_on_the_requester(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    from cdlm.dsr.service import move

    with clock.frozen_at(JAN_10):
        request_id = await _filed(gql, admin_headers, "RESTRICTION")
    row = await DataSubjectRequest.get(id=key(request_id))
    waited = [[JAN_10.isoformat(), (JAN_10 + timedelta(days=4)).isoformat()]]
    await DataSubjectRequest.filter(id=key(request_id)).update(pauses=waited)
    row = await DataSubjectRequest.get(id=key(request_id))
    with clock.frozen_at(JAN_10 + timedelta(days=10)):
        for target in (Status.APPROVED, Status.IN_PROGRESS, Status.COMPLETED):
            await move(row, target, SYSTEM)
    metrics = (await gql(METRICS, None, admin_headers))["data"]["dataSubjectRequestMetrics"]
    assert metrics["medianDaysToComplete"] == 6.0

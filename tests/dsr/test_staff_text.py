"""What staff write about a request (denial, cancellation, hold and extension reasons) is sealed
under the request's key: readable by staff while the request lives, told to the requester,
never in clear in a table or a log, and gone with the key."""

from __future__ import annotations

import logging
import uuid

import pytest
from tortoise.connection import get_connection

from cdlm.config import Settings
from cdlm.core.principal import SYSTEM
from cdlm.dsr import service
from cdlm.dsr.models import DataSubjectRequest, RequestEvent
from cdlm.dsr.notifier import STAFF_TEXT_PLACEHOLDER, LogNotifier, Message
from cdlm.dsr.tick import tick
from cdlm.dsr.workflow import Status
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.dsr.support import EXTEND, GET, change, file_request, inbox, key
from tests.support.audit import read_records
from tests.support.raw_dump import every_stored_value

DENIAL = "Denied after a call with Mr Quentin Applebaum of 12 Larch Road."
EXTENSION = "Waiting on Dr Philippa Oyelaran-Smythe's archive in Leeds."


@pytest.fixture(autouse=True)
def notifications(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


class Recorder:
    """A notifier that keeps what it would send."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

    async def send(self, message: Message) -> None:
        self.sent.append(message)


async def _request(gql: GraphQLClient, headers: dict[str, str]) -> str:
    filed = await file_request(gql, headers, "ACCESS", f"r{uuid.uuid4().hex[:8]}@example.com")
    request_id: str = filed["request"]["id"]
    return request_id


async def test_staff_reasons_are_sealed_shown_to_staff_and_kept_out_of_logs(
    gql: GraphQLClient,
    admin_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    extended = await _request(gql, admin_headers)
    answer = await gql(EXTEND, {"id": extended, "reason": EXTENSION}, admin_headers)
    assert answer["data"]["extendDataSubjectRequestDeadline"]["request"]["extensionReason"] == (
        EXTENSION
    )
    denied = await _request(gql, admin_headers)
    result = await change(gql, admin_headers, denied, "DENIED", DENIAL)
    assert result["request"]["reason"] == DENIAL
    notes = [e["note"] for e in result["request"]["timeline"] if e["kind"] == "STATUS_CHANGED"]
    assert notes[-1] == DENIAL
    extended_view = (await gql(GET, {"id": extended}, admin_headers))["data"]
    assert [e["note"] for e in extended_view["dataSubjectRequest"]["timeline"]][-1] == EXTENSION

    stored = await every_stored_value(get_connection("default"))
    for text in (DENIAL, EXTENSION, "Applebaum", "Oyelaran"):
        assert text not in stored
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "Applebaum" not in logged
    assert "Oyelaran" not in logged
    templates = {template: text for template, _, text in inbox(caplog)}
    assert STAFF_TEXT_PLACEHOLDER in templates["request_denied"]
    assert STAFF_TEXT_PLACEHOLDER in templates["deadline_extended"]


async def test_the_requester_is_told_the_reason(
    vault: Vault, settings: Settings, gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    request_id = key(await _request(gql, admin_headers))
    recorder = Recorder()
    await service.decide(SYSTEM, vault, recorder, request_id, Status.DENIED, DENIAL)
    [message] = recorder.sent
    assert message.template == "request_denied"
    assert DENIAL in message.text
    assert DENIAL not in (message.loggable or "")


async def test_staff_text_is_gone_with_the_requests_key(
    vault: Vault, gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    request_id = await _request(gql, admin_headers)
    await gql(EXTEND, {"id": request_id, "reason": EXTENSION}, admin_headers)
    await change(gql, admin_headers, request_id, "CANCELLED", DENIAL)
    assert await service.destroy_request_secrets(vault, [key(request_id)]) == 1
    view = (await gql(GET, {"id": request_id}, admin_headers))["data"]["dataSubjectRequest"]
    assert (view["reason"], view["extensionReason"]) == (None, None)
    notes = {e["kind"]: e["note"] for e in view["timeline"]}
    assert notes["DEADLINE_EXTENDED"] is None
    row = await DataSubjectRequest.get(id=key(request_id))
    assert (row.staff_reason_sealed, row.extension_reason_sealed, row.subject_sealed) == (
        None,
        None,
        None,
    )
    assert not await RequestEvent.filter(
        request_id=key(request_id), note_sealed__isnull=False
    ).exists()


async def test_the_tick_seals_staff_text_stored_in_clear_by_older_versions(
    vault: Vault, settings: Settings, gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    live = await _request(gql, admin_headers)
    await change(gql, admin_headers, live, "DENIED", "Unfounded.")
    gone = await _request(gql, admin_headers)
    await change(gql, admin_headers, gone, "CANCELLED", "Withdrawn by letter.")
    connection = get_connection("default")
    # As older versions stored them: in clear, on the request and its timeline.
    for request_id, text in ((live, DENIAL), (gone, EXTENSION)):
        await connection.execute_query(
            "UPDATE dsr_requests SET reason = $2, staff_reason_sealed = NULL, "
            "extension_reason = $2, extension_reason_sealed = NULL WHERE id = $1",
            [key(request_id), text],
        )
        await connection.execute_query(
            "UPDATE dsr_request_events SET note = $2, note_sealed = NULL "
            "WHERE request_id = $1 AND kind = 'status_changed' AND to_status IN "
            "('denied', 'cancelled')",
            [key(request_id), text],
        )
    await vault.shred(key(gone))
    report = await tick(vault, LogNotifier(), settings)
    assert report.staff_text_sealed == 6
    stored = await every_stored_value(connection)
    assert "Applebaum" not in stored
    assert "Oyelaran" not in stored
    view = (await gql(GET, {"id": live}, admin_headers))["data"]["dataSubjectRequest"]
    assert (view["reason"], view["extensionReason"]) == (DENIAL, DENIAL)
    gone_view = (await gql(GET, {"id": gone}, admin_headers))["data"]["dataSubjectRequest"]
    assert (gone_view["reason"], gone_view["extensionReason"]) == (None, None)
    assert (await tick(vault, LogNotifier(), settings)).staff_text_sealed == 0


async def test_the_tick_leaves_cdlms_own_words_alone(
    vault: Vault, settings: Settings, gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    first = await file_request(gql, admin_headers, "ACCESS", "twice@example.com")
    again = await file_request(gql, admin_headers, "ACCESS", "twice@example.com")
    assert again["request"]["status"] == "CANCELLED"
    # The API names the original by its global id; the database keeps cdlm's words as written.
    assert again["request"]["reason"] == f"Duplicate of request {first['request']['id']}."
    own = f"Duplicate of request {key(first['request']['id'])}."
    assert (await tick(vault, LogNotifier(), settings)).staff_text_sealed == 0
    row = await DataSubjectRequest.get(id=key(again["request"]["id"]))
    assert (row.reason, row.staff_reason_sealed) == (own, None)
    notes = await RequestEvent.filter(request_id=row.id, kind="status_changed").values_list(
        "note", "note_sealed"
    )
    assert (own, None) in notes


async def test_a_decision_on_a_request_whose_key_is_gone_is_refused_cleanly(
    vault: Vault, gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    request_id = await _request(gql, admin_headers)
    await change(gql, admin_headers, request_id, "CANCELLED", "Withdrawn.")
    await service.destroy_request_secrets(vault, [key(request_id)])
    refused = await change(gql, admin_headers, request_id, "DENIED", "Too late.")
    assert (refused["__typename"], refused["code"]) == ("InvalidStateError", "INVALID_STATE")


async def test_reading_what_staff_wrote_is_a_personal_read_refused_without_training(
    gql: GraphQLClient, admin_headers: dict[str, str], settings: Settings, vault: Vault
) -> None:
    """Staff reasons may name the person: reading them is audited like the requester's
    identifier, and refused to staff whose required training lapsed (regression: they were
    read past the read audit and the training check)."""
    from dataclasses import replace
    from datetime import timedelta

    import httpx

    from cdlm.app import create_app
    from cdlm.auth.settings import auth_settings
    from cdlm.core import clock
    from cdlm.core.roles import Role
    from tests.auth.test_training import _record, signed_in
    from tests.factories import make_staff

    denied = await _request(gql, admin_headers)
    await change(gql, admin_headers, denied, "DENIED", DENIAL)
    reasons = "query($id: ID!) { dataSubjectRequest(id: $id) { reason } }"
    every = replace(settings, require_training=frozenset(Role))
    auth = auth_settings(every)
    officer = (await make_staff(auth, Role.PRIVACY_OFFICER)).user
    now = clock.now()
    await _record(officer, now - timedelta(days=400), now - timedelta(days=1))
    app = create_app(every, database="external", vault=vault)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://cdlm.test"
    ) as http:
        client = GraphQLClient(http)
        lapsed = await client(reasons, {"id": denied}, await signed_in(auth, officer))
        (error,) = lapsed["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert "Applebaum" not in str(lapsed)
        timeline = await client(
            "query($id: ID!) { dataSubjectRequest(id: $id) { timeline { note } } }",
            {"id": denied},
            await signed_in(auth, officer),
        )
        assert timeline["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    shown = await gql(reasons, {"id": denied}, admin_headers)
    assert shown["data"]["dataSubjectRequest"]["reason"] == DENIAL
    reads = await read_records("dsr.read", key(denied))
    assert reads[-1].fields_touched == ["reason"]  # the query above, which read only the reason

"""A request keeps the legal clock it was received under: a later change of ``CDLM_DSR_CLOCKS``
(or of a jurisdiction's rule) moves no deadline, extension or pause rule of a stored request,
while a request received afterwards gets the new rule."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cdlm.app import create_app
from cdlm.config import Settings
from cdlm.core import clock
from cdlm.core.jurisdictions import RULES, ClockRule, Jurisdiction, parse_rules
from cdlm.dsr.models import DataSubjectRequest
from cdlm.dsr.notifier import LogNotifier
from cdlm.dsr.tick import tick
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.dsr.support import EXTEND, GET, RESEND, VERIFY, key, last_code, submit

RECEIVED = datetime(2026, 3, 2, 9, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def notifications(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cdlm.notifications")


@asynccontextmanager
async def deployment(settings: Settings, vault: Vault) -> AsyncIterator[GraphQLClient]:
    """The API as it runs with ``settings`` (a deployment restarted with new settings)."""
    app = create_app(settings, database="external", vault=vault)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cdlm.test") as http:
        yield GraphQLClient(http)


async def verify_now(gql: GraphQLClient, caplog: pytest.LogCaptureFixture, request_id: str) -> None:
    """The requester asks for a fresh code and types it in."""
    sent = await gql(RESEND, {"id": request_id})
    assert sent["data"]["resendVerificationCode"]["__typename"] == "VerificationCodeSent"
    verified = await gql(VERIFY, {"id": request_id, "code": last_code(caplog)})
    assert verified["data"]["verifyDataSubjectRequest"]["status"] == "OPEN"


async def seen(gql: GraphQLClient, headers: dict[str, str], request_id: str) -> dict[str, Any]:
    request: dict[str, Any] = (await gql(GET, {"id": request_id}, headers))["data"][
        "dataSubjectRequest"
    ]
    return request


async def test_a_request_keeps_the_clock_it_was_received_under(
    settings: Settings,
    vault: Vault,
    caplog: pytest.LogCaptureFixture,
    admin_headers: dict[str, str],
) -> None:
    before = replace(settings, dsr_clocks=parse_rules("gdpr=10d+5d"))
    # Later: two months, no extension, and (as a change of the law's rule would) no pause.
    two_months = replace(parse_rules("gdpr=2m")[Jurisdiction.GDPR], pause_while_waiting=False)
    after = replace(settings, dsr_clocks={Jurisdiction.GDPR: two_months})
    ten_days = ClockRule(days=10, extension_days=5, pause_while_waiting=True)

    async with deployment(before, vault) as gql:
        with clock.frozen_at(RECEIVED):
            old = (await submit(gql, jurisdiction="GDPR", email="old@example.com"))["requestId"]
            ccpa = (await submit(gql, jurisdiction="CCPA", email="ca@example.com"))["requestId"]
    stored = await DataSubjectRequest.get(id=key(old))
    assert stored.clock_rule == ten_days.to_json()
    assert (stored.due_at, stored.clock_paused) == (RECEIVED + 10 * DAY, True)
    # A jurisdiction the setting does not name keeps its default rule.
    unnamed = await DataSubjectRequest.get(id=key(ccpa))
    assert unnamed.clock_rule == RULES[Jurisdiction.CCPA].to_json()
    assert unnamed.due_at == RECEIVED + 45 * DAY
    assert unnamed.acknowledge_by == datetime(2026, 3, 16, 9, tzinfo=UTC)

    async with deployment(after, vault) as gql:
        with clock.frozen_at(RECEIVED + 3 * DAY):
            # Still paused while it waits for verification: its own rule may pause.
            waiting = await seen(gql, admin_headers, old)
            assert waiting["paused"] is True
            assert datetime.fromisoformat(waiting["dueAt"]) == RECEIVED + 13 * DAY
            await verify_now(gql, caplog, old)
            new = (await submit(gql, jurisdiction="GDPR", email="new@example.com"))["requestId"]
        with clock.frozen_at(RECEIVED + 6 * DAY):
            await verify_now(gql, caplog, new)

        kept = await DataSubjectRequest.get(id=key(old))
        assert kept.clock_rule == ten_days.to_json()
        assert (kept.due_at, kept.clock_paused) == (RECEIVED + 13 * DAY, False)
        # The new rule, pause rule included: three days waiting for the code moved nothing.
        fresh = await DataSubjectRequest.get(id=key(new))
        assert fresh.clock_rule == two_months.to_json()
        assert fresh.due_at == datetime(2026, 5, 5, 9, tzinfo=UTC)
        assert fresh.pauses == []
        assert (await DataSubjectRequest.get(id=key(ccpa))).due_at == RECEIVED + 45 * DAY

        # The old request's extension (5 days), up to its own due instant; none for the new.
        with clock.frozen_at(RECEIVED + 13 * DAY):
            extended = (await gql(EXTEND, {"id": old, "reason": "Many records."}, admin_headers))[
                "data"
            ]["extendDataSubjectRequestDeadline"]
            assert extended["__typename"] == "DataSubjectRequestDeadlineExtended"
            assert extended["request"]["extended"] is True
            assert datetime.fromisoformat(extended["request"]["dueAt"]) == RECEIVED + 18 * DAY
            refused = (await gql(EXTEND, {"id": new, "reason": "Many records."}, admin_headers))[
                "data"
            ]["extendDataSubjectRequestDeadline"]
            assert refused["message"] == "GDPR allows no extension."
        assert (await DataSubjectRequest.get(id=key(old))).due_at == RECEIVED + 18 * DAY

        with clock.frozen_at(RECEIVED + 18 * DAY + timedelta(seconds=1)):
            late = await seen(gql, admin_headers, old)
            assert (late["overdue"], late["daysLeft"]) == (True, -1)
            report = await tick(vault, LogNotifier(), after)
            assert report.flagged_overdue == 1
        assert (await DataSubjectRequest.get(id=key(old))).attention == "overdue"
        assert (await DataSubjectRequest.get(id=key(new))).attention is None

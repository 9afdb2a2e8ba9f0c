"""Whether the legal clock stops while the requester verifies is each jurisdiction's rule:
GDPR and UK GDPR may pause, CCPA (11 CCR 7021(a)) and LGPD run from receipt regardless."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from tortoise.connection import get_connection

from cdlm.config import Settings
from cdlm.core import clock
from cdlm.core.jurisdictions import RULES, Jurisdiction, parse_rules
from cdlm.db.migrations import __name__ as migrations_package
from cdlm.dsr.models import DataSubjectRequest
from cdlm.dsr.notifier import LogNotifier
from cdlm.dsr.tick import tick
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.dsr.support import GET, RESEND, VERIFY, key, last_code, submit

RECEIVED = datetime(2026, 3, 2, 9, tzinfo=UTC)
OVERDUE = """
query { dataSubjectRequests(filter: {overdue: true}) { nodes { id } } }
"""


@pytest.fixture(autouse=True)
def notifications(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cdlm.notifications")


@pytest.mark.parametrize(
    ("jurisdiction", "pauses"),
    [("GDPR", True), ("UK_GDPR", True), ("CCPA", False), ("LGPD", False)],
)
async def test_each_jurisdiction_pauses_for_verification_or_not(
    gql: GraphQLClient,
    caplog: pytest.LogCaptureFixture,
    admin_headers: dict[str, str],
    jurisdiction: str,
    pauses: bool,
) -> None:
    with clock.frozen_at(RECEIVED):
        received = await submit(gql, jurisdiction=jurisdiction)
    request_id = received["requestId"]
    with clock.frozen_at(RECEIVED + timedelta(days=3)):
        request = (await gql(GET, {"id": request_id}, admin_headers))["data"]["dataSubjectRequest"]
        assert request["status"] == "IDENTITY_PENDING"
        assert request["paused"] is pauses
        resent = await gql(RESEND, {"id": request_id})
        assert resent["data"]["resendVerificationCode"]["__typename"] == "VerificationCodeSent"
        verified = await gql(VERIFY, {"id": request_id, "code": last_code(caplog)})
        assert verified["data"]["verifyDataSubjectRequest"]["status"] == "OPEN"
    row = await DataSubjectRequest.get(id=key(request_id))
    rule = RULES[Jurisdiction(jurisdiction.lower())]
    from_receipt = {
        "GDPR": datetime(2026, 4, 2, 9, tzinfo=UTC),
        "UK_GDPR": datetime(2026, 4, 2, 9, tzinfo=UTC),
        "CCPA": RECEIVED + timedelta(days=45),
        "LGPD": RECEIVED + timedelta(days=15),
    }[jurisdiction]
    assert rule.pause_while_waiting is pauses
    assert row.due_at == from_receipt + (timedelta(days=3) if pauses else timedelta(0))
    assert row.clock_paused is False


async def test_an_lgpd_request_waiting_for_verification_can_be_overdue(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault, settings: Settings
) -> None:
    with clock.frozen_at(RECEIVED):
        lgpd = (await submit(gql, jurisdiction="LGPD", email="br@example.com"))["requestId"]
        gdpr = (await submit(gql, jurisdiction="GDPR", email="eu@example.com"))["requestId"]
    with clock.frozen_at(RECEIVED + timedelta(days=15)):
        request = (await gql(GET, {"id": lgpd}, admin_headers))["data"]["dataSubjectRequest"]
        assert (request["overdue"], request["paused"], request["daysLeft"]) == (False, False, 0)
    with clock.frozen_at(RECEIVED + timedelta(days=15, seconds=1)):
        found = (await gql(OVERDUE, {}, admin_headers))["data"]["dataSubjectRequests"]["nodes"]
        assert [n["id"] for n in found] == [lgpd]
        request = (await gql(GET, {"id": lgpd}, admin_headers))["data"]["dataSubjectRequest"]
        assert (request["status"], request["overdue"]) == ("IDENTITY_PENDING", True)
        report = await tick(vault, LogNotifier(), settings)
        assert (report.flagged_overdue, report.open_overdue) == (1, 1)
    assert (await DataSubjectRequest.get(id=key(lgpd))).attention == "overdue"
    assert (await DataSubjectRequest.get(id=key(gdpr))).attention is None


def test_configured_clocks_keep_each_jurisdictions_pause_rule() -> None:
    rules = parse_rules("gdpr=30d+60d,ccpa=40d,lgpd=20d")
    assert rules[Jurisdiction.GDPR].pause_while_waiting is True
    assert rules[Jurisdiction.CCPA].pause_while_waiting is False
    assert rules[Jurisdiction.LGPD].pause_while_waiting is False


async def test_the_migration_counts_paused_ccpa_requests_from_receipt_again(
    gql: GraphQLClient,
) -> None:
    migration = __import__(
        f"{migrations_package}.0013_request_clock_pause_rules", fromlist=["PAUSE_RULES"]
    )
    with clock.frozen_at(RECEIVED):
        ccpa = key((await submit(gql, jurisdiction="CCPA", email="ca@example.com"))["requestId"])
        gdpr = key((await submit(gql, jurisdiction="GDPR", email="eu@example.com"))["requestId"])
        extended = key(
            (await submit(gql, jurisdiction="CCPA", email="ext@example.com"))["requestId"]
        )
    # As rows stored before the rule: no pause rule, a pause on the CCPA clock, no flag.
    connection = get_connection("default")
    stale_pause = '[["2026-03-02T09:00:00+00:00", "2026-03-09T09:00:00+00:00"]]'
    await connection.execute_query(
        "UPDATE dsr_requests SET clock_rule = clock_rule::jsonb - 'pause_while_waiting', "
        "pauses = $1::jsonb, due_at = due_at + interval '7 days', clock_paused = false "
        "WHERE id = ANY($2::uuid[])",
        [stale_pause, [ccpa, extended]],
    )
    await connection.execute_query(
        "UPDATE dsr_requests SET extended = true WHERE id = $1", [extended]
    )
    await connection.execute_query(
        "UPDATE dsr_requests SET clock_rule = clock_rule::jsonb - 'pause_while_waiting', "
        "clock_paused = false WHERE id = $1",
        [gdpr],
    )
    for statement in (migration.PAUSE_RULES, migration.RUN_FROM_RECEIPT, migration.CLOCK_PAUSED):
        await connection.execute_script(statement)
    rows = {r.id: r for r in await DataSubjectRequest.all()}
    assert rows[ccpa].clock_rule["pause_while_waiting"] is False
    assert rows[gdpr].clock_rule["pause_while_waiting"] is True
    assert rows[ccpa].pauses == []
    assert rows[ccpa].due_at == RECEIVED + timedelta(days=45)
    assert rows[extended].due_at == RECEIVED + timedelta(days=90)
    assert rows[ccpa].clock_paused is False
    assert rows[gdpr].clock_paused is True  # still waiting for its code
    assert len(rows[gdpr].pauses) == 1

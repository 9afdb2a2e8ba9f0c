"""Demo data: everything a developer needs to explore, through the real services."""

from __future__ import annotations

import logging

import pytest

from cdlm.auth.settings import AuthSettings
from cdlm.config import Settings
from cdlm.consent.models import ConsentEntry, Purpose
from cdlm.customers.models import Customer, Event
from cdlm.dsr.models import DataSubjectRequest
from cdlm.dsr.notifier import LogNotifier
from cdlm.dsr.workflow import Status
from cdlm.holds.models import LegalHold
from cdlm.quality.models import InvalidValue
from cdlm.retention.models import RetentionPolicy
from cdlm.system.demo import AlreadySeeded, seed_demo
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.test_cli import run_cdlm


async def test_demo_data_fills_every_area_and_only_an_empty_installation(
    vault: Vault,
    auth: AuthSettings,
    settings: Settings,
    gql: GraphQLClient,
    admin_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="cdlm.notifications")
    seeded = await seed_demo(vault, auth, settings, LogNotifier(), count=12)
    assert seeded.customers == await Customer.all().count() == 12
    assert seeded.events == await Event.all().count() > 12
    assert seeded.consent_decisions == await ConsentEntry.all().count() > 0
    assert await Purpose.all().count() == 4
    assert await RetentionPolicy.all().count() == 10
    assert await LegalHold.all().count() == 1
    assert await InvalidValue.filter(field="birth_date").exists()
    statuses = sorted(r.status for r in await DataSubjectRequest.all())
    assert statuses == sorted([Status.VERIFIED, Status.VERIFIED, Status.VERIFIED])
    overdue = await gql(
        "{ dataSubjectRequests(filter: {overdue: true}) { nodes { type } } }", None, admin_headers
    )
    assert overdue["data"]["dataSubjectRequests"]["nodes"] == [{"type": "ERASURE"}]
    with pytest.raises(AlreadySeeded):
        await seed_demo(vault, auth, settings, LogNotifier(), count=3)


async def test_demo_data_needs_an_empty_catalog_too(
    vault: Vault, auth: AuthSettings, settings: Settings
) -> None:
    from tests.consent.test_consent import make_purpose

    await make_purpose("newsletter")
    with pytest.raises(AlreadySeeded):
        await seed_demo(vault, auth, settings, LogNotifier(), count=3)
    assert await Customer.all().count() == 0


def test_demo_data_is_refused_in_production() -> None:
    refused = run_cdlm(
        "seed-demo",
        CDLM_ENV="production",
        DATABASE_URL="postgresql://a:b@127.0.0.1:1/cdlm",
        CDLM_TOKEN_SECRET="p" * 40,
        CDLM_LEDGER_KEY="l" * 40,
        CDLM_NOTIFY_FROM="privacy@example.com",
    )
    assert refused.returncode == 2
    assert "not in production" in refused.stderr

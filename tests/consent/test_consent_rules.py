"""Consent rules under pressure: dating, notice-only purposes, GPC replays, audited reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from cdlm.auth.settings import AuthSettings
from cdlm.consent import service
from cdlm.consent.models import ConsentEntry, Decision, Mechanism, Method
from cdlm.core import clock
from cdlm.core.errors import Conflict, PolicyViolation
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.core.vocabulary import LawfulBasis
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.consent.test_consent import GPC, make_purpose
from tests.factories import bearer, gid, make_api_key, make_customer
from tests.support.audit import read_records


def choice(code: str, decision: Decision, version: int | None = 1) -> list[service.Choice]:
    return [service.Choice(code, decision, version)]


async def test_a_back_dated_withdrawal_cannot_hide_behind_a_grant(vault: Vault) -> None:
    await make_purpose("newsletter")
    customer = (await make_customer(vault, email="bd@example.com")).customer_id
    await service.record(
        SYSTEM,
        vault,
        service.ConsentRecording(
            customer, choice("newsletter", Decision.GRANTED), service.Capture(Method.FORM)
        ),
    )
    with pytest.raises(Conflict, match="later decision"):
        await service.record(
            SYSTEM,
            vault,
            service.ConsentRecording(
                customer,
                choice("newsletter", Decision.WITHDRAWN, None),
                service.Capture(Method.FORM, decided_at=clock.now() - timedelta(days=1)),
            ),
        )
    assert await service.may_process(customer, "newsletter")
    assert await ConsentEntry.all().count() == 1


async def test_a_grant_dated_in_the_near_future_does_not_outlast_a_withdrawal(vault: Vault) -> None:
    await make_purpose("newsletter")
    customer = (await make_customer(vault, email="fd@example.com")).customer_id
    await service.record(
        SYSTEM,
        vault,
        service.ConsentRecording(
            customer,
            choice("newsletter", Decision.GRANTED),
            service.Capture(Method.FORM, decided_at=clock.now() + timedelta(minutes=4)),
        ),
    )
    await service.record(
        SYSTEM,
        vault,
        service.ConsentRecording(
            customer, choice("newsletter", Decision.WITHDRAWN, None), service.Capture(Method.FORM)
        ),
    )
    assert not await service.may_process(customer, "newsletter")


async def test_old_grants_are_checked_against_the_notice_of_their_time(vault: Vault) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with clock.frozen_at(start):
        purpose = await make_purpose("newsletter")
        customer = (await make_customer(vault, email="old@example.com")).customer_id
    with clock.frozen_at(start + timedelta(days=30)):
        await service.update_purpose(
            SYSTEM, service.PurposeChange(purpose.id, notice_text="Second version.")
        )
    # An import of a grant given in the first week, to the first notice, is accepted...
    await service.record(
        SYSTEM,
        vault,
        service.ConsentRecording(
            customer,
            choice("newsletter", Decision.GRANTED, 1),
            service.Capture(Method.IMPORT, decided_at=start + timedelta(days=7)),
        ),
    )
    # ...while today a grant must name the second.
    with pytest.raises(PolicyViolation):
        await service.record(
            SYSTEM,
            vault,
            service.ConsentRecording(
                customer, choice("newsletter", Decision.GRANTED, 1), service.Capture(Method.FORM)
            ),
        )


async def test_notice_only_purposes(vault: Vault) -> None:
    await make_purpose("billing", Mechanism.NOTICE_ONLY, data_use="essential.service")
    await service.create_purpose(
        SYSTEM,
        service.PurposeDefinition(
            code="fraud-checks",
            name="Fraud checks",
            description="",
            lawful_basis=LawfulBasis.LEGITIMATE_INTERESTS,
            mechanism=Mechanism.NOTICE_ONLY,
            data_use="essential.fraud_detection",
            data_categories=[],
            sale_or_sharing=False,
            notice_text="We check payments for fraud.",
        ),
    )
    customer = (await make_customer(vault, email="n@example.com")).customer_id
    with pytest.raises(PolicyViolation, match="another lawful basis"):
        await service.record(
            SYSTEM,
            vault,
            service.ConsentRecording(
                customer, choice("billing", Decision.GRANTED), service.Capture(Method.API)
            ),
        )
    for code in ("billing", "fraud-checks"):
        await service.record(
            SYSTEM,
            vault,
            service.ConsentRecording(
                customer, choice(code, Decision.WITHDRAWN, None), service.Capture(Method.API)
            ),
        )
    assert await service.may_process(customer, "billing")  # a contract still needs it
    assert not await service.may_process(customer, "fraud-checks")  # an objection stops it


async def test_unknown_customers_may_not_be_processed(vault: Vault) -> None:
    await make_purpose("service-updates", Mechanism.OPT_OUT)
    assert not await service.may_process(uuid.uuid4(), "service-updates")


async def test_gpc_replays_and_repeats_add_nothing(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings
) -> None:
    await make_purpose("ads", Mechanism.OPT_OUT, data_use="marketing.advertising.first_party")
    customer = (await make_customer(vault, email="gpc@example.com")).customer_id
    frontend = bearer(await make_api_key(auth, Role.INGEST))
    data = {"input": {"customerId": gid("Customer", customer)}, "key": "gpc-1"}
    first = (await gql(GPC, data, headers=frontend))["data"]["recordGlobalPrivacyControl"]
    again = (await gql(GPC, data, headers=frontend))["data"]["recordGlobalPrivacyControl"]
    assert again == {**first, "replayed": True}
    assert len(first["entries"]) == 1
    repeat = (await gql(GPC, {"input": data["input"]}, headers=frontend))["data"]
    assert repeat["recordGlobalPrivacyControl"]["entries"] == []
    assert await ConsentEntry.all().count() == 1


async def test_reading_consents_is_audited_and_closed_to_analysts(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings
) -> None:
    await make_purpose("newsletter")
    customer = (await make_customer(vault, email="ar@example.com")).customer_id
    officer = bearer(await make_api_key(auth, Role.PRIVACY_OFFICER))
    await gql(
        "query($id: ID!) { consentHistory(customerId: $id) { nodes { decision } } }",
        {"id": gid("Customer", customer)},
        headers=officer,
    )
    await gql(
        "query($id: ID!) { consentReceipt(customerId: $id) }",
        {"id": gid("Customer", customer)},
        headers=officer,
    )
    assert len(await read_records("consent.read", customer)) == 2
    analyst = bearer(await make_api_key(auth, Role.ANALYST))
    body = await gql(
        "query($id: ID!) { customer(id: $id) { consents { permitted } } }",
        {"id": gid("Customer", customer)},
        headers=analyst,
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_bad_input_is_refused_not_crashing(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings
) -> None:
    officer = bearer(await make_api_key(auth, Role.PRIVACY_OFFICER))
    await make_purpose("newsletter")
    customer = (await make_customer(vault, email="bi@example.com")).customer_id
    far = await gql(
        'query($id: ID!) { consentAt(customerId: $id, purposeCode: "newsletter", '
        'at: "9999-12-31T23:59:59-05:00") { permitted } }',
        {"id": gid("Customer", customer)},
        headers=officer,
    )
    assert far["errors"][0]["extensions"]["code"] in ("VALIDATION", "GRAPHQL_VALIDATION_FAILED")
    long_name = await gql(
        "mutation($i: CreatePurposeInput!) { createPurpose(input: $i) { __typename } }",
        {
            "i": {
                "code": "long",
                "name": "x" * 201,
                "description": "",
                "lawfulBasis": "CONSENT",
                "mechanism": "OPT_IN",
                "dataUse": "marketing.communications.email",
                "dataCategories": [],
                "noticeText": "N",
            }
        },
        headers=officer,
    )
    assert long_name["data"]["createPurpose"]["__typename"] == "ValidationError"
    ancient = await gql(
        "mutation($i: GrantConsentInput!) { grantConsent(input: $i) { __typename } }",
        {
            "i": {
                "customerId": gid("Customer", customer),
                "purposeCode": "newsletter",
                "noticeVersion": 1,
                "decidedAt": "0001-01-01T00:00:00+05:00",
            }
        },
        headers=officer,
    )
    assert "INTERNAL" not in str(ancient)


@pytest.mark.parametrize("table", ["consent_entries", "audit_entries"])
async def test_ledgers_refuse_truncate(table: str, owner: asyncpg.Connection) -> None:
    from tortoise.connection import get_connection
    from tortoise.exceptions import OperationalError

    with pytest.raises(OperationalError, match="permission denied"):  # the application role
        await get_connection("default").execute_script(f"TRUNCATE {table} CASCADE")
    with pytest.raises(
        asyncpg.InsufficientPrivilegeError, match="append-only"
    ):  # the owner: triggers
        await owner.execute(f"TRUNCATE {table} CASCADE")

"""Recipients of purposes (GDPR Art. 15(1)(c)): named on the purpose through the API (required
when it sells or shares data), listed per purpose and in ``processing.recipients`` of the access
export, "not recorded" for a purpose made before recipients were kept."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
import pytest
from tortoise.connection import get_connection
from tortoise.context import TortoiseContext
from tortoise.migrations.executor import MigrationExecutor, MigrationTarget

from cdlm.config import DatabaseTarget
from cdlm.consent import service as consent
from cdlm.consent.models import Mechanism, Purpose
from cdlm.core.errors import ErrorCode, ValidationFailed
from cdlm.core.principal import SYSTEM
from cdlm.core.vocabulary import LawfulBasis
from cdlm.db.lifecycle import apply_migrations, connect, drop_database, ensure_database
from cdlm.db.orm_config import APP_LABEL, tortoise_config
from cdlm.dsr import access
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.dsr.support import approved, execute, export_link
from tests.factories import gid, make_customer

PURPOSE = "purpose { code saleOrSharing recipients }"
CREATE = f"""
mutation($input: CreatePurposeInput!) {{
  createPurpose(input: $input) {{
    __typename
    ... on PurposeSaved {{ {PURPOSE} }}
    ... on UserError {{ message code field }}
    ... on ValidationError {{ issues {{ field code }} }}
  }}
}}
"""
UPDATE = f"""
mutation($input: UpdatePurposeInput!) {{
  updatePurpose(input: $input) {{
    __typename
    ... on PurposeSaved {{ {PURPOSE} }}
    ... on UserError {{ message code field }}
    ... on ValidationError {{ issues {{ field code }} }}
  }}
}}
"""


@pytest.fixture(autouse=True)
def notifications(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cdlm.notifications")


def _purpose(code: str, sale_or_sharing: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": code.title(),
        "description": f"About {code}.",
        "lawfulBasis": "LEGITIMATE_INTERESTS",
        "mechanism": "OPT_OUT",
        "dataUse": "third_party_sharing",
        "dataCategories": ["user.contact.email"],
        "noticeText": f"We share your email for {code}.",
        "saleOrSharing": sale_or_sharing,
        **extra,
    }


async def _create(gql: GraphQLClient, headers: dict[str, str], **input: Any) -> dict[str, Any]:
    body = await gql(CREATE, {"input": _purpose(**input)}, headers)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["createPurpose"]
    return result


async def _update(gql: GraphQLClient, headers: dict[str, str], **input: Any) -> dict[str, Any]:
    body = await gql(UPDATE, {"input": input}, headers)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["updatePurpose"]
    return result


async def test_a_purpose_names_its_recipients_and_one_that_shares_must(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    made = await _create(
        gql,
        admin_headers,
        code="partners",
        recipients=["  Acme Ads Ltd ", "advertising networks", "Acme Ads Ltd"],
    )
    assert made["purpose"]["recipients"] == ["Acme Ads Ltd", "advertising networks"]

    for missing in ({}, {"recipients": []}, {"recipients": None}):
        refused = await _create(gql, admin_headers, code="brokers", **missing)
        assert refused["__typename"] == "ValidationError", missing
        assert refused["issues"] == [{"field": "input.recipients", "code": "REQUIRED"}]
    assert not await Purpose.exists(code="brokers")

    # A purpose that neither sells nor shares may name none (or some).
    quiet = await _create(gql, admin_headers, code="billing", sale_or_sharing=False)
    assert quiet["purpose"]["recipients"] == []


async def test_recipients_are_checked_one_by_one_and_all_at_once(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    await _create(gql, admin_headers, code="partners", recipients=["Acme Ads Ltd"])
    refused = await _create(gql, admin_headers, code="brokers", recipients=["", "x" * 201, "  "])
    assert refused["__typename"] == "ValidationError"
    assert refused["issues"] == [
        {"field": "input.recipients.0", "code": "REQUIRED"},
        {"field": "input.recipients.1", "code": "TOO_LONG"},
        {"field": "input.recipients.2", "code": "REQUIRED"},
    ]
    # Text PostgreSQL cannot store (refused before GraphQL runs over HTTP) is refused by the
    # service too.
    with pytest.raises(ValidationFailed) as caught:
        await consent.update_purpose(
            SYSTEM,
            consent.PurposeChange(
                (await Purpose.get(code="partners")).id,
                recipients=["ok", "nul\x00byte", "lone \ud800 surrogate"],
            ),
        )
    assert [(i.field, i.code) for i in caught.value.issues] == [
        ("input.recipients.1", ErrorCode.INVALID_FORMAT),
        ("input.recipients.2", ErrorCode.INVALID_FORMAT),
    ]
    too_many = await _create(
        gql, admin_headers, code="brokers", recipients=[f"partner {n}" for n in range(51)]
    )
    assert too_many["issues"] == [{"field": "input.recipients", "code": "TOO_MANY_ITEMS"}]
    bounds = await _create(
        gql, admin_headers, code="brokers", recipients=["x" * 200, *(f"p{n}" for n in range(49))]
    )
    assert len(bounds["purpose"]["recipients"]) == 50


async def test_an_update_keeps_recipients_unless_given_and_a_sharing_purpose_keeps_one(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    made = await _create(gql, admin_headers, code="partners", recipients=["Acme Ads Ltd"])
    purpose_id = gid("Purpose", (await Purpose.get(code="partners")).id)
    assert made["purpose"]["recipients"] == ["Acme Ads Ltd"]

    renamed = await _update(gql, admin_headers, id=purpose_id, name="Our partners")
    assert renamed["purpose"]["recipients"] == ["Acme Ads Ltd"]
    replaced = await _update(
        gql, admin_headers, id=purpose_id, recipients=["Globex Data Co", "price comparison sites"]
    )
    assert replaced["purpose"]["recipients"] == ["Globex Data Co", "price comparison sites"]
    emptied = await _update(gql, admin_headers, id=purpose_id, recipients=[])
    assert (emptied["code"], emptied["field"]) == ("REQUIRED", "input.recipients")
    bad = await _update(gql, admin_headers, id=purpose_id, recipients=["ok", ""])
    assert bad["issues"] == [{"field": "input.recipients.1", "code": "REQUIRED"}]
    assert (await Purpose.get(code="partners")).recipients == [
        "Globex Data Co",
        "price comparison sites",
    ]

    await _create(gql, admin_headers, code="billing", sale_or_sharing=False, recipients=["Bank"])
    billing = gid("Purpose", (await Purpose.get(code="billing")).id)
    cleared = await _update(gql, admin_headers, id=billing, recipients=[])
    assert cleared["purpose"]["recipients"] == []


async def test_the_export_lists_recipients_per_purpose_and_says_when_none_were_recorded(
    gql: GraphQLClient,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    vault: Vault,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await make_customer(vault, email="odile.marsh@example.com")
    await _create(gql, admin_headers, code="partners", recipients=["Acme Ads Ltd", "data brokers"])
    await _create(gql, admin_headers, code="billing", sale_or_sharing=False)
    # A sharing purpose from before recipients were kept: it still works (a name change is
    # accepted with its recipients left alone) and its recipients are "not recorded".
    await consent.create_purpose(
        SYSTEM,
        consent.PurposeDefinition(
            code="legacy-sharing",
            name="Legacy sharing",
            description="",
            lawful_basis=LawfulBasis.LEGITIMATE_INTERESTS,
            mechanism=Mechanism.OPT_OUT,
            data_use="third_party_sharing",
            data_categories=[],
            sale_or_sharing=True,
            notice_text="We share your data.",
            recipients=["Someone"],
        ),
    )
    await Purpose.filter(code="legacy-sharing").update(recipients=[])  # as stored before
    legacy = await Purpose.get(code="legacy-sharing")
    assert legacy.recipients == []
    kept = await _update(gql, admin_headers, id=gid("Purpose", legacy.id), name="Legacy partners")
    assert kept["purpose"] == {
        "code": "legacy-sharing",
        "saleOrSharing": True,
        "recipients": [],
    }

    request_id = await approved(gql, admin_headers, "ACCESS", "odile.marsh@example.com")
    await execute(gql, admin_headers, request_id)
    processing = (await client.get(export_link(caplog))).json()["processing"]

    per_purpose = {p["code"]: p["recipients"] for p in processing["purposes"]}
    assert per_purpose == {
        "billing": [],
        "legacy-sharing": access.NOT_RECORDED,
        "partners": ["Acme Ads Ltd", "data brokers"],
    }
    assert processing["recipients"] == [
        {
            "purpose": "legacy-sharing",
            "sale_or_sharing": True,
            "recipients": "not recorded",
            "permitted": True,
        },
        {
            "purpose": "partners",
            "sale_or_sharing": True,
            "recipients": ["Acme Ads Ltd", "data brokers"],
            "permitted": True,
        },
    ]


async def test_the_consent_receipt_names_the_recipients(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    customer_id = (await make_customer(vault, email="p.lark@example.com")).customer_id
    await _create(gql, admin_headers, code="partners", recipients=["Acme Ads Ltd", "brokers"])
    body = await gql(
        "query($id: ID!) { consentReceipt(customerId: $id) }",
        {"id": gid("Customer", customer_id)},
        admin_headers,
    )
    [service] = body["data"]["consentReceipt"]["services"]
    [purpose] = service["purposes"]
    assert purpose["thirdPartyDisclosure"] is True
    assert purpose["thirdPartyName"] == "Acme Ads Ltd; brokers"


async def test_the_migration_gives_existing_purposes_no_recipients(
    database_server: DatabaseTarget,
) -> None:
    """Upgrading a database that has purposes: they get an empty list (shown as "not
    recorded" when they sell or share), and the column keeps no default of its own."""
    target = database_server.with_database(f"cdlm_mig_{uuid.uuid4().hex[:10]}")
    await ensure_database(target)
    try:
        config = tortoise_config(target, pool_max=2)
        async with TortoiseContext() as context:
            await context.init(config=config)
            executor = MigrationExecutor(
                get_connection("default"), {APP_LABEL: config["apps"][APP_LABEL]}
            )
            await executor.migrate([MigrationTarget(APP_LABEL, "0015_idempotency_key_digests")])
        connection = await connect(target)
        try:
            await connection.execute(
                "INSERT INTO purposes (id, code, name, description, lawful_basis, mechanism, "
                "data_use, data_categories, sale_or_sharing, current_version, created_at, "
                "updated_at) VALUES ($1, 'old-sharing', 'Old', '', 'legitimate_interests', "
                "'opt_out', 'third_party_sharing', '[]', true, 1, now(), now())",
                uuid.uuid4(),
            )
            assert (await apply_migrations(target))[0] == "0016_purpose_recipients"
            stored = await connection.fetchval(
                "SELECT recipients::text FROM purposes WHERE code = 'old-sharing'"
            )
            default = await connection.fetchval(
                "SELECT column_default FROM information_schema.columns "
                "WHERE table_name = 'purposes' AND column_name = 'recipients'"
            )
        finally:
            await connection.close()
        assert stored == "[]"
        assert default is None
    finally:
        await drop_database(target)


async def test_the_service_refuses_a_sharing_purpose_without_recipients() -> None:
    with pytest.raises(ValidationFailed) as refused:
        await consent.create_purpose(
            SYSTEM,
            consent.PurposeDefinition(
                code="sharing",
                name="Sharing",
                description="",
                lawful_basis=LawfulBasis.LEGITIMATE_INTERESTS,
                mechanism=Mechanism.OPT_OUT,
                data_use="third_party_sharing",
                data_categories=[],
                sale_or_sharing=True,
                notice_text="We share your data.",
            ),
        )
    assert (refused.value.field, refused.value.code) == ("input.recipients", "REQUIRED")

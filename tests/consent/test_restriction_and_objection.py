"""Restriction and objection are enforced wherever data is used: every "may we process"
answer comes from one check, nothing new is taken in for a restricted person, and an objection
is undone only by the person's own action."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from tortoise.connection import get_connection

from cdlm.auth.settings import AuthSettings
from cdlm.consent import service
from cdlm.consent.models import ConsentEntry, Decision, Mechanism, Method
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.core.vocabulary import LawfulBasis
from cdlm.customers import rights
from cdlm.customers.models import Customer, Event, SourceRecord
from cdlm.dsr import access
from cdlm.dsr.models import AccessExport
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.consent.test_consent import (
    CONSENTS,
    CREATE,
    GPC,
    GRANT,
    PREFERENCES,
    WITHDRAW,
    make_purpose,
)
from tests.customers.test_ingest import INGEST, record
from tests.dsr.support import approved, execute, key
from tests.factories import bearer, gid, make_api_key, make_customer

MAY_PROCESS = """
query($id: ID!, $code: String!) {
  mayProcess(customerId: $id, purposeCode: $code) { purposeCode permitted restricted }
}
"""
CONSENT_AT = """
query($id: ID!, $code: String!, $at: DateTime!) {
  consentAt(customerId: $id, purposeCode: $code, at: $at) { permitted restricted }
}
"""
STATUSES = (
    "query($id: ID!) { customer(id: $id) "
    "{ consents { purposeCode permitted restricted decision byDefault } } }"
)
EVIDENCE = {"userAgent": "Mozilla/5.0", "ipAddress": "198.51.100.7"}
INGEST_EVENTS = """
mutation($input: IngestEventsInput!) {
  ingestEvents(input: $input) {
    ... on EventsIngested { items { status issues { field code } } }
    ... on UserError { code field }
  }
}
"""


def event(n: int, **about: Any) -> dict[str, Any]:
    """An EventInput about a customer (``customerId`` or ``identifier``)."""
    return {
        "type": "page_view",
        "occurredAt": (clock.now() - timedelta(minutes=n + 1)).isoformat(),
        "sourceSystem": "web",
        **about,
    }


@pytest.fixture
async def frontend(auth: AuthSettings) -> dict[str, str]:
    return bearer(await make_api_key(auth, Role.INGEST))


async def _granted_customer(vault: Vault, email: str = "rae@example.com") -> uuid.UUID:
    customer = (await make_customer(vault, email=email, given_name="Rae")).customer_id
    await make_purpose("newsletter")
    await make_purpose("service-updates", Mechanism.OPT_OUT)
    await service.record(
        SYSTEM,
        vault,
        service.ConsentRecording(
            customer,
            [service.Choice("newsletter", Decision.GRANTED, 1)],
            service.Capture(Method.FORM, user_agent="ua"),
        ),
    )
    return customer


# ------------------------------------------------------------------------- restriction


async def test_every_answer_says_no_while_the_customer_is_restricted(
    gql: GraphQLClient, vault: Vault, admin_headers: dict[str, str]
) -> None:
    customer = await _granted_customer(vault)
    cid = gid("Customer", customer)
    before = await gql(STATUSES, {"id": cid}, admin_headers)
    assert {c["purposeCode"]: c["permitted"] for c in before["data"]["customer"]["consents"]} == {
        "newsletter": True,
        "service-updates": True,
    }
    granted_at = clock.now()
    with clock.travel(timedelta(hours=2)):
        await _restricted_answers(gql, admin_headers, customer)
        # Before the restriction began, the answer was yes.
        earlier = (granted_at + timedelta(hours=1)).isoformat()
        at = await gql(CONSENT_AT, {"id": cid, "code": "newsletter", "at": earlier}, admin_headers)
        assert at["data"]["consentAt"] == {"permitted": True, "restricted": False}


async def _restricted_answers(
    gql: GraphQLClient, admin_headers: dict[str, str], customer: uuid.UUID
) -> None:
    cid = gid("Customer", customer)
    assert await rights.restrict(customer)
    statuses = (await gql(STATUSES, {"id": cid}, admin_headers))["data"]["customer"]["consents"]
    assert [(s["permitted"], s["restricted"]) for s in statuses] == [(False, True)] * 2
    assert {s["decision"] for s in statuses} == {"GRANTED", None}  # the decisions still stand
    for code in ("newsletter", "service-updates"):
        answer = (await gql(MAY_PROCESS, {"id": cid, "code": code}, admin_headers))["data"]
        assert answer["mayProcess"]["permitted"] is False
        assert answer["mayProcess"]["restricted"] is True
        now = clock.now().isoformat()
        at = await gql(CONSENT_AT, {"id": cid, "code": code, "at": now}, admin_headers)
        assert at["data"]["consentAt"] == {"permitted": False, "restricted": True}
        assert not await service.may_process(customer, code)


async def test_the_access_export_says_no_purpose_may_use_a_restricted_persons_data(
    gql: GraphQLClient, vault: Vault, admin_headers: dict[str, str]
) -> None:
    customer = await _granted_customer(vault)
    await rights.restrict(customer)
    request_gid = await approved(gql, admin_headers, "ACCESS", "rae@example.com")
    assert (await execute(gql, admin_headers, request_gid))["request"]["status"] == "COMPLETED"
    request_id = key(request_gid)
    export = await AccessExport.get(request_id=request_id)
    sealing_key = await vault.customer_key(request_id)
    sealed = vault.open_bytes(sealing_key, request_id, f"export:{export.id}", export.content_sealed)
    purposes = json.loads(sealed)["processing"]["purposes"]
    assert {p["code"]: p["permitted"] for p in purposes} == {
        "newsletter": False,
        "service-updates": False,
    }
    assert access.FORMAT in sealed.decode()


async def test_nothing_new_is_taken_in_for_a_restricted_person(
    gql: GraphQLClient, vault: Vault, frontend: dict[str, str]
) -> None:
    customer = await _granted_customer(vault)
    other = (await make_customer(vault, email="free@example.com")).customer_id
    await rights.restrict(customer)
    sources_before = await SourceRecord.all().count()

    body = await gql(INGEST, {"input": record(email="rae@example.com", city="Leeds")}, frontend)
    refused = body["data"]["ingestCustomer"]
    assert (refused["__typename"], refused["code"]) == ("ValidationError", "PROCESSING_RESTRICTED")
    assert await SourceRecord.all().count() == sources_before
    assert await Customer.all().count() == 2  # no second profile made for them either

    body = await gql(
        INGEST_EVENTS,
        {
            "input": {
                "events": [
                    event(0, customerId=gid("Customer", customer)),
                    event(1, identifier={"kind": "EMAIL", "value": "rae@example.com"}),
                    event(2, customerId=gid("Customer", other)),
                ]
            }
        },
        frontend,
    )
    items = body["data"]["ingestEvents"]["items"]
    assert [i["status"] for i in items] == ["REJECTED", "REJECTED", "ACCEPTED"]
    assert [i["issues"][0]["code"] for i in items[:2]] == ["PROCESSING_RESTRICTED"] * 2
    assert await Event.filter(customer_id=customer).count() == 0

    grant = {"customerId": gid("Customer", customer), "purposeCode": "newsletter"}
    granted = await gql(GRANT, {"input": grant | {"noticeVersion": 1}}, frontend)
    refused = granted["data"]["grantConsent"]
    assert (refused["__typename"], refused["code"], refused["field"]) == (
        "PolicyViolationError",
        "PROCESSING_RESTRICTED",
        "input.customerId",
    )
    # Withdrawing stays as easy as ever.
    withdrawn = (await gql(WITHDRAW, {"input": grant}, frontend))["data"]["withdrawConsent"]
    assert withdrawn["__typename"] == "ConsentRecorded"


async def test_lifting_the_restriction_lets_data_in_again(
    gql: GraphQLClient, vault: Vault, frontend: dict[str, str]
) -> None:
    customer = await _granted_customer(vault)
    await rights.restrict(customer)
    await rights.lift_restriction(SYSTEM, customer, "The person confirmed the data.")
    body = await gql(INGEST, {"input": record(email="rae@example.com", city="Leeds")}, frontend)
    assert body["data"]["ingestCustomer"]["outcome"] == "MATCHED"
    assert await service.may_process(customer, "newsletter")


# --------------------------------------------------------------------------- objection


async def _objected(gql: GraphQLClient, vault: Vault, headers: dict[str, str]) -> uuid.UUID:
    customer = await _granted_customer(vault)
    request_id = await approved(gql, headers, "OBJECTION", "rae@example.com")
    assert (await execute(gql, headers, request_id))["request"]["status"] == "COMPLETED"
    assert not await service.may_process(customer, "newsletter")
    return customer


def _preferences(customer: uuid.UUID, method: str, **extra: Any) -> dict[str, Any]:
    return {
        "input": {
            "customerId": gid("Customer", customer),
            "preferences": [{"purposeCode": "newsletter", "granted": True, "noticeVersion": 1}],
            "method": method,
            **extra,
        }
    }


@pytest.mark.parametrize(
    ("method", "evidence"),
    [("IMPORT", EVIDENCE), ("AGENT", EVIDENCE), ("API", EVIDENCE), ("FORM", None)],
)
async def test_an_objection_is_not_undone_without_the_persons_own_action(
    gql: GraphQLClient,
    vault: Vault,
    admin_headers: dict[str, str],
    method: str,
    evidence: dict[str, str] | None,
) -> None:
    customer = await _objected(gql, vault, admin_headers)
    body = await gql(PREFERENCES, _preferences(customer, method, evidence=evidence), admin_headers)
    refused = body["data"]["setConsentPreferences"]
    assert (refused["__typename"], refused["code"], refused["field"]) == (
        "PolicyViolationError",
        "OBJECTION_IN_FORCE",
        "input.method",
    )
    assert not await service.may_process(customer, "newsletter")


async def test_the_person_can_grant_again_on_a_form_with_evidence(
    gql: GraphQLClient, vault: Vault, admin_headers: dict[str, str]
) -> None:
    customer = await _objected(gql, vault, admin_headers)
    body = await gql(PREFERENCES, _preferences(customer, "FORM", evidence=EVIDENCE), admin_headers)
    assert body["data"]["setConsentPreferences"]["__typename"] == "ConsentRecorded"
    assert await service.may_process(customer, "newsletter")
    # Once they have granted again themselves, later decisions follow the usual rules.
    withdrawn = await service.record(
        SYSTEM,
        vault,
        service.ConsentRecording(
            customer,
            [service.Choice("newsletter", Decision.WITHDRAWN)],
            service.Capture(Method.IMPORT),
        ),
    )
    assert withdrawn[0]
    regranted = await service.record(
        SYSTEM,
        vault,
        service.ConsentRecording(
            customer,
            [service.Choice("newsletter", Decision.GRANTED, 1)],
            service.Capture(Method.IMPORT),
        ),
    )
    assert regranted[0]


async def test_a_gpc_opt_out_is_not_undone_by_an_import(
    gql: GraphQLClient, vault: Vault, frontend: dict[str, str]
) -> None:
    customer = (await make_customer(vault, email="gpc@example.com")).customer_id
    await make_purpose("ads", Mechanism.OPT_IN, data_use="marketing.advertising.first_party")
    gpc = {"input": {"customerId": gid("Customer", customer)}}
    assert (await gql(GPC, gpc, frontend))["data"]["recordGlobalPrivacyControl"]["entries"]
    body = await gql(
        PREFERENCES,
        {
            "input": {
                "customerId": gid("Customer", customer),
                "preferences": [{"purposeCode": "ads", "granted": True, "noticeVersion": 1}],
                "method": "IMPORT",
            }
        },
        frontend,
    )
    assert body["data"]["setConsentPreferences"]["code"] == "OBJECTION_IN_FORCE"


async def test_a_general_objection_covers_sale_and_sharing(
    gql: GraphQLClient, vault: Vault, admin_headers: dict[str, str]
) -> None:
    customer = await _granted_customer(vault)
    await make_purpose(
        "partners", Mechanism.OPT_IN, data_use="third_party_sharing", sale_or_sharing=True
    )
    await service.record(
        SYSTEM,
        vault,
        service.ConsentRecording(
            customer,
            [service.Choice("partners", Decision.GRANTED, 1)],
            service.Capture(Method.FORM, user_agent="ua"),
        ),
    )
    assert await service.may_process(customer, "partners")
    request_id = await approved(gql, admin_headers, "OBJECTION", "rae@example.com")
    await execute(gql, admin_headers, request_id)
    assert not await service.may_process(customer, "partners")
    entry = await ConsentEntry.filter(purpose__code="partners").order_by("-sequence").first()
    assert entry is not None
    assert (entry.decision, entry.method) == (Decision.WITHDRAWN, Method.REQUEST)


# -------------------------------------------------------------------- consent is opt-in


@pytest.mark.parametrize(
    ("basis", "mechanism", "accepted"),
    [
        ("CONSENT", "OPT_OUT", False),
        ("CONSENT", "NOTICE_ONLY", False),
        ("LEGITIMATE_INTERESTS", "OPT_IN", False),
        ("CONSENT", "OPT_IN", True),
        ("LEGITIMATE_INTERESTS", "OPT_OUT", True),
        ("CONTRACT", "NOTICE_ONLY", True),
    ],
)
async def test_consent_is_never_assumed(
    gql: GraphQLClient, admin_headers: dict[str, str], basis: str, mechanism: str, accepted: bool
) -> None:
    body = await gql(
        CREATE,
        {
            "input": {
                "code": "partners",
                "name": "Partners",
                "description": "Sharing with partners.",
                "lawfulBasis": basis,
                "mechanism": mechanism,
                "dataUse": "third_party_sharing",
                "dataCategories": ["user.contact.email"],
                "noticeText": "We share your email with partners.",
            }
        },
        admin_headers,
    )
    result = body["data"]["createPurpose"]
    if accepted:
        assert result["__typename"] == "PurposeSaved"
    else:
        assert (result["__typename"], result["code"], result["field"]) == (
            "ValidationError",
            "POLICY_VIOLATION",
            "input.mechanism",
        )


async def test_a_consent_purpose_declared_opt_out_before_the_rule_still_needs_a_grant(
    gql: GraphQLClient, vault: Vault, admin_headers: dict[str, str]
) -> None:
    customer = (await make_customer(vault, email="old@example.com")).customer_id
    purpose = await make_purpose("partners", Mechanism.OPT_IN)
    # As an installation that accepted the combination before the rule would hold it.
    await get_connection("default").execute_query(
        "UPDATE purposes SET mechanism = 'opt_out' WHERE id = $1", [purpose.id]
    )
    assert not await service.may_process(customer, "partners")
    statuses = (await gql(CONSENTS, {"id": gid("Customer", customer)}, admin_headers))["data"][
        "customer"
    ]
    assert statuses["consents"][0]["permitted"] is False
    assert (await service.purpose("partners")).lawful_basis == LawfulBasis.CONSENT


async def test_may_process_gives_any_role_the_answer_and_nothing_behind_it(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings
) -> None:
    customer = await _granted_customer(vault)
    analyst = bearer(await make_api_key(auth, Role.ANALYST))
    answer = await gql(
        MAY_PROCESS, {"id": gid("Customer", customer), "code": "newsletter"}, analyst
    )
    assert answer["data"]["mayProcess"] == {
        "purposeCode": "newsletter",
        "permitted": True,
        "restricted": False,
    }
    behind = await gql(
        'query($id: ID!) { mayProcess(customerId: $id, purposeCode: "newsletter") { decision } }',
        {"id": gid("Customer", customer)},
        analyst,
    )
    assert behind["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"

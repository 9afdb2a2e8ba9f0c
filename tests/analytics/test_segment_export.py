"""Segment exports: consent enforced at export time, fields limited to the purpose's data
categories, refusals writing nothing, the download link, the audit entry and the roles."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import uuid
from typing import Any

import httpx
import pytest

from cdlm.analytics.segments import service
from cdlm.analytics.segments.export import destroy_unreachable
from cdlm.analytics.segments.models import SegmentExport
from cdlm.audit.models import AuditEntry
from cdlm.auth.settings import AuthSettings
from cdlm.config import Settings
from cdlm.consent import service as consent
from cdlm.consent.models import Decision, Mechanism
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.core.vocabulary import LawfulBasis
from cdlm.customers.models import CustomerAttributes
from cdlm.dsr.models import DownloadToken
from cdlm.governance.ropa import processing_records
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key, make_customer

EXPORT = (
    "mutation($input: ExportSegmentInput!) { exportSegment(input: $input) { __typename "
    "... on SegmentExported { downloadUrl expiresAt segmentExport { id purposeCode format "
    "fields counts { membersEvaluated membersExported leftOutForConsent } segment { name } } } "
    "... on UserError { code field message } } }"
)


async def _purpose(
    code: str, categories: list[str], mechanism: Mechanism = Mechanism.OPT_IN
) -> None:
    await consent.create_purpose(
        SYSTEM,
        consent.PurposeDefinition(
            code=code,
            name=code.title(),
            description="Partner offers.",
            lawful_basis=LawfulBasis.CONSENT
            if mechanism is Mechanism.OPT_IN
            else LawfulBasis.LEGITIMATE_INTERESTS,
            mechanism=mechanism,
            data_use="marketing.communications.email",
            data_categories=categories,
            sale_or_sharing=False,
            notice_text="We send partner offers.",
        ),
    )


async def _decide(vault: Vault, customer_id: uuid.UUID, code: str, decision: Decision) -> None:
    await consent.record(
        SYSTEM,
        vault,
        consent.ConsentRecording(
            customer_id,
            [consent.Choice(code, decision, 1 if decision is Decision.GRANTED else None)],
            consent.Capture(consent.Method.API),
        ),
    )


async def _customer(vault: Vault, email: str, given_name: str) -> uuid.UUID:
    made = await make_customer(
        vault, external_ids=[f"crm:{uuid.uuid4()}"], email=email, given_name=given_name
    )
    await CustomerAttributes.update_or_create(
        defaults={"country": "DE", "churn_risk": 0.5}, customer_id=made.customer_id
    )
    return made.customer_id


async def _segment() -> uuid.UUID:
    saved = await service.create_segment(
        SYSTEM,
        service.SegmentDraft(
            name="Germany",
            definition={"attribute": {"attribute": "attributes.country", "equals": "DE"}},
        ),
    )
    return saved.id


def _path(url: str) -> str:
    found = re.search(r"(/exports/cdlm_dl_\w+_[\w-]+)", url)
    assert found is not None
    return found.group(1)


@pytest.fixture
async def officer(auth: AuthSettings) -> dict[str, str]:
    return bearer(await make_api_key(auth, Role.PRIVACY_OFFICER))


async def test_export_keeps_consented_members_and_allowed_fields_only(
    vault: Vault,
    gql: GraphQLClient,
    client: httpx.AsyncClient,
    officer: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _purpose("partners", ["user.contact.email", "user.contact.address.country"])
    kept = await _customer(vault, "ada.lovelace@example.com", "Ada")
    withdrew = await _customer(vault, "charles.babbage@example.com", "Charles")
    for who in (kept, withdrew):
        await _decide(vault, who, "partners", Decision.GRANTED)
    await _decide(vault, withdrew, "partners", Decision.WITHDRAWN)
    segment_id = await _segment()

    caplog.set_level(logging.DEBUG)
    body = await gql(
        EXPORT,
        {
            "input": {
                "segmentId": gid("Segment", segment_id),
                "purposeCode": "partners",
                "format": "CSV",
            }
        },
        officer,
    )
    made = body["data"]["exportSegment"]
    assert made["__typename"] == "SegmentExported", made
    export = made["segmentExport"]
    assert export["counts"] == {"membersEvaluated": 2, "membersExported": 1, "leftOutForConsent": 1}
    assert export["fields"] == [
        "customerId",
        "profile.email",
        "profile.address.country",
        "analytics.attributes.country",
        "analytics.attributes.emailDomainKind",
    ]
    assert export["segment"] == {"name": "Germany"}

    response = await client.get(_path(made["downloadUrl"]))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows == [
        {
            "customerId": str(kept),
            "profile.email": "ada.lovelace@example.com",
            "profile.address.country": "",
            "analytics.attributes.country": "DE",
            "analytics.attributes.emailDomainKind": rows[0]["analytics.attributes.emailDomainKind"],
        }
    ]
    assert "harles" not in response.text
    assert "Ada" not in response.text  # the given name is outside the purpose's categories
    for value in ("ada.lovelace", "charles.babbage", "Ada", "Charles"):
        assert value not in caplog.text

    # The audit entry points at the export, which keeps the counts, and names the fields.
    entry = await AuditEntry.get(action="segment.export")
    stored = await SegmentExport.get(id=entry.target_id)
    assert (stored.members_evaluated, stored.members_exported, stored.left_out_for_consent) == (
        2,
        1,
        1,
    )
    assert entry.fields_touched == sorted(
        ["email", "country", "analytics.attributes.country", "analytics.attributes.emailDomainKind"]
    )
    assert await AuditEntry.exists(action="segment.export.download", target_id=str(stored.id))


async def test_json_lines_and_the_link_works_as_access_export_links_do(
    vault: Vault, gql: GraphQLClient, client: httpx.AsyncClient, officer: dict[str, str]
) -> None:
    await _purpose("partners", ["user.behavior"])
    member = await _customer(vault, "grace.hopper@example.com", "Grace")
    await _decide(vault, member, "partners", Decision.GRANTED)
    segment_id = await _segment()
    variables = {
        "input": {
            "segmentId": gid("Segment", segment_id),
            "purposeCode": "partners",
            "format": "JSON_LINES",
        }
    }
    made = (await gql(EXPORT, variables, officer))["data"]["exportSegment"]
    path = _path(made["downloadUrl"])
    first = await client.get(path)
    assert first.status_code == 200
    lines = [json.loads(line) for line in first.text.splitlines()]
    assert [line["customerId"] for line in lines] == [str(member)]
    assert "profile.email" not in lines[0]
    # Used up like an access export link: then the same 404 as an unknown link.
    await DownloadToken.filter(token_id=path.split("_")[2]).update(downloads=5)
    assert (await client.get(path)).status_code == 404
    assert (await client.get(path[:-3] + "abc")).status_code == 404


async def test_a_file_no_link_can_fetch_is_destroyed_and_its_record_kept(
    vault: Vault, settings: Settings, gql: GraphQLClient, officer: dict[str, str]
) -> None:
    await _purpose("partners", ["user.behavior"])
    member = await _customer(vault, "ada.lovelace@example.com", "Ada")
    await _decide(vault, member, "partners", Decision.GRANTED)
    segment_id = await _segment()
    variables = {
        "input": {"segmentId": gid("Segment", segment_id), "purposeCode": "partners",
                  "format": "CSV"}
    }  # fmt: skip
    made = (await gql(EXPORT, variables, officer))["data"]["exportSegment"]
    path = _path(made["downloadUrl"])
    assert await destroy_unreachable(vault) == 0  # its link still works
    await DownloadToken.filter(token_id=path.split("_")[2]).update(downloads=5)
    assert await destroy_unreachable(vault) == 1
    export = await SegmentExport.get(segment_id=segment_id)
    assert export.content_sealed is None
    assert export.members_exported == 1
    assert await vault.customer_keys([export.id]) == {}
    assert await destroy_unreachable(vault) == 0
    # The records of processing name the flow under the purpose's recipients.
    records = await processing_records(settings)
    partners = next(a for a in records.processing_activities if a.purpose == "partners")
    assert partners.recipients[-1].startswith("segment exports: 1 files with 1 customers' ")


@pytest.mark.parametrize(
    ("code", "mechanism", "categories"),
    [
        ("unknown", None, None),
        ("notice", Mechanism.NOTICE_ONLY, ["user.contact.email"]),
        ("nothing", Mechanism.OPT_IN, ["system.operations"]),
    ],
)
async def test_refusals_write_nothing(
    vault: Vault,
    gql: GraphQLClient,
    officer: dict[str, str],
    code: str,
    mechanism: Mechanism | None,
    categories: list[str] | None,
) -> None:
    if mechanism is not None and categories is not None:
        await _purpose(code, categories, mechanism)
    await _customer(vault, "alan.turing@example.com", "Alan")
    segment_id = await _segment()
    body = await gql(
        EXPORT,
        {"input": {"segmentId": gid("Segment", segment_id), "purposeCode": code, "format": "CSV"}},
        officer,
    )
    refused = body["data"]["exportSegment"]
    assert refused["__typename"] == "PolicyViolationError", refused
    assert refused["field"] == "input.purposeCode"
    assert not await SegmentExport.exists()
    assert not await DownloadToken.filter(segment_export_id__isnull=False).exists()
    assert not await AuditEntry.exists(action="segment.export")


async def test_unknown_segment_and_bad_id(gql: GraphQLClient, officer: dict[str, str]) -> None:
    unknown: dict[str, Any] = {
        "input": {"segmentId": gid("Segment", uuid.uuid4()), "purposeCode": "x", "format": "CSV"}
    }
    body = await gql(EXPORT, unknown, officer)
    assert body["data"]["exportSegment"]["__typename"] == "NotFoundError"
    assert body["data"]["exportSegment"]["field"] == "input.segmentId"
    unknown["input"]["segmentId"] = "nonsense"
    body = await gql(EXPORT, unknown, officer)
    assert body["data"]["exportSegment"]["__typename"] == "ValidationError"


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.ADMIN, True),
        (Role.PRIVACY_OFFICER, True),
        (Role.ANALYST, False),
        (Role.STEWARD, False),
        (Role.AGENT, False),
    ],
)
async def test_roles_and_node_lookup(
    vault: Vault, gql: GraphQLClient, auth: AuthSettings, role: Role, allowed: bool
) -> None:
    await _purpose("partners", ["user.contact.email"])
    segment_id = await _segment()
    headers = bearer(await make_api_key(auth, role))
    variables = {
        "input": {
            "segmentId": gid("Segment", segment_id),
            "purposeCode": "partners",
            "format": "CSV",
        }
    }
    body = await gql(EXPORT, variables, headers)
    if not allowed:
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        return
    export_id = body["data"]["exportSegment"]["segmentExport"]["id"]
    found = await gql(
        "query($id: ID!) { node(id: $id) { __typename ... on SegmentExport { purposeCode } } }",
        {"id": export_id},
        headers,
    )
    assert found["data"]["node"] == {"__typename": "SegmentExport", "purposeCode": "partners"}

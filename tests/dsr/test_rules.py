"""Rules around requests: the public view, audited contact reads, settings of the clocks,
suppression in bulk imports, what an erased customer leaves visible, lifting a restriction."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cdlm.audit.models import AuditEntry
from cdlm.config import ConfigError, load_settings
from cdlm.core.jurisdictions import ClockRule, Jurisdiction, parse_rules
from cdlm.core.principal import SYSTEM
from cdlm.core.vocabulary import LawfulBasis, SourceKind
from cdlm.customers.importer import FileImport, ImportOptions, run_import
from cdlm.customers.models import Customer
from cdlm.dsr.deadlines import RequestClock
from cdlm.retention import service as retention
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.dsr.support import GET, approved, execute, key, request_gid, submit
from tests.factories import gid, make_customer
from tests.support.audit import read_records

STATUS = """
query($id: ID!) {
  dataSubjectRequestStatus(requestId: $id) { requestId type status receivedAt dueAt }
}
"""
LIFT = """
mutation($id: ID!, $reason: String!) {
  liftCustomerRestriction(input: {customerId: $id, reason: $reason}) {
    __typename
    ... on CustomerRestrictionLifted { customer { restrictedAt } }
    ... on UserError { code field }
  }
}
"""


@pytest.fixture(autouse=True)
def notifications(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cdlm.notifications")


async def test_requesters_follow_their_request_without_logging_in(gql: GraphQLClient) -> None:
    received = await submit(gql, "ERASURE")
    answer = await gql(STATUS, {"id": received["requestId"]})
    view = answer["data"]["dataSubjectRequestStatus"]
    assert view["status"] == "OPEN"
    assert view["type"] == "ERASURE"
    assert set(view) == {"requestId", "type", "status", "receivedAt", "dueAt"}
    # The id handed out at submission is the request's global id, and the view says so.
    assert view["requestId"] == received["requestId"] == received["request"]["requestId"]
    assert received["requestId"] == request_gid(key(received["requestId"]))
    # (The due date moves on while the request waits for its code.)
    assert {k: v for k, v in received["request"].items() if k != "dueAt"} == {
        k: v for k, v in view.items() if k != "dueAt"
    }
    unknown = await gql(STATUS, {"id": request_gid(uuid.uuid4())})
    assert unknown == {"data": {"dataSubjectRequestStatus": None}}
    for malformed in ("nope", str(uuid.uuid4()), gid("Customer", uuid.uuid4())):
        refused = await gql(STATUS, {"id": malformed})
        assert refused["data"] == {"dataSubjectRequestStatus": None}
        [error] = refused["errors"]
        assert error["extensions"]["code"] == "INVALID_ID"
        assert error["extensions"]["field"] == "requestId"


async def test_reading_a_requesters_contact_is_audited(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    received = await submit(gql)
    await gql(GET, {"id": received["requestId"]}, admin_headers)
    reads = await read_records("dsr.read", key(received["requestId"]))
    assert [r.fields_touched for r in reads] == [["subject"]]
    without_subject = "query($id: ID!) { dataSubjectRequest(id: $id) { status } }"
    await gql(without_subject, {"id": received["requestId"]}, admin_headers)
    assert len(await read_records("dsr.read")) == 1


def test_clock_rules_are_configurable_and_bad_ones_stop_the_start() -> None:
    rules = parse_rules("gdpr=30d+60d, lgpd=10d")
    assert rules[Jurisdiction.GDPR] == ClockRule(days=30, extension_days=60)
    assert rules[Jurisdiction.LGPD] == ClockRule(days=10, pause_while_waiting=False)
    jan = datetime(2026, 1, 10, tzinfo=UTC)
    custom = RequestClock(jan, Jurisdiction.GDPR, custom_rule=rules[Jurisdiction.GDPR])
    assert custom.due_at(jan) == datetime(2026, 2, 9, tzinfo=UTC)
    assert custom.extend().due_at(jan) == datetime(2026, 4, 10, tzinfo=UTC)
    for bad in ("gdpr", "gdpr=1y", "mars=1m", "gdpr=1m+"):
        with pytest.raises(ConfigError) as error:
            load_settings({"CDLM_DSR_CLOCKS": bad})
        assert error.value.variable == "CDLM_DSR_CLOCKS"
    for variable, bad in (
        ("CDLM_PUBLIC_URL", "ftp://x"),
        ("CDLM_DSR_DEFAULT_JURISDICTION", "eu"),
        ("CDLM_EXPORT_DOWNLOAD_TTL", "10"),
    ):
        with pytest.raises(ConfigError) as error:
            load_settings({variable: bad})
        assert error.value.variable == variable
    settings = load_settings({"CDLM_PUBLIC_URL": "https://api.example.com/"})
    assert settings.public_url == "https://api.example.com"


async def test_a_file_import_refuses_erased_people_with_a_reason(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault, tmp_path: Path
) -> None:
    await make_customer(vault, email="gone@example.com", given_name="Gone")
    request_id = await approved(gql, admin_headers, "ERASURE", "gone@example.com")
    await execute(gql, admin_headers, request_id)
    source = tmp_path / "crm.csv"
    source.write_text(
        "email,given_name\ngone@example.com,Gone\nstays@example.com,Stays\n", encoding="utf-8"
    )
    options = ImportOptions("crm", SourceKind.CRM, LawfulBasis.CONTRACT, "essential.service")
    summary = await run_import(SYSTEM, vault, FileImport(source, options))
    assert (summary.created, summary.rejected) == (1, 1)
    [reject] = [json.loads(line) for line in summary.rejects_path.read_text().splitlines()]
    assert reject["line"] == 2
    assert [i["code"] for i in reject["issues"]] == ["SUPPRESSED"]
    assert "gone@example.com" not in summary.rejects_path.read_text()


async def test_what_a_hold_keeps_of_an_erased_customer_is_out_of_every_normal_path(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    customer_id = (await make_customer(vault, email="kept@example.com")).customer_id
    await retention.place_hold(SYSTEM, reason="Tax", category="source_records")
    request_id = await approved(gql, admin_headers, "ERASURE", "kept@example.com")
    await execute(gql, admin_headers, request_id)
    assert await Customer.exists(id=customer_id)  # the held source record needs its owner
    found = await gql(
        "query($id: ID!) { customer(id: $id) { id } customers { nodes { id } } }",
        {"id": gid("Customer", customer_id)},
        admin_headers,
    )
    assert found["data"] == {"customer": None, "customers": {"nodes": []}}
    lifted = await gql(LIFT, {"id": gid("Customer", customer_id), "reason": "no"}, admin_headers)
    gone = lifted["data"]["liftCustomerRestriction"]
    assert (gone["__typename"], gone["code"], gone["field"]) == (
        "NotFoundError",
        "NOT_FOUND",
        "input.customerId",
    )


async def test_lifting_a_restriction(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    customer_id = (await make_customer(vault, email="r@example.com")).customer_id
    not_restricted = await gql(
        LIFT, {"id": gid("Customer", customer_id), "reason": "checked"}, admin_headers
    )
    refused = not_restricted["data"]["liftCustomerRestriction"]
    assert (refused["__typename"], refused["code"]) == ("InvalidStateError", "INVALID_STATE")
    request_id = await approved(gql, admin_headers, "RESTRICTION", "r@example.com")
    await execute(gql, admin_headers, request_id)
    blank = await gql(LIFT, {"id": gid("Customer", customer_id), "reason": " "}, admin_headers)
    assert blank["data"]["liftCustomerRestriction"]["field"] == "input.reason"
    lifted = await gql(
        LIFT,
        {"id": gid("Customer", customer_id), "reason": "Accuracy confirmed; customer told."},
        admin_headers,
    )
    done = lifted["data"]["liftCustomerRestriction"]
    assert done["__typename"] == "CustomerRestrictionLifted"
    assert done["customer"]["restrictedAt"] is None
    assert await AuditEntry.exists(action="customer.lift_restriction")

"""Staff file requests identified by any kind of identifier; each finds the customer."""

from __future__ import annotations

import pytest

from cdlm.dsr.models import AccessExport
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.dsr.support import change, execute, file_request, key
from tests.factories import gid, make_customer


@pytest.mark.parametrize(
    ("kind", "value", "shown"),
    [
        ("EMAIL", " Grace@Example.com ", "grace@example.com"),
        ("PHONE", "+1 202 555 0143", "+12025550143"),
        ("EXTERNAL_ID", "Loyalty:GH-1906", "loyalty:GH-1906"),
    ],
)
async def test_a_request_filed_by_any_identifier_kind_finds_and_serves_the_customer(
    gql: GraphQLClient,
    vault: Vault,
    admin_headers: dict[str, str],
    kind: str,
    value: str,
    shown: str,
) -> None:
    customer = await make_customer(
        vault,
        email="grace@example.com",
        phone="+1 202 555 0143",
        external_ids=["loyalty:GH-1906"],
    )
    filed = await file_request(
        gql, admin_headers, "ACCESS", identifier={"kind": kind, "value": value}
    )
    assert filed["__typename"] == "DataSubjectRequestFiled", filed
    request = filed["request"]
    assert request["customerId"] == gid("Customer", customer.customer_id)
    assert request["subject"] == shown
    await change(gql, admin_headers, request["id"], "APPROVED")
    done = await execute(gql, admin_headers, request["id"])
    assert done["request"]["status"] == "COMPLETED", done
    assert await AccessExport.filter(request_id=key(request["id"])).count() == 1


async def test_an_external_id_request_is_matched_again_when_it_runs(
    gql: GraphQLClient, vault: Vault, admin_headers: dict[str, str]
) -> None:
    filed = await file_request(
        gql, admin_headers, "ACCESS", identifier={"kind": "EXTERNAL_ID", "value": "crm:77"}
    )
    request = filed["request"]
    assert request["customerId"] is None
    customer = await make_customer(vault, external_ids=["crm:77"])
    await change(gql, admin_headers, request["id"], "APPROVED")
    done = await execute(gql, admin_headers, request["id"])
    assert done["request"]["customerId"] == gid("Customer", customer.customer_id)

"""A shared phone or email never glues two people together, through import, the API and the
data subject requests that act on the profile."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import httpx
import pytest

from cdlm.core.principal import SYSTEM
from cdlm.core.vocabulary import LawfulBasis, SourceKind
from cdlm.customers.importer import FileImport, ImportOptions, run_import
from cdlm.customers.ingest import CustomerIngest, ingest_batch
from cdlm.customers.models import Customer
from cdlm.dsr.models import AccessExport, DataSubjectRequest
from cdlm.graphql.relay import parse_id
from cdlm.identity.models import Identity, IdentityConflict, Suppression
from cdlm.quality.models import InvalidValue
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.customers.test_ingest import INGEST, record
from tests.dsr.support import approved, change, execute, export_link, file_request, key
from tests.factories import gid, make_customer, source

SHARED_PHONE = "+44 20 7946 0958"


@pytest.fixture(autouse=True)
def notifications(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cdlm.notifications")


async def _ada(vault: Vault) -> str:
    created = await make_customer(
        vault,
        given_name="Ada",
        family_name="Lovelace",
        email="ada@example.com",
        phone=SHARED_PHONE,
    )
    return str(created.customer_id)


async def test_imported_strangers_sharing_a_phone_become_profiles_of_their_own(
    vault: Vault, short_tmp: Path
) -> None:
    ada = await _ada(vault)
    path = short_tmp / "switchboard.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["given_name", "family_name", "email", "phone"])
        writer.writeheader()
        for n in range(20):
            writer.writerow(
                {
                    "given_name": f"Caller{chr(65 + n)}",
                    "family_name": "Babbage",
                    "email": f"caller{n}@example.org",
                    "phone": SHARED_PHONE,
                }
            )
    options = ImportOptions("crm", SourceKind.IMPORT, LawfulBasis.CONTRACT, "essential.service")
    summary = await run_import(SYSTEM, vault, FileImport(path, options))
    assert (summary.created, summary.matched, summary.rejected) == (20, 0, 0)
    assert await Customer.all().count() == 21
    # Ada keeps exactly what was hers.
    assert await Identity.filter(customer_id=ada).count() == 2
    conflicts = await IdentityConflict.all()
    assert len(conflicts) == 20
    assert {str(c.other_customer_id) for c in conflicts} == {ada}
    assert all(c.reasons == ["name_differs", "email_differs"] for c in conflicts)
    assert all(c.identifier_kind == "phone" for c in conflicts)
    assert len({c.customer_id for c in conflicts}) == 20
    # Each stranger has their own email; the shared phone is kept out of their profile.
    strangers = [c.customer_id for c in conflicts]
    assert await Identity.filter(customer_id__in=strangers, kind="email").count() == 20
    assert await Identity.filter(customer_id__in=strangers, kind="phone").count() == 0
    refused = await InvalidValue.filter(customer_id__in=strangers, field="phone")
    assert {r.code for r in refused} == {"IDENTITY_CONFLICT"}


async def test_the_api_says_why_a_record_was_kept_apart(
    gql: GraphQLClient, vault: Vault, admin_headers: dict[str, str]
) -> None:
    ada = await _ada(vault)
    body = await gql(
        INGEST,
        {
            "input": record(
                given_name="Charles",
                family_name="Babbage",
                email="charles@example.org",
                phone=SHARED_PHONE,
            )
        },
        headers=admin_headers,
    )
    result = body["data"]["ingestCustomer"]
    assert result["outcome"] == "CREATED"
    assert result["customerId"] != gid("Customer", ada)
    assert {"field": "input.profile.phone", "code": "IDENTITY_CONFLICT"} in [
        {"field": i["field"], "code": i["code"]} for i in result["issues"]
    ]


async def test_the_same_person_on_the_same_phone_is_still_matched(
    gql: GraphQLClient, vault: Vault, admin_headers: dict[str, str]
) -> None:
    ada = await _ada(vault)
    body = await gql(
        INGEST,
        {
            "input": record(
                given_name="ADA",
                family_name="Lovelace",
                email="countess@example.org",
                phone=SHARED_PHONE,
            )
        },
        headers=admin_headers,
    )
    result = body["data"]["ingestCustomer"]
    assert (result["outcome"], result["matchedRule"], result["customerId"]) == (
        "MATCHED",
        "phone",
        gid("Customer", ada),
    )
    assert await Identity.filter(customer_id=ada, kind="email").count() == 2
    assert await IdentityConflict.all().count() == 0


async def test_a_family_inbox_keeps_two_people_apart(vault: Vault) -> None:
    first = await make_customer(vault, given_name="John", family_name="Smith", email="s@x.org")
    second = await make_customer(vault, given_name="Jane", family_name="Smith", email="s@x.org")
    assert first.customer_id != second.customer_id
    same = await make_customer(vault, given_name="Johnny", family_name="Smith", email="s@x.org")
    assert same.customer_id == first.customer_id


async def test_requests_for_a_stranger_act_on_the_stranger_only(
    gql: GraphQLClient,
    client: httpx.AsyncClient,
    vault: Vault,
    admin_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ada = await _ada(vault)
    stranger = await make_customer(
        vault,
        given_name="Charles",
        family_name="Babbage",
        email="charles@example.org",
        phone=SHARED_PHONE,
    )
    # Access: the copy holds the stranger's data and nothing of Ada's.
    request_id = await approved(gql, admin_headers, "ACCESS", "charles@example.org")
    done = await execute(gql, admin_headers, request_id)
    assert done["request"]["customerId"] == gid("Customer", stranger.customer_id)
    copy = (await client.get(export_link(caplog))).json()
    dumped = json.dumps(copy)
    assert "Charles" in dumped
    assert "Ada" not in dumped
    assert "ada@example.com" not in dumped
    # Erasure of the stranger suppresses their identifiers, never Ada's.
    erasure = await approved(gql, admin_headers, "ERASURE", "charles@example.org")
    assert (await execute(gql, admin_headers, erasure))["request"]["status"] == "COMPLETED"
    assert await Customer.exists(id=ada)
    assert await Identity.filter(customer_id=ada).count() == 2
    suppressed = set(await Suppression.all().values_list("blind_index", flat=True))
    ada_indexes = set(await Identity.filter(customer_id=ada).values_list("blind_index", flat=True))
    assert suppressed
    assert not suppressed & ada_indexes
    assert await IdentityConflict.all().count() == 0  # the pair went with the stranger


async def test_a_request_by_a_shared_phone_is_not_answered_for_either_person(
    gql: GraphQLClient, vault: Vault, admin_headers: dict[str, str]
) -> None:
    await _ada(vault)
    await make_customer(vault, given_name="Charles", family_name="Babbage", phone=SHARED_PHONE)
    filed = await file_request(
        gql,
        admin_headers,
        "ACCESS",
        identifier={"kind": "PHONE", "value": SHARED_PHONE},
        verificationMethod="KNOWN_CONTACT_DETAILS",
    )
    request = filed["request"]
    assert request["customerId"] is None
    await change(gql, admin_headers, request["id"], "APPROVED")
    refused = await execute(gql, admin_headers, request["id"])
    assert refused["__typename"] == "PolicyViolationError"
    assert refused["message"].startswith("The requester's email or phone is shared")
    # Nothing changed: still approved, no export made.
    assert (await DataSubjectRequest.get(id=key(request["id"]))).status == "approved"
    assert await AccessExport.all().count() == 0


async def test_staff_can_file_the_request_again_naming_either_person(
    gql: GraphQLClient, vault: Vault, admin_headers: dict[str, str]
) -> None:
    ada = await _ada(vault)
    charles = await make_customer(
        vault, given_name="Charles", family_name="Babbage", phone=SHARED_PHONE
    )
    for customer in (gid("Customer", charles.customer_id), gid("Customer", ada)):
        filed = await file_request(
            gql,
            admin_headers,
            "ACCESS",
            identifier={"kind": "PHONE", "value": SHARED_PHONE},
            verificationMethod="KNOWN_CONTACT_DETAILS",
            customerId=customer,
        )
        assert filed["__typename"] == "DataSubjectRequestFiled", filed
        request = filed["request"]
        assert request["customerId"] == customer
        await change(gql, admin_headers, request["id"], "APPROVED")
        done = await execute(gql, admin_headers, request["id"])
        assert done["request"]["status"] == "COMPLETED", done
    # A stranger to the shared phone is still refused.
    other = await make_customer(vault, email="nobody@example.com")
    refused = await file_request(
        gql,
        admin_headers,
        "ACCESS",
        identifier={"kind": "PHONE", "value": SHARED_PHONE},
        customerId=gid("Customer", other.customer_id),
    )
    assert (refused["__typename"], refused["code"]) == ("ValidationError", "IDENTITY_CONFLICT")


async def test_one_record_with_two_ids_of_one_system_attaches_one_and_says_so(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    body = await gql(
        INGEST,
        {"input": record(email="two.ids@example.com", external_ids=["crm:2", "crm:1", "shop:9"])},
        headers=admin_headers,
    )
    result = body["data"]["ingestCustomer"]
    assert result["outcome"] == "CREATED"
    assert [(i["field"], i["code"]) for i in result["issues"]] == [
        ("input.externalIds.0", "IDENTITY_LIMIT")
    ]
    held = await Identity.filter(
        customer_id=parse_id(result["customerId"], "customerId", "Customer"), kind="external_id"
    )
    assert sorted((i.namespace, i.blind_index != "") for i in held) == [
        ("crm", True),
        ("shop", True),
    ]


async def test_a_sixth_email_in_one_batch_is_not_attached(vault: Vault) -> None:
    records = [
        CustomerIngest(
            source=source(), profile={"email": f"e{n}@example.com"}, external_ids=["crm:6"]
        )
        for n in range(6)
    ]
    results = await ingest_batch(vault, records)
    assert len({r.customer_id for r in results if not isinstance(r, Exception)}) == 1
    assert await Identity.filter(kind="email").count() == 5
    last = results[-1]
    assert not isinstance(last, Exception)
    assert [(i.field, i.code) for i in last.issues] == [("input.profile.email", "IDENTITY_LIMIT")]

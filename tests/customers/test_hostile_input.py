"""Hostile and odd input: never an internal error, never a half-written batch."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from cdlm.auth.settings import AuthSettings
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.core.vocabulary import LawfulBasis, SourceKind
from cdlm.customers import importer
from cdlm.customers.ingest import CustomerIngest, ingest_batch
from cdlm.customers.models import Customer, Event
from cdlm.identity.models import Identity
from cdlm.quality.models import InvalidValue
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.customers.test_events import INGEST_EVENTS, event
from tests.customers.test_ingest import INGEST, record
from tests.factories import bearer, gid, make_api_key, make_customer, source
from tests.support.audit import read_records


@pytest.fixture
async def ingest_headers(auth: AuthSettings) -> dict[str, str]:
    return bearer(await make_api_key(auth, Role.INGEST))


async def test_codes_with_a_trailing_newline_are_refused_not_crashing(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str]
) -> None:
    body = await gql(
        INGEST,
        {"input": record(system="s" * 64 + "\n", email="nl@example.com")},
        headers=ingest_headers,
    )
    assert body["data"]["ingestCustomer"]["__typename"] == "ValidationError"
    customer = await make_customer(vault, email="ok@example.com")
    cid = gid("Customer", customer.customer_id)
    result = await gql(
        INGEST_EVENTS,
        {"events": [event(0, customerId=cid, type="t" * 64 + "\n"), event(1, customerId=cid)]},
        headers=ingest_headers,
    )
    items = result["data"]["ingestEvents"]["items"]
    assert [i["status"] for i in items] == ["REJECTED", "ACCEPTED"]
    assert await Event.all().count() == 1


@pytest.mark.parametrize("bad", ["\ud800", "a\x00b"])
async def test_unstorable_text_is_a_400(
    gql: GraphQLClient, ingest_headers: dict[str, str], bad: str
) -> None:
    payload = json.dumps(
        {"query": INGEST, "variables": {"input": record(email=f"x{bad}@example.com")}}
    )
    response = await gql.http.post(
        "/graphql", content=payload, headers={**ingest_headers, "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert await Customer.all().count() == 0


async def test_the_staff_source_kind_is_reserved_for_rectification(
    gql: GraphQLClient, ingest_headers: dict[str, str]
) -> None:
    body = await gql(
        INGEST, {"input": record(kind="STAFF", email="s@example.com")}, headers=ingest_headers
    )
    result = body["data"]["ingestCustomer"]
    assert result["__typename"] == "ValidationError"
    assert result["issues"][0] == {
        "field": "input.source.kind",
        "code": "POLICY_VIOLATION",
        "message": "The staff kind is reserved for rectification with updateCustomer.",
    }


async def test_an_email_of_another_customer_stays_out_of_the_profile(vault: Vault) -> None:
    alice = await make_customer(vault, external_ids=["crm:1"])
    await make_customer(vault, email="bob@example.com")
    result = await make_customer(vault, external_ids=["crm:1"], email="bob@example.com")
    assert result.customer_id == alice.customer_id
    row = await Customer.get(id=alice.customer_id)
    values = vault.open(await vault.customer_key(row.id), row.id, "profile", row.profile_sealed)
    assert "email" not in values
    refused = await InvalidValue.get(customer_id=alice.customer_id)
    assert (refused.field, refused.code) == ("email", "IDENTITY_CONFLICT")


async def test_a_value_refused_then_fixed_in_the_same_batch_is_resolved(vault: Vault) -> None:
    origin = source()
    results = await ingest_batch(
        vault,
        [
            CustomerIngest(origin, {"email": "same@example.com", "phone": "12"}),
            CustomerIngest(origin, {"email": "same@example.com", "phone": "+44 7911 123456"}),
        ],
    )
    assert results[0].customer_id == results[1].customer_id  # type: ignore[union-attr]
    assert await InvalidValue.filter(resolved_at__isnull=True).count() == 0
    assert await InvalidValue.all().count() == 1


async def test_lookup_by_identifier_is_audited_and_closed_to_analysts(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings
) -> None:
    created = await make_customer(vault, email="look@example.com")
    query = 'query { customerByIdentifier(kind: EMAIL, value: "look@example.com") { id } }'
    steward = bearer(await make_api_key(auth, Role.STEWARD))
    body = await gql(query, headers=steward)
    assert body["data"]["customerByIdentifier"] == {"id": gid("Customer", created.customer_id)}
    [entry] = await read_records("customer.read", created.customer_id)
    assert entry.fields_touched == ["identifier_lookup"]
    analyst = bearer(await make_api_key(auth, Role.ANALYST))
    denied = await gql(query, headers=analyst)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_rectified_email_replaces_the_wrong_identity(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings
) -> None:
    from tests.customers.test_update import UPDATE

    created = await make_customer(vault, email="wrong@example.com", given_name="Val")
    agent = bearer(await make_api_key(auth, Role.AGENT))
    blank = await gql(
        UPDATE,
        {"input": {"id": gid("Customer", created.customer_id), "changes": {"givenName": "  "}}},
        headers=agent,
    )
    assert blank["data"]["updateCustomer"]["issues"] == [
        {"field": "input.changes.givenName", "code": "REQUIRED"}
    ]
    fixed = await gql(
        UPDATE,
        {
            "input": {
                "id": gid("Customer", created.customer_id),
                "changes": {"email": "right@example.com"},
            }
        },
        headers=agent,
    )
    assert fixed["data"]["updateCustomer"]["customer"]["identities"] == [
        {"kind": "EMAIL", "value": "right@example.com"}
    ]
    stranger = await make_customer(vault, email="wrong@example.com")
    assert stranger.customer_id != created.customer_id
    assert await Identity.filter(customer_id=created.customer_id).count() == 1


async def test_event_idempotency_covers_malformed_items(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="idem@example.com")
    good = event(0, customerId=gid("Customer", customer.customer_id))
    first = await gql(
        INGEST_EVENTS,
        {"events": [good, event(1, customerId="bad")], "key": "k1"},
        headers=ingest_headers,
    )
    assert first["data"]["ingestEvents"]["accepted"] == 1
    again = await gql(
        INGEST_EVENTS,
        {"events": [good, event(1, customerId="bad")], "key": "k1"},
        headers=ingest_headers,
    )
    assert again["data"]["ingestEvents"] == {**first["data"]["ingestEvents"], "replayed": True}
    other = await gql(
        INGEST_EVENTS,
        {"events": [good, event(1, customerId="worse")], "key": "k1"},
        headers=ingest_headers,
    )
    assert other["data"]["ingestEvents"]["code"] == "IDEMPOTENCY_MISMATCH"
    assert await Event.all().count() == 1


async def test_concurrent_batches_resending_the_same_events(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="twice@example.com")
    cid = gid("Customer", customer.customer_id)
    batch = [event(n, customerId=cid, externalId=f"e{n}") for n in range(20)]
    answers = await asyncio.gather(
        *(gql(INGEST_EVENTS, {"events": batch}, headers=ingest_headers) for _ in range(3))
    )
    results = [a["data"]["ingestEvents"] for a in answers]
    assert sorted(r["accepted"] for r in results) == [0, 0, 20]
    assert sorted(r["duplicates"] for r in results) == [0, 20, 20]
    assert await Event.all().count() == 20


async def test_import_survives_poison_lines(tmp_path: Path, vault: Vault) -> None:
    csv_file = tmp_path / "extra.csv"
    csv_file.write_text(
        "email,given_name\nok1@example.com,A\nok2@example.com,B,EXTRA\nok3@example.com,C\n",
        encoding="utf-8",
    )
    options = importer.ImportOptions(
        "legacy", SourceKind.IMPORT, LawfulBasis.CONTRACT, "essential.service"
    )
    summary = await importer.run_import(SYSTEM, vault, importer.FileImport(csv_file, options))
    assert (summary.created, summary.rejected) == (2, 1)
    lines = tmp_path / "odd.jsonl"
    lines.write_text(
        "\n".join(
            json.dumps(row)
            for row in [
                {"email": "j1@example.com", "external_ids": 5},
                {"email": "j2@example.com", "lifecycle_stage": None},
                {"email": "j3@example.com", "given_name": {"nested": True}},
                {"email": "j4@example.com", "jane.doe@example.com": "surprise"},
            ]
        )
        + "\n"
        + '{"email": "j5\\ud800@example.com"}\n',
        encoding="utf-8",
    )
    summary = await importer.run_import(SYSTEM, vault, importer.FileImport(lines, options))
    assert (summary.created, summary.rejected) == (1, 4)
    assert "jane.doe" not in summary.rejects_path.read_text()

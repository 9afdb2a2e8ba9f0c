"""Acquisition through ingestCustomer: creation, matching, survivorship, refusals, idempotency."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from cdlm.audit.models import AuditEntry
from cdlm.auth.settings import AuthSettings
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.core.vocabulary import SourceKind
from cdlm.customers.ingest import CustomerIngest, ingest_batch, ingest_one
from cdlm.customers.models import Customer, SourceRecord
from cdlm.graphql.relay import split_global_id
from cdlm.identity.models import Identity
from cdlm.quality.models import InvalidValue
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key, make_customer, profile_input, source
from tests.support.audit import read_records

INGEST = """
mutation Ingest($input: IngestCustomerInput!, $key: String) {
  ingestCustomer(input: $input, idempotencyKey: $key) {
    __typename
    ... on CustomerIngested {
      customerId outcome matchedRule sourceRecordId replayed
      issues { field code message }
    }
    ... on UserError { message code field }
    ... on ValidationError { issues { field code message } }
  }
}
"""
PROFILE = """
query($id: ID!) {
  customer(id: $id) {
    lifecycleStage sourceSystems
    profile { givenName familyName email phone birthDate
              address { line1 city region postalCode country } }
    identities { kind namespace value }
    lineage { field sourceSystem sourceKind trust }
    quality { completeness validity score invalidValues { field code value } }
    sources { sourceSystem sourceKind lawfulBasis purpose outcome matchedRule }
  }
}
"""


def record(
    *,
    system: str = "crm",
    kind: str = "CRM",
    collected_at: str | None = None,
    external_ids: list[str] | None = None,
    stage: str | None = None,
    **profile: Any,
) -> dict[str, Any]:
    return {
        "source": {
            "system": system,
            "kind": kind,
            "collectedAt": collected_at or clock.now().isoformat(),
            "lawfulBasis": "CONTRACT",
            "purpose": "essential.service",
        },
        "profile": profile_input(**profile),
        "externalIds": external_ids or [],
        **({"lifecycleStage": stage} if stage else {}),
    }


def _uuid(global_id: str) -> uuid.UUID:
    found = split_global_id(global_id)
    assert found is not None
    assert found[0] == "Customer"
    return found[1]


@pytest.fixture
async def ingest_headers(auth: AuthSettings) -> dict[str, str]:
    return bearer(await make_api_key(auth, Role.INGEST))


@pytest.fixture
async def reader(auth: AuthSettings) -> dict[str, str]:
    return bearer(await make_api_key(auth, Role.STEWARD))


async def ingest(
    gql: GraphQLClient, headers: dict[str, str], data: dict[str, Any], key: str | None = None
) -> dict[str, Any]:
    body = await gql(INGEST, {"input": data, "key": key}, headers=headers)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["ingestCustomer"]
    return result


async def test_new_person_is_created_normalized_with_lineage_and_provenance(
    gql: GraphQLClient, ingest_headers: dict[str, str], reader: dict[str, str]
) -> None:
    created = await ingest(
        gql,
        ingest_headers,
        record(
            external_ids=["CRM:1001"],
            given_name="  Ada ",
            family_name="Lovelace",
            email="Ada@Example.COM",
            phone="020 7946 0958",
            birth_date="1815-12-10",
            line1="12 St James's Square",
            city="London",
            region="eng",
            postal_code="sw1y 4ju",
            country="United Kingdom",
        ),
    )
    assert created["outcome"] == "CREATED"
    assert created["matchedRule"] is None
    assert created["issues"] == [
        {
            "field": "input.profile.birthDate",
            "code": "IMPLAUSIBLE",
            "message": "More than 120 years ago.",
        }
    ]
    customer = (await gql(PROFILE, {"id": created["customerId"]}, headers=reader))["data"][
        "customer"
    ]
    assert customer["profile"] == {
        "givenName": "Ada",
        "familyName": "Lovelace",
        "email": "ada@example.com",
        "phone": "+442079460958",
        "birthDate": None,
        "address": {
            "line1": "12 St James's Square",
            "city": "London",
            "region": "GB-ENG",
            "postalCode": "SW1Y 4JU",
            "country": "GB",
        },
    }
    assert sorted((i["kind"], i["namespace"], i["value"]) for i in customer["identities"]) == [
        ("EMAIL", "", "ada@example.com"),
        ("EXTERNAL_ID", "crm", "1001"),
        ("PHONE", "", "+442079460958"),
    ]
    # Lineage names each field by its path below the customer, as the API shows it.
    assert {entry["field"] for entry in customer["lineage"]} == {
        "profile.givenName",
        "profile.familyName",
        "profile.email",
        "profile.phone",
        "profile.address.line1",
        "profile.address.city",
        "profile.address.region",
        "profile.address.postalCode",
        "profile.address.country",
    }
    assert {entry["sourceKind"] for entry in customer["lineage"]} == {"CRM"}
    assert customer["sources"] == [
        {
            "sourceSystem": "crm",
            "sourceKind": "CRM",
            "lawfulBasis": "CONTRACT",
            "purpose": "essential.service",
            "outcome": "CREATED",
            "matchedRule": None,
        }
    ]
    assert customer["quality"]["invalidValues"] == [
        {"field": "profile.birthDate", "code": "IMPLAUSIBLE", "value": "1815-12-10"}
    ]
    assert customer["quality"]["validity"] < 1
    audit = await AuditEntry.get(action="customer.ingest.created")
    assert gid("Customer", str(audit.target_id)) == created["customerId"]
    source_record = await SourceRecord.get(customer_id=audit.target_id)
    assert created["sourceRecordId"] == gid("SourceRecord", source_record.id)


async def test_second_source_matches_by_email_and_survivorship_keeps_the_trusted_value(
    gql: GraphQLClient, ingest_headers: dict[str, str], reader: dict[str, str]
) -> None:
    earlier = (clock.now() - timedelta(days=2)).isoformat()
    first = await ingest(
        gql,
        ingest_headers,
        record(
            collected_at=earlier, email="grace@example.com", given_name="Grace", city="Arlington"
        ),
    )
    second = await ingest(
        gql,
        ingest_headers,
        record(
            system="newsletter",
            kind="WEB_FORM",
            email="GRACE@example.com",
            given_name="Gracie",
            family_name="Hopper",
            city="New York",
        ),
    )
    assert second["outcome"] == "MATCHED"
    assert second["matchedRule"] == "email"
    assert second["customerId"] == first["customerId"]
    customer = (await gql(PROFILE, {"id": first["customerId"]}, headers=reader))["data"]["customer"]
    # CRM (trust 80) keeps its values over the web form (50); the web form fills the gap.
    assert customer["profile"]["givenName"] == "Grace"
    assert customer["profile"]["address"]["city"] == "Arlington"
    assert customer["profile"]["familyName"] == "Hopper"
    lineage = {e["field"]: e for e in customer["lineage"]}
    assert lineage["profile.givenName"]["sourceSystem"] == "crm"
    assert lineage["profile.familyName"]["sourceSystem"] == "newsletter"
    assert lineage["profile.familyName"]["sourceKind"] == "WEB_FORM"
    assert customer["sourceSystems"] == ["crm", "newsletter"]
    # Equal trust: the more recent collection wins.
    third = await ingest(gql, ingest_headers, record(email="grace@example.com", city="Washington"))
    assert third["outcome"] == "MATCHED"
    customer = (await gql(PROFILE, {"id": first["customerId"]}, headers=reader))["data"]["customer"]
    assert customer["profile"]["address"]["city"] == "Washington"
    assert await Customer.all().count() == 1


async def test_an_older_record_of_equal_trust_does_not_overwrite(vault: Vault) -> None:
    now = clock.now()
    first = await make_customer(vault, email="x@example.com", city="New")
    result = await make_customer(
        vault,
        email="x@example.com",
        city="Old",
        origin=source(collected_at=now - timedelta(days=30)),
    )
    assert result.customer_id == first.customer_id
    customer = await Customer.get(id=first.customer_id)
    key = await vault.customer_key(customer.id)
    assert vault.open(key, customer.id, "profile", customer.profile_sealed)["city"] == "New"


async def test_external_id_outranks_email_and_a_stolen_email_is_not_attached(
    vault: Vault,
) -> None:
    alice = await make_customer(vault, external_ids=["crm:1"], given_name="Alice")
    bob = await make_customer(vault, email="shared@example.com", given_name="Bob")
    result = await make_customer(vault, external_ids=["crm:1"], email="shared@example.com")
    assert result.customer_id == alice.customer_id
    assert result.matched_rule == "external_id:crm"
    assert [(i.field, i.code.value) for i in result.issues] == [
        ("input.profile.email", "IDENTITY_CONFLICT")
    ]
    assert await Identity.filter(customer_id=bob.customer_id).count() == 1


async def test_a_second_id_from_the_same_system_means_a_different_person(vault: Vault) -> None:
    first = await make_customer(vault, external_ids=["crm:1"], email="family@example.com")
    other = await make_customer(vault, external_ids=["crm:2"], email="family@example.com")
    assert other.customer_id != first.customer_id
    assert other.matched_rule is None
    assert [(i.field, i.code.value) for i in other.issues] == [
        ("input.profile.email", "IDENTITY_CONFLICT")
    ]
    assert await Customer.all().count() == 2


async def test_identifiers_beyond_a_kinds_limit_are_not_attached(vault: Vault) -> None:
    first = await make_customer(vault, external_ids=["crm:7"], email="e0@example.com")
    for number in range(1, 5):
        await make_customer(vault, external_ids=["crm:7"], email=f"e{number}@example.com")
    sixth = await make_customer(vault, external_ids=["crm:7"], email="e5@example.com")
    assert sixth.customer_id == first.customer_id
    assert [(i.field, i.code.value) for i in sixth.issues] == [
        ("input.profile.email", "IDENTITY_LIMIT")
    ]
    assert await Identity.filter(customer_id=first.customer_id, kind="email").count() == 5
    # The unattached email still matches nobody: a later record with only it is a new person.
    stranger = await make_customer(vault, email="e5@example.com")
    assert stranger.customer_id != first.customer_id


@pytest.mark.parametrize(
    ("profile", "external_ids"),
    [
        ({"email": "test@test.com"}, []),
        ({"email": "noreply@shop.example"}, []),
        ({"phone": "+44 0000 000000"}, []),
        ({}, ["crm:null"]),
        ({}, ["crm:000000"]),
        ({"email": "anonymous"}, []),
    ],
)
async def test_placeholder_identifiers_never_identify_anyone(
    gql: GraphQLClient,
    ingest_headers: dict[str, str],
    profile: dict[str, str],
    external_ids: list[str],
) -> None:
    result = await ingest(
        gql, ingest_headers, record(external_ids=external_ids, given_name="Someone", **profile)
    )
    assert result["__typename"] == "ValidationError"
    codes = {issue["code"] for issue in result["issues"]}
    assert codes & {"BLOCKED_IDENTIFIER", "INVALID_FORMAT"}
    assert "REQUIRED" in codes
    assert await Customer.all().count() == 0
    assert await SourceRecord.all().count() == 0


async def test_placeholder_next_to_a_real_identifier_is_reported_and_ignored(
    vault: Vault,
) -> None:
    one = await make_customer(vault, external_ids=["crm:1"], email="test@test.com")
    two = await make_customer(vault, external_ids=["crm:2"], email="test@test.com")
    assert one.customer_id != two.customer_id
    assert [i.code.value for i in one.issues] == ["BLOCKED_IDENTIFIER"]
    assert await Identity.filter(kind="email").count() == 0


async def test_invalid_values_are_kept_encrypted_with_reasons_and_resolved_later(
    gql: GraphQLClient, ingest_headers: dict[str, str], reader: dict[str, str]
) -> None:
    first = await ingest(
        gql,
        ingest_headers,
        record(email="val@example.com", phone="12345", country="Atlantis", given_name="Val"),
    )
    assert sorted((i["field"], i["code"]) for i in first["issues"]) == [
        ("input.profile.address.country", "UNKNOWN_CODE"),
        ("input.profile.phone", "INVALID_FORMAT"),
    ]
    stored = await InvalidValue.filter(customer_id=_uuid(first["customerId"])).order_by("field")
    assert [(r.field, r.code) for r in stored] == [
        ("country", "UNKNOWN_CODE"),
        ("phone", "INVALID_FORMAT"),
    ]
    assert all(b"Atlantis" not in bytes(r.value_sealed) for r in stored)
    await ingest(gql, ingest_headers, record(email="val@example.com", phone="+44 7911 123456"))
    customer = (await gql(PROFILE, {"id": first["customerId"]}, headers=reader))["data"]["customer"]
    assert customer["quality"]["invalidValues"] == [
        {"field": "profile.address.country", "code": "UNKNOWN_CODE", "value": "Atlantis"}
    ]
    assert customer["profile"]["phone"] == "+447911123456"


async def test_bad_provenance_refuses_the_whole_record(
    gql: GraphQLClient, ingest_headers: dict[str, str]
) -> None:
    data = record(system="CRM System!", email="p@example.com")
    data["source"]["purpose"] = "Marketing Stuff"
    data["source"]["collectedAt"] = (clock.now() + timedelta(days=1)).isoformat()
    result = await ingest(gql, ingest_headers, data)
    assert result["__typename"] == "ValidationError"
    assert [i["field"] for i in result["issues"]] == [
        "input.source.system",
        "input.source.purpose",
        "input.source.collectedAt",
    ]
    assert await Customer.all().count() == 0


async def test_idempotent_replay_returns_the_first_result_and_writes_nothing(
    gql: GraphQLClient, ingest_headers: dict[str, str]
) -> None:
    data = record(email="idem@example.com", given_name="Idem")
    first = await ingest(gql, ingest_headers, data, key="order-42")
    again = await ingest(gql, ingest_headers, data, key="order-42")
    assert again == {**first, "replayed": True}
    assert await SourceRecord.all().count() == 1
    assert await AuditEntry.filter(action__startswith="customer.ingest").count() == 1
    changed = record(email="idem@example.com", given_name="Other")
    conflict = await ingest(gql, ingest_headers, changed, key="order-42")
    assert conflict["__typename"] == "ConflictError"
    assert conflict["code"] == "IDEMPOTENCY_MISMATCH"


async def test_concurrent_ingests_of_one_person_make_one_profile(vault: Vault) -> None:
    results = await asyncio.gather(
        *(make_customer(vault, email="race@example.com", city=f"City {n}") for n in range(8))
    )
    assert len({r.customer_id for r in results}) == 1
    assert sorted(r.outcome.value for r in results) == ["created"] + ["matched"] * 7
    assert await Identity.filter(kind="email").count() == 1


async def test_lifecycle_stage_is_set_and_updated(vault: Vault) -> None:
    from cdlm.core.vocabulary import LifecycleStage

    first = await make_customer(vault, email="l@example.com")
    assert (await Customer.get(id=first.customer_id)).lifecycle_stage == LifecycleStage.LEAD
    await make_customer(vault, email="l@example.com", stage=LifecycleStage.ACTIVE)
    assert (await Customer.get(id=first.customer_id)).lifecycle_stage == LifecycleStage.ACTIVE


async def test_configured_trust_changes_which_source_survives(vault: Vault) -> None:
    from cdlm.config import ConfigError
    from cdlm.customers.ingest import CustomerIngest, ingest_customer
    from cdlm.customers.survivorship import trust_table

    trust = trust_table({"web_form": 95})
    assert trust[SourceKind.STAFF] > trust[SourceKind.WEB_FORM] > trust[SourceKind.CRM]
    first = await make_customer(vault, email="t@example.com", city="From CRM")
    record = CustomerIngest(
        source=source("forms", SourceKind.WEB_FORM),
        profile={"email": "t@example.com", "city": "From form"},
    )
    await ingest_customer(vault, record, trust)
    customer = await Customer.get(id=first.customer_id)
    key = await vault.customer_key(customer.id)
    assert vault.open(key, customer.id, "profile", customer.profile_sealed)["city"] == "From form"
    with pytest.raises(ConfigError, match="unknown source kind 'fax'"):
        trust_table({"fax": 1})


async def test_each_identifier_is_blind_indexed_once_per_ingest(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_customer(vault, email="once@example.com", external_ids=["crm:1"])  # to match
    computed: Counter[tuple[str, str]] = Counter()
    blind_index = Vault.blind_index

    def counting(self: Vault, kind: str, normalized: str) -> str:
        computed[(kind, normalized)] += 1
        return blind_index(self, kind, normalized)

    monkeypatch.setattr(Vault, "blind_index", counting)
    record = CustomerIngest(
        source=source(),
        profile={"email": "once@example.com", "phone": "+44 7911 123456"},
        external_ids=["crm:1", "shop:7"],
    )
    done = await ingest_one(SYSTEM, vault, record, "key-1")
    assert done.result.matched_rule is not None  # it found the customer through its indexes
    identifiers = {key: n for key, n in computed.items() if key[0] != "idempotency-key"}
    assert len(identifiers) == 4
    assert [key for key, n in identifiers.items() if n > 1] == []
    # A batch indexes an identifier once, however many of its records carry it.
    computed.clear()
    same = CustomerIngest(source=source(), profile={"email": "twice@example.com"})
    await ingest_batch(vault, [same, same, same])
    assert list(computed.values()) == [1]


async def test_a_refused_external_id_is_named_by_its_position(
    gql: GraphQLClient, ingest_headers: dict[str, str]
) -> None:
    # Regression: the path was input.externalIds[1], which names no argument of the API.
    result = await ingest(
        gql,
        ingest_headers,
        record(email="ids@example.com", external_ids=["crm:5", "no-system-here"]),
    )
    assert result["outcome"] == "CREATED"
    assert [(i["field"], i["code"]) for i in result["issues"]] == [
        ("input.externalIds.1", "INVALID_FORMAT")
    ]


INGEST_WITH_CUSTOMER = """
mutation($input: IngestCustomerInput!) {
  ingestCustomer(input: $input) {
    ... on CustomerIngested { customerId customer { id profile { email } } }
  }
}
"""


async def test_the_ingested_customer_is_shown_to_readers_only(
    gql: GraphQLClient, auth: AuthSettings, ingest_headers: dict[str, str]
) -> None:
    steward = bearer(await make_api_key(auth, Role.STEWARD))
    body = await gql(INGEST_WITH_CUSTOMER, {"input": record(email="shown@example.com")}, steward)
    payload = body["data"]["ingestCustomer"]
    assert payload["customer"] == {
        "id": payload["customerId"],
        "profile": {"email": "shown@example.com"},
    }
    [read] = await read_records("customer.read", _uuid(payload["customerId"]))
    assert read.fields_touched == ["email"]
    # The ingest role stores the record, and is told the id, but cannot read the customer.
    body = await gql(
        INGEST_WITH_CUSTOMER, {"input": record(email="hidden@example.com")}, ingest_headers
    )
    payload = body["data"]["ingestCustomer"]
    assert payload["customer"] is None
    assert await Customer.exists(id=_uuid(payload["customerId"]))
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["path"] == ["ingestCustomer", "customer"]
    assert "hidden@example.com" not in str(body)
    assert await Customer.all().count() == 2


async def test_a_malformed_idempotency_key_refuses_the_record(
    gql: GraphQLClient, ingest_headers: dict[str, str]
) -> None:
    result = await ingest(gql, ingest_headers, record(email="key@example.com"), key=" ")
    assert (result["__typename"], result["field"]) == ("ValidationError", "idempotencyKey")
    assert await Customer.all().count() == 0


async def test_a_collection_time_out_of_range_in_utc_is_refused(
    gql: GraphQLClient, ingest_headers: dict[str, str]
) -> None:
    # Regression: a moment before year 1 once in UTC reached the database driver (INTERNAL).
    result = await ingest(
        gql,
        ingest_headers,
        record(email="early@example.com", collected_at="0001-01-01T00:00:00+14:00"),
    )
    assert result["__typename"] == "ValidationError"
    assert [(i["field"], i["code"]) for i in result["issues"]] == [
        ("input.source.collectedAt", "IMPLAUSIBLE")
    ]
    assert await Customer.all().count() == 0

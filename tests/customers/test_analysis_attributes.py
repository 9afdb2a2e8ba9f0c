"""``Customer.analytics``: coarse attributes and scores in clear, for the roles that analyse,
audited when read, and gone with the customer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from cdlm.auth.settings import AuthSettings
from cdlm.core.roles import Role
from cdlm.customers import attributes, rights
from cdlm.customers.models import CustomerAttributes
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key, make_customer
from tests.support.audit import read_records

ANALYTICS = """
query($id: ID!) {
  customer(id: $id) {
    analytics {
      rfm { r f m score }
      expectedPurchases90d expectedPurchases365d pAlive expectedValue365d churnRisk
      attributes { country region ageBand acquisitionSource phoneCountry phoneLineType
                   emailDomainKind sentimentAverage }
      derivation { attribute source }
      derivedAt scoredAt
    }
  }
}
"""
SCORED_AT = datetime(2026, 11, 30, tzinfo=UTC)


async def _scored(customer_id: uuid.UUID) -> None:
    await CustomerAttributes.filter(customer_id=customer_id).update(
        country="NL",
        age_band="25-34",
        acquisition_source="crm",
        email_domain_kind="free_mail",
        rfm_recency=5,
        rfm_frequency=4,
        rfm_monetary=3,
        expected_purchases_90d=0.8,
        expected_purchases_365d=2.5,
        p_alive=0.9,
        expected_value_365d=Decimal("120.50"),
        churn_risk=0.1,
        scored_at=SCORED_AT,
    )


async def test_a_customer_not_yet_scored_has_derived_attributes_and_no_scores(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    made = await make_customer(vault, email="fresh@gmail.com")
    headers = bearer(await make_api_key(auth, Role.ANALYST))
    body = await gql(ANALYTICS, {"id": gid("Customer", made.customer_id)}, headers)
    analytics = body["data"]["customer"]["analytics"]
    assert analytics["rfm"] is None
    assert analytics["pAlive"] is None
    assert analytics["scoredAt"] is None
    assert analytics["derivedAt"] is not None
    assert analytics["attributes"]["emailDomainKind"] == "free_mail"
    assert analytics["attributes"]["acquisitionSource"] == "crm"
    assert analytics["attributes"]["country"] is None
    assert analytics["derivation"] == [
        {"attribute": "attributes.acquisitionSource", "source": "sources"},
        {"attribute": "attributes.emailDomainKind", "source": "enricher:email_domain@1"},
    ]


async def test_analysts_read_scores_and_attributes_and_the_read_is_audited(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    made = await make_customer(vault, email="scored@example.com", given_name="Sam")
    await _scored(made.customer_id)
    headers = bearer(await make_api_key(auth, Role.ANALYST))
    body = await gql(ANALYTICS, {"id": gid("Customer", made.customer_id)}, headers)
    analytics = body["data"]["customer"]["analytics"]
    assert analytics["rfm"] == {"r": 5, "f": 4, "m": 3, "score": 543}
    assert analytics["pAlive"] == 0.9
    assert analytics["expectedValue365d"] == "120.50"
    assert analytics["attributes"]["country"] == "NL"
    assert analytics["attributes"]["ageBand"] == "25-34"
    assert analytics["scoredAt"] == SCORED_AT.isoformat()
    assert "Sam" not in str(body)
    records = await read_records("customer.read", made.customer_id)
    assert [r.fields_touched for r in records] == [["analysis_attributes"]]


async def test_agents_do_not_see_analysis(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    made = await make_customer(vault, email="agent.view@example.com")
    await _scored(made.customer_id)
    headers = bearer(await make_api_key(auth, Role.AGENT))
    body = await gql(ANALYTICS, {"id": gid("Customer", made.customer_id)}, headers)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def test_erasure_deletes_the_attributes(vault: Vault) -> None:
    made = await make_customer(vault, email="gone@example.com")
    await _scored(made.customer_id)
    await vault.shred(made.customer_id)
    await rights.erase(made.customer_id, rights.Keep())
    assert not await CustomerAttributes.exists(customer_id=made.customer_id)


async def test_a_kept_record_loses_its_attributes_too(vault: Vault) -> None:
    made = await make_customer(vault, email="held@example.com")
    await _scored(made.customer_id)
    await rights.erase_profile(made.customer_id, restrict=True)
    assert not await CustomerAttributes.exists(customer_id=made.customer_id)


async def test_forget_is_a_no_op_without_ids() -> None:
    assert await attributes.forget([]) == 0


async def test_ingest_derives_attributes_with_their_provenance(vault: Vault) -> None:
    made = await make_customer(
        vault,
        email="info@mailinator.com",
        phone="+31612345678",
        birth_date="1990-05-17",
        country="NL",
    )
    row = await CustomerAttributes.get(customer_id=made.customer_id)
    assert (row.country, row.phone_country, row.phone_line_type) == ("NL", "NL", "mobile")
    assert row.email_domain_kind == "disposable"
    assert row.age_band is not None
    assert row.acquisition_source == "crm"
    assert row.derivation["country"] == "profile.country"
    assert row.derivation["phone_country"].startswith("enricher:phone@")
    assert row.derivation["age_band"].startswith("enricher:age_band@")
    assert "mailinator" not in str(row.derivation)
    assert "612345678" not in str(row.derivation)


def test_a_source_value_outranks_an_enricher() -> None:
    derived = attributes.derive(
        {"country": "US", "region": "US-NY", "postal_code": "94043"},
        ["crm"],
        datetime(2026, 12, 1, tzinfo=UTC).date(),
    )
    assert derived.values["region"] == "US-NY"
    assert derived.derivation["region"] == "profile.region"


def test_disabled_enrichers_derive_nothing() -> None:
    derived = attributes.derive(
        {"email": "a@gmail.com", "phone": "+31612345678"},
        [],
        datetime(2026, 12, 1, tzinfo=UTC).date(),
        enabled=frozenset(),
    )
    assert derived.derivation == {}
    assert set(derived.values.values()) == {None}


UPDATE = """
mutation($input: UpdateCustomerInput!) {
  updateCustomer(input: $input) { __typename }
}
"""


async def test_a_rectification_derives_again_and_keeps_the_acquisition_source(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    made = await make_customer(vault, email="sales@example.org")
    before = await CustomerAttributes.get(customer_id=made.customer_id)
    assert before.email_domain_kind == "role_account"
    headers = bearer(await make_api_key(auth, Role.STEWARD))
    body = await gql(
        UPDATE,
        {"input": {"id": gid("Customer", made.customer_id), "changes": {"email": "x@gmail.com"}}},
        headers,
    )
    assert body["data"]["updateCustomer"]["__typename"] == "CustomerUpdated"
    after = await CustomerAttributes.get(customer_id=made.customer_id)
    assert after.email_domain_kind == "free_mail"
    assert after.acquisition_source == "crm"
    assert after.derived_at > before.derived_at


async def test_every_line_type_fits_its_column(vault: Vault) -> None:
    # A US number cannot be told apart as mobile or fixed: the longest line type there is.
    made = await make_customer(vault, email="dc@example.com", phone="+12025550143")
    row = await CustomerAttributes.get(customer_id=made.customer_id)
    assert row.phone_line_type == "fixed_line_or_mobile"

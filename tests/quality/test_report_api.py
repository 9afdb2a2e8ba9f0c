"""The data quality report through the API: fields named by their API paths, codes as enums."""

from __future__ import annotations

from cdlm.auth.settings import AuthSettings
from cdlm.core.roles import Role
from cdlm.quality.fields import PROFILE
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, make_api_key, make_customer

REPORT = """
{
  dataQualityReport {
    customers averageScore
    scoreBuckets { fromScore toScore customers }
    fieldPresence { field customers share }
    invalidValues { field code open }
    bySource { sourceSystem customers averageScore }
  }
}
"""


async def test_the_report_names_fields_by_their_api_paths(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings
) -> None:
    await make_customer(vault, email="q1@example.com", given_name="Q", phone="bad")
    await make_customer(vault, email="q2@example.com", country="Narnia", postal_code="YO1 7HH")
    analyst = bearer(await make_api_key(auth, Role.ANALYST))
    body = await gql(REPORT, headers=analyst)
    report = body["data"]["dataQualityReport"]
    assert report["customers"] == 2
    presence = {f["field"]: f for f in report["fieldPresence"]}
    assert set(presence) == {f"profile.{field.api_path}" for field in PROFILE}
    assert presence["profile.email"] == {"field": "profile.email", "customers": 2, "share": 1.0}
    assert presence["profile.givenName"]["customers"] == 1
    assert presence["profile.address.postalCode"]["customers"] == 1
    assert sorted((i["field"], i["code"], i["open"]) for i in report["invalidValues"]) == [
        ("profile.address.country", "UNKNOWN_CODE", 1),
        ("profile.phone", "INVALID_FORMAT", 1),
    ]
    assert [b["fromScore"] for b in report["scoreBuckets"]] == [0.0, 0.2, 0.4, 0.6, 0.8]
    assert report["bySource"][0]["sourceSystem"] == "crm"
    assert "q1@example.com" not in str(body)
    agent = bearer(await make_api_key(auth, Role.AGENT))
    refused = await gql(REPORT, headers=agent)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"

"""The data map and the records of processing, generated from the live configuration."""

from __future__ import annotations

import json
from dataclasses import replace

from cdlm.auth.settings import AuthSettings
from cdlm.config import DatabaseTarget, Settings, load_settings
from cdlm.consent.models import Mechanism
from cdlm.consent.service import _taxonomy
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.governance.ropa import records_of_processing, to_markdown
from cdlm.quality.fields import PROFILE
from cdlm.retention import policies
from cdlm.retention.models import Action, Trigger
from tests.conftest import GraphQLClient
from tests.consent.test_consent import make_purpose
from tests.factories import bearer, make_api_key
from tests.support.lambda_invoke import installation_env
from tests.test_cli import run_cdlm

DATA_MAP = """
{ dataMap { field table column dataCategory dataSubject encrypted clearRoles purposes retention } }
"""


async def _setup() -> None:
    await make_purpose("newsletter", Mechanism.OPT_IN)  # user.contact.email
    await policies.create_policy(
        SYSTEM,
        category="customers.inactive",
        period_days=1095,
        trigger=Trigger.SINCE_LAST_ACTIVITY,
        action=Action.DELETE,
    )
    await policies.create_policy(
        SYSTEM,
        category="events.purchase",
        period_days=3650,
        trigger=Trigger.SINCE_COLLECTION,
        action=Action.ARCHIVE,
    )


async def test_the_data_map_covers_every_personal_field_with_live_purposes_and_retention(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    await _setup()
    answer = await gql(DATA_MAP, None, admin_headers)
    entries = {e["field"]: e for e in answer["data"]["dataMap"]}
    profile = {f.removeprefix("customer.profile.") for f in entries if "profile." in f}
    assert profile == {field.api_path for field in PROFILE}
    _, known = _taxonomy()
    assert {e["dataCategory"] for e in entries.values()} <= known
    email = entries["customer.profile.email"]
    assert email["dataCategory"] == "user.contact.email"
    assert email["encrypted"] is True
    assert email["purposes"] == ["newsletter"]
    assert email["retention"] == ["customers.inactive: delete 1095 days since last activity"]
    assert entries["customer.profile.givenName"]["purposes"] == []
    assert entries["customer.sourceRecords.received"]["purposes"] == ["newsletter"]
    birth = entries["customer.profile.birthDate"]
    assert "AGENT" not in birth["clearRoles"]
    assert "PRIVACY_OFFICER" in birth["clearRoles"]
    events = entries["customer.events.properties"]
    assert "events.purchase: archive 3650 days since collection" in events["retention"]
    staff = entries["staffUser.email"]
    assert (staff["dataSubject"], staff["encrypted"], staff["clearRoles"]) == (
        "EMPLOYEE",
        False,
        [Role.ADMIN.name],
    )
    assert entries["dataSubjectRequest.subject"]["retention"] == [
        "no policy: kept until erased or disposed of by hand"
    ]
    assert entries["customer.profile.address.postalCode"]["dataCategory"] == (
        "user.contact.address.postal_code"
    )
    identities = [e for e in answer["data"]["dataMap"] if e["field"] == "customer.identities.value"]
    assert {e["dataCategory"] for e in identities} == {
        "user.contact.email",
        "user.contact.phone_number",
        "user.unique_id",
    }
    assert "auditEntry.actorId" in entries
    assert all("_" not in e["field"] for e in answer["data"]["dataMap"])


RECORDS = """
{
  recordsOfProcessing {
    generatedAt
    controller { name contact privacyPolicy }
    processingActivities {
      purpose name lawfulBasis dataUse dataCategories dataSubjects recipients
    }
    categoriesOfDataSubjects categoriesOfPersonalData processors transfersToThirdCountries
    erasureTimeLimits { category rule what }
    securityMeasures
  }
}
"""


async def test_the_api_returns_the_records_of_processing_as_typed_objects(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    await _setup()
    officer = bearer(await make_api_key(auth, Role.PRIVACY_OFFICER))
    records = (await gql(RECORDS, headers=officer))["data"]["recordsOfProcessing"]
    assert records["controller"] == {
        "name": "Data controller",
        "contact": None,
        "privacyPolicy": None,
    }
    activities = {a["purpose"]: a for a in records["processingActivities"]}
    assert activities["newsletter"]["lawfulBasis"] == "CONSENT"
    assert activities["newsletter"]["dataSubjects"] == ["CUSTOMER"]
    assert activities["cdlm.data_subject_requests"]["lawfulBasis"] == "LEGAL_OBLIGATION"
    assert activities["cdlm.data_subject_requests"]["dataSubjects"] == ["REQUESTER", "CUSTOMER"]
    assert set(records["categoriesOfDataSubjects"]) == {"CUSTOMER", "REQUESTER", "EMPLOYEE"}
    assert [limit["category"] for limit in records["erasureTimeLimits"]] == [
        "customers.inactive",
        "events.purchase",
    ]
    assert records["securityMeasures"]
    steward = bearer(await make_api_key(auth, Role.STEWARD))
    refused = await gql(RECORDS, headers=steward)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_records_of_processing_follow_the_configuration(settings: Settings) -> None:
    await _setup()
    kms = replace(settings, kms_key_id="alias/cdlm", controller_email="dpo@example.com")
    records = await records_of_processing(kms)
    assert records["controller"]["contact"] == "dpo@example.com"
    activities = {a["purpose"]: a for a in records["processing_activities"]}
    assert set(activities) == {
        "cdlm.customer_records",
        "cdlm.data_subject_requests",
        "cdlm.security_and_accountability",
        "newsletter",
    }
    activity = activities["newsletter"]
    assert activity["lawful_basis"] == "consent"
    assert {"customer", "requester", "employee"} == set(records["categories_of_data_subjects"])
    assert "user.contact.email" in records["categories_of_personal_data"]
    assert [limit["category"] for limit in records["erasure_time_limits"]] == [
        "customers.inactive",
        "events.purchase",
    ]
    assert any("alias/cdlm" in measure for measure in records["security_measures"])
    assert records["processors"]
    markdown = to_markdown(records)
    for heading in ("## Controller", "## Processing activities", "## Erasure time limits"):
        assert heading in markdown
    assert "| Newsletter (`newsletter`) | consent |" in markdown


async def test_cdlm_ropa_prints_json_and_markdown(
    database: DatabaseTarget, settings: Settings
) -> None:
    await _setup()
    env = installation_env(
        database, settings.master_key_file, CDLM_CONTROLLER_NAME="Example Shop Ltd"
    )
    as_json = run_cdlm("ropa", "--format", "json", **env)
    assert as_json.returncode == 0, as_json.stderr[-2000:]
    records = json.loads(as_json.stdout)
    assert records["controller"]["name"] == "Example Shop Ltd"
    as_markdown = run_cdlm("ropa", **env)
    assert as_markdown.stdout.startswith("# Records of processing activities (GDPR Art. 30)")
    wrong = run_cdlm("ropa", "--format", "pdf", **env)
    assert wrong.returncode == 2


def test_every_sealed_column_and_clear_personal_column_is_on_the_data_map() -> None:
    from tortoise import Tortoise
    from tortoise.fields import BinaryField

    from cdlm.governance.datamap import places

    mapped = {(p.table, p.column) for p in places()}
    assert Tortoise.apps is not None
    sealed = {
        (model._meta.db_table, name)
        for model in Tortoise.apps["cdlm"].values()
        for name, field in model._meta.fields_map.items()
        if isinstance(field, BinaryField) and name.endswith("_sealed")
    }
    assert sealed
    assert sealed - mapped == set()
    in_clear = {
        ("staff_users", "email"),
        ("staff_users", "display_name"),
        ("events", "external_id"),
        ("identities", "blind_index"),
        ("suppressed_identifiers", "blind_index"),
        ("dsr_requests", "subject_index"),
        ("legal_holds", "reason"),
    }
    assert in_clear - mapped == set()
    attributes = Tortoise.apps["cdlm"]["CustomerAttributes"]._meta.db_fields
    bookkeeping = {"id", "customer_id", "derivation", "derived_at", "scored_at"}
    derived = {("customer_attributes", c) for c in set(attributes) - bookkeeping}
    assert derived
    assert derived - mapped == set()


async def test_records_of_processing_name_each_purposes_recipients() -> None:
    await make_purpose(
        "partners", Mechanism.OPT_OUT, data_use="third_party_sharing", sale_or_sharing=True
    )
    await make_purpose("newsletter")
    records = await records_of_processing(load_settings({}))
    recipients = {
        a["purpose"]: a["recipients"] for a in records["processing_activities"] if "purpose" in a
    }
    assert recipients["partners"] == ["Partner networks"]
    assert recipients["newsletter"] == ["none outside the controller and its processors"]

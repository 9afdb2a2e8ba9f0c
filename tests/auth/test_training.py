"""Staff privacy training: recording it, the current one, and CDLM_REQUIRE_TRAINING keeping
staff without current training from personal data while aggregates still answer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from cdlm.app import create_app
from cdlm.audit.models import AuditEntry
from cdlm.auth.models import StaffSession, StaffTraining, StaffUser
from cdlm.auth.settings import AuthSettings, auth_settings
from cdlm.auth.tokens import issue_access_token
from cdlm.config import ConfigError, Settings, load_settings
from cdlm.core import clock
from cdlm.core.roles import Role
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key, make_customer, make_staff

RECORD = """
mutation($input: RecordStaffTrainingInput!) {
  recordStaffTraining(input: $input) {
    __typename
    ... on StaffTrainingRecorded {
      training { id course completedAt validUntil current staffUser { id } }
      staffUser { id currentTraining { course } trainings { course current } }
    }
    ... on UserError { message code field }
    ... on ValidationError { issues { field code message } }
  }
}"""
CUSTOMER = "query($id: ID!) { customer(id: $id) { id profile { email } } }"
AGGREGATE = "{ dataQualityReport { customers averageScore } }"


async def signed_in(auth: AuthSettings, user: StaffUser) -> dict[str, str]:
    """Headers of a fresh session of ``user`` (as ``login`` makes one, without the password
    check: the rules here start after sign-in)."""
    now = clock.now()
    session = await StaffSession.create(
        id=uuid.uuid4(), user=user, created_at=now, expires_at=now + auth.access_token_ttl
    )
    return bearer(issue_access_token(auth.token_secret, user.id, session.id, session.expires_at))


def _input(user: StaffUser, **changes: Any) -> dict[str, Any]:
    now = clock.now()
    given: dict[str, Any] = {
        "staffUserId": gid("StaffUser", user.id),
        "course": "Privacy basics 2026",
        "completedAt": (now - timedelta(days=10)).isoformat(),
        "validUntil": (now + timedelta(days=355)).isoformat(),
    }
    return {**given, **changes}


async def _record(user: StaffUser, completed: datetime, until: datetime) -> StaffTraining:
    return await StaffTraining.create(
        id=uuid.uuid4(),
        user=user,
        course="Privacy basics",
        completed_at=completed,
        valid_until=until,
        recorded_at=clock.now(),
    )


# ------------------------------------------------------------------- recordStaffTraining


async def test_recording_needs_a_signed_in_caller(gql: GraphQLClient, auth: AuthSettings) -> None:
    user = (await make_staff(auth, Role.ANALYST)).user
    body = await gql(RECORD, {"input": _input(user)})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await StaffTraining.all().count() == 0


@pytest.mark.parametrize("role", [Role.STEWARD, Role.ANALYST, Role.AGENT])
async def test_only_admins_and_privacy_officers_record_trainings(
    gql: GraphQLClient, auth: AuthSettings, role: Role
) -> None:
    user = (await make_staff(auth, Role.ANALYST)).user
    body = await gql(RECORD, {"input": _input(user)}, bearer(await make_api_key(auth, role)))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await StaffTraining.all().count() == 0


async def test_recording_for_nobody_is_not_found(gql: GraphQLClient, auth: AuthSettings) -> None:
    user = (await make_staff(auth, Role.ANALYST)).user
    given = _input(user, staffUserId=gid("StaffUser", uuid.uuid4()))
    body = await gql(RECORD, {"input": given}, bearer(await make_api_key(auth, Role.ADMIN)))
    result = body["data"]["recordStaffTraining"]
    assert result["__typename"] == "NotFoundError"
    assert result["field"] == "input.staffUserId"
    malformed = _input(user, staffUserId=gid("ApiKey", user.id))
    body = await gql(RECORD, {"input": malformed}, bearer(await make_api_key(auth, Role.ADMIN)))
    result = body["data"]["recordStaffTraining"]
    assert (result["__typename"], result["code"]) == ("ValidationError", "INVALID_ID")
    assert await StaffTraining.all().count() == 0


async def test_a_privacy_officer_records_a_training_which_is_audited_and_current(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    officer = (await make_staff(auth, Role.PRIVACY_OFFICER)).user
    user = (await make_staff(auth, Role.ANALYST)).user
    body = await gql(
        RECORD,
        {"input": _input(user, course="  Privacy   basics 2026 ")},
        await signed_in(auth, officer),
    )
    result = body["data"]["recordStaffTraining"]
    assert result["__typename"] == "StaffTrainingRecorded", body
    row = await StaffTraining.get()
    assert result["training"]["id"] == gid("StaffTraining", row.id)
    assert result["training"]["course"] == "Privacy basics 2026"
    assert result["training"]["current"] is True
    assert result["training"]["staffUser"]["id"] == gid("StaffUser", user.id)
    assert result["staffUser"]["currentTraining"] == {"course": "Privacy basics 2026"}
    assert result["staffUser"]["trainings"] == [{"course": "Privacy basics 2026", "current": True}]
    entry = await AuditEntry.get(action="staff_training.record")
    assert (entry.actor_id, str(entry.target_id)) == (officer.id, str(user.id))


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"course": "   "}, "input.course", "VALIDATION"),
        ({"course": "x" * 201}, "input.course", "VALIDATION"),
        (
            {"completedAt": "2026-06-02T00:00:00+00:00", "validUntil": "2027-06-02T00:00:00Z"},
            "input.completedAt",
            "IMPLAUSIBLE",
        ),
        (
            {"completedAt": "2026-01-10T00:00:00+00:00", "validUntil": "2026-01-10T00:00:00Z"},
            "input.validUntil",
            "IMPLAUSIBLE",
        ),
        (
            {"completedAt": "2026-01-10T00:00:00+00:00", "validUntil": "2026-01-09T00:00:00Z"},
            "input.validUntil",
            "IMPLAUSIBLE",
        ),
        ({"completedAt": "2026-01-10T00:00:00"}, "input.completedAt", "INVALID_FORMAT"),
        # Out of range once in UTC: year 0 and year 10000.
        ({"completedAt": "0001-01-01T00:00:00+14:00"}, "input.completedAt", "INVALID_FORMAT"),
        ({"validUntil": "9999-12-31T23:59:59-14:00"}, "input.validUntil", "INVALID_FORMAT"),
        # 2016-05-31 is 3,653 days before 2026-06-01: the day before is too long ago.
        (
            {"completedAt": "2016-05-30T23:59:59Z", "validUntil": "2017-05-30T00:00:00Z"},
            "input.completedAt",
            "IMPLAUSIBLE",
        ),
        # Valid for 3,654 days: longer than any 10 years.
        (
            {"completedAt": "2026-05-01T00:00:00Z", "validUntil": "2036-05-02T00:00:00Z"},
            "input.validUntil",
            "IMPLAUSIBLE",
        ),
        ({"course": "\u202egdpr basics"}, "input.course", "VALIDATION"),  # right-to-left override
        ({"course": "GDPR \u2066basics\u2069"}, "input.course", "VALIDATION"),  # an isolate
    ],
)
async def test_each_rule_of_a_training_is_a_validation_error_that_records_nothing(
    gql: GraphQLClient, auth: AuthSettings, changes: dict[str, Any], field: str, code: str
) -> None:
    user = (await make_staff(auth, Role.ANALYST)).user
    with clock.frozen_at(datetime(2026, 6, 1, tzinfo=UTC)):
        body = await gql(
            RECORD,
            {"input": _input(user, **changes)},
            bearer(await make_api_key(auth, Role.ADMIN)),
        )
    result = body["data"]["recordStaffTraining"]
    assert result["__typename"] == "ValidationError", body
    assert [(i["field"], i["code"]) for i in result["issues"]] == [(field, code)]
    assert await StaffTraining.all().count() == 0
    assert not await AuditEntry.exists(action="staff_training.record")


async def test_a_training_at_the_10_year_bounds_is_recorded(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    user = (await make_staff(auth, Role.ANALYST)).user
    admin = bearer(await make_api_key(auth, Role.ADMIN))
    with clock.frozen_at(datetime(2026, 6, 1, tzinfo=UTC)):
        oldest = _input(
            user, completedAt="2016-05-31T00:00:00Z", validUntil="2016-06-30T00:00:00+02:00"
        )
        longest = _input(
            user, completedAt="2026-05-01T00:00:00Z", validUntil="2036-05-01T00:00:00Z"
        )
        for given in (oldest, longest):
            body = await gql(RECORD, {"input": given}, admin)
            assert body["data"]["recordStaffTraining"]["__typename"] == "StaffTrainingRecorded"
    stored = await StaffTraining.filter(user_id=user.id).order_by("completed_at")
    assert [(t.completed_at, t.valid_until) for t in stored] == [
        (datetime(2016, 5, 31, tzinfo=UTC), datetime(2016, 6, 29, 22, tzinfo=UTC)),
        (datetime(2026, 5, 1, tzinfo=UTC), datetime(2036, 5, 1, tzinfo=UTC)),
    ]


async def test_a_deactivated_staff_user_gets_no_training(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    user = (await make_staff(auth, Role.ANALYST)).user
    await StaffUser.filter(id=user.id).update(active=False)
    body = await gql(RECORD, {"input": _input(user)}, bearer(await make_api_key(auth, Role.ADMIN)))
    result = body["data"]["recordStaffTraining"]
    assert result["__typename"] == "NotFoundError"
    assert result["field"] == "input.staffUserId"
    assert await StaffTraining.all().count() == 0
    assert not await AuditEntry.exists(action="staff_training.record")


async def test_current_training_is_the_one_valid_now_that_lasts_longest(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    user = (await make_staff(auth, Role.ANALYST)).user
    now = clock.now()
    await _record(user, now - timedelta(days=800), now - timedelta(days=435))  # expired
    await _record(user, now - timedelta(days=30), now + timedelta(days=100))
    longest = await _record(user, now - timedelta(days=20), now + timedelta(days=300))
    query = """query($id: ID!) { staffUser(id: $id) {
      currentTraining { id validUntil } trainings { current } } }"""
    body = await gql(
        query, {"id": gid("StaffUser", user.id)}, bearer(await make_api_key(auth, Role.ADMIN))
    )
    shown = body["data"]["staffUser"]
    assert shown["currentTraining"]["id"] == gid("StaffTraining", longest.id)
    # Latest completed first: the 20-day-old, the 30-day-old, the expired one.
    assert shown["trainings"] == [{"current": True}, {"current": True}, {"current": False}]


async def test_trainings_are_nodes_for_admins_and_privacy_officers(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    user = (await make_staff(auth, Role.ANALYST)).user
    row = await _record(user, clock.now() - timedelta(days=1), clock.now() + timedelta(days=1))
    query = "query($id: ID!) { node(id: $id) { __typename id } }"
    ids = {"id": gid("StaffTraining", row.id)}
    body = await gql(query, ids, bearer(await make_api_key(auth, Role.PRIVACY_OFFICER)))
    assert body["data"]["node"] == {"__typename": "StaffTraining", "id": ids["id"]}
    body = await gql(query, ids, bearer(await make_api_key(auth, Role.ANALYST)))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    body = await gql(
        query,
        {"id": gid("StaffTraining", uuid.uuid4())},
        bearer(await make_api_key(auth, Role.ADMIN)),
    )
    assert body["data"]["node"] is None


# --------------------------------------------------------------------------- settings


@pytest.mark.pure
def test_the_setting_names_roles_or_all_and_refuses_anything_else() -> None:
    assert load_settings({}).require_training == frozenset()
    assert load_settings({"CDLM_REQUIRE_TRAINING": " Analyst , agent"}).require_training == {
        Role.ANALYST,
        Role.AGENT,
    }
    assert load_settings({"CDLM_REQUIRE_TRAINING": "all"}).require_training == frozenset(Role)
    with pytest.raises(ConfigError) as refused:
        load_settings({"CDLM_REQUIRE_TRAINING": "analyst,boss"})
    assert str(refused.value).startswith("CDLM_REQUIRE_TRAINING: must be all or roles")
    assert "unknown: boss" in str(refused.value)
    assert "\n" not in str(refused.value)
    with pytest.raises(ConfigError):
        load_settings({"CDLM_REQUIRE_TRAINING": ","})


# ------------------------------------------------------------------------- enforcement


@pytest.fixture
def training_settings(settings: Settings) -> Settings:
    return replace(settings, require_training=frozenset({Role.ANALYST}))


@pytest.fixture
async def strict(training_settings: Settings, vault: Vault) -> AsyncIterator[GraphQLClient]:
    """A client of an installation with CDLM_REQUIRE_TRAINING=analyst."""
    app: Starlette = create_app(training_settings, database="external", vault=vault)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cdlm.test") as http:
        yield GraphQLClient(http)


async def test_an_analyst_without_training_is_refused_customers_but_gets_aggregates(
    strict: GraphQLClient, training_settings: Settings, vault: Vault
) -> None:
    auth = auth_settings(training_settings)
    customer = (await make_customer(vault, email="grace@example.com")).customer_id
    analyst = (await make_staff(auth, Role.ANALYST)).user
    headers = await signed_in(auth, analyst)
    body = await strict(CUSTOMER, {"id": gid("Customer", customer)}, headers)
    assert body["data"] == {"customer": None}
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["message"] == (
        "Privacy training is required for the analyst role to access personal data, and none "
        "is recorded for you: ask an admin or privacy officer."
    )
    assert "grace" not in str(body)
    listed = await strict("{ customers(first: 5) { nodes { id } } }", None, headers)
    assert listed["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert not await AuditEntry.exists(action="customer.read")
    report = await strict(AGGREGATE, None, headers)
    assert "errors" not in report, report
    assert report["data"]["dataQualityReport"]["customers"] == 1


async def test_a_current_analyst_reads_customers_until_the_training_lapses(
    strict: GraphQLClient, training_settings: Settings, vault: Vault
) -> None:
    auth = auth_settings(training_settings)
    customer = (await make_customer(vault, email="grace@example.com")).customer_id
    analyst = (await make_staff(auth, Role.ANALYST)).user
    now = clock.now()
    until = now + timedelta(minutes=5)
    await _record(analyst, now - timedelta(days=365), until)
    headers = await signed_in(auth, analyst)
    body = await strict(CUSTOMER, {"id": gid("Customer", customer)}, headers)
    assert "errors" not in body, body
    assert body["data"]["customer"]["profile"]["email"] == "g***@example.com"  # masked
    with clock.travel(timedelta(minutes=6)):
        body = await strict(CUSTOMER, {"id": gid("Customer", customer)}, headers)
        assert body["data"] == {"customer": None}
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert error["message"] == (
            "Privacy training is required for the analyst role to access personal data; "
            f"yours was valid until {until.isoformat()} and has expired."
        )
        report = await strict(AGGREGATE, None, headers)
        assert report["data"]["dataQualityReport"]["customers"] == 1


async def test_roles_not_named_and_api_keys_are_not_held_back(
    strict: GraphQLClient, training_settings: Settings, vault: Vault
) -> None:
    auth = auth_settings(training_settings)
    customer = gid("Customer", (await make_customer(vault, email="grace@example.com")).customer_id)
    steward = (await make_staff(auth, Role.STEWARD)).user  # steward: not in the setting
    body = await strict(CUSTOMER, {"id": customer}, await signed_in(auth, steward))
    assert body["data"]["customer"]["profile"]["email"] == "grace@example.com"
    # An analyst API key is a machine: training does not apply to it.
    body = await strict(CUSTOMER, {"id": customer}, bearer(await make_api_key(auth, Role.ANALYST)))
    assert body["data"]["customer"]["profile"]["email"] == "g***@example.com"


async def test_without_the_setting_nobody_is_held_back(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    customer = gid("Customer", (await make_customer(vault, email="grace@example.com")).customer_id)
    analyst = (await make_staff(auth, Role.ANALYST)).user
    body = await gql(CUSTOMER, {"id": customer}, await signed_in(auth, analyst))
    assert body["data"]["customer"]["profile"]["email"] == "g***@example.com"


async def test_with_all_roles_a_lapsed_privacy_officer_cannot_export_a_segment(
    settings: Settings, vault: Vault
) -> None:
    from cdlm.analytics.segments.models import SegmentExport
    from tests.analytics.test_segment_export import EXPORT, _customer, _purpose, _segment

    every = replace(settings, require_training=frozenset(Role))
    auth = auth_settings(every)
    await _purpose("partners", ["user.contact.email"])
    await _customer(vault, "ada.lovelace@example.com", "Ada")
    given = {
        "input": {
            "segmentId": gid("Segment", await _segment()),
            "purposeCode": "partners",
            "format": "CSV",
        }
    }
    officer = (await make_staff(auth, Role.PRIVACY_OFFICER)).user
    now = clock.now()
    await _record(officer, now - timedelta(days=400), now - timedelta(days=35))
    app = create_app(every, database="external", vault=vault)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://cdlm.test"
    ) as http:
        client = GraphQLClient(http)
        body = await client(EXPORT, given, await signed_in(auth, officer))
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert "privacy_officer role" in error["message"]
        assert await SegmentExport.all().count() == 0
        # Their own staff record is not held back: they can see what lapsed.
        me = await client(
            "{ viewer { staffUser { currentTraining { id } trainings { current } } } }",
            None,
            await signed_in(auth, officer),
        )
        assert me["data"]["viewer"]["staffUser"] == {
            "currentTraining": None,
            "trainings": [{"current": False}],
        }
        # An admin API key exports (machines are not held back).
        body = await client(EXPORT, given, bearer(await make_api_key(auth, Role.ADMIN)))
        assert body["data"]["exportSegment"]["__typename"] == "SegmentExported", body


#: The operations that work on data subjects' personal data. Written out by hand: the test
#: compares the schema against it, so marking an operation (or forgetting to) is deliberate.
PERSONAL_OPERATIONS = {
    "ingestCustomer",
    "ingestEvents",
    "updateCustomer",
    "liftCustomerRestriction",
    "grantConsent",
    "withdrawConsent",
    "setConsentPreferences",
    "recordGlobalPrivacyControl",
    "fileDataSubjectRequest",
    "changeDataSubjectRequestStatus",
    "extendDataSubjectRequestDeadline",
    "assignDataSubjectRequest",
    "executeDataSubjectRequest",
    "resendDataSubjectRequestExportLink",
    "resolveMatchCandidate",
    "mergeCustomers",
    "unmergeCustomer",
    "exportSegment",
}


def _personal_mutations() -> set[str]:
    from cdlm.api.schema import create_schema
    from cdlm.graphql.permissions import PERSONAL_NOTE

    mutations = create_schema()._schema.mutation_type
    assert mutations is not None
    return {
        name
        for name, field in mutations.fields.items()
        if PERSONAL_NOTE in (field.description or "")
    }


def test_the_operations_on_personal_data_are_marked_and_say_so() -> None:
    assert _personal_mutations() == PERSONAL_OPERATIONS


async def test_a_lapsed_steward_cannot_rectify_a_customer_and_nothing_changes(
    training_settings: Settings, vault: Vault
) -> None:
    from cdlm.customers.models import Customer

    every = replace(training_settings, require_training=frozenset(Role))
    auth = auth_settings(every)
    customer = (await make_customer(vault, email="grace@example.com")).customer_id
    before = await Customer.get(id=customer)
    steward = (await make_staff(auth, Role.STEWARD)).user
    now = clock.now()
    await _record(steward, now - timedelta(days=400), now - timedelta(days=1))
    app = create_app(every, database="external", vault=vault)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://cdlm.test"
    ) as http:
        client = GraphQLClient(http)
        body = await client(
            "mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) "
            "{ __typename ... on UserError { message } } }",
            {"input": {"id": gid("Customer", customer), "changes": {"email": "x@example.com"}}},
            await signed_in(auth, steward),
        )
        (error,) = body["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert "steward role" in error["message"]
        assert "has expired" in error["message"]
        after = await Customer.get(id=customer)
        assert after.profile_sealed == before.profile_sealed
        assert after.updated_at == before.updated_at
        assert not await AuditEntry.exists(action="customer.update")
        # Renewed training opens the door again in the same session.
        await _record(steward, now, now + timedelta(days=365))
        body = await client(
            "mutation($input: UpdateCustomerInput!) { updateCustomer(input: $input) "
            "{ __typename ... on UserError { message } } }",
            {"input": {"id": gid("Customer", customer), "changes": {"email": "x@example.com"}}},
            await signed_in(auth, steward),
        )
        assert "errors" not in body, body


@pytest.mark.parametrize("operation", sorted(PERSONAL_OPERATIONS))
async def test_every_operation_on_personal_data_refuses_a_lapsed_admin(
    operation: str, settings: Settings, vault: Vault
) -> None:
    from tests.graphql.test_permissions import _document

    every = replace(settings, require_training=frozenset(Role))
    auth = auth_settings(every)
    admin = (await make_staff(auth, Role.ADMIN)).user
    document, variables = _document(operation)
    app = create_app(every, database="external", vault=vault)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://cdlm.test"
    ) as http:
        body = await GraphQLClient(http)(document, variables, await signed_in(auth, admin))
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["message"].startswith("Privacy training is required for the admin role")

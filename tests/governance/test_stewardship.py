"""Stewardship: owners and stewards of the data map's categories, shown on the data map and in
the records of processing (unowned categories flagged, training coverage per role), and the
open data-quality issues routed to each category's steward."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cdlm.audit.models import AuditEntry
from cdlm.auth import service as auth_service
from cdlm.auth.models import StaffTraining, StaffUser
from cdlm.auth.settings import AuthSettings
from cdlm.config import Settings
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.customers.models import Customer
from cdlm.governance import stewardship
from cdlm.governance.datamap import ownership_categories, ownership_category
from cdlm.governance.models import DataOwnership
from cdlm.governance.ropa import records_of_processing, to_markdown
from cdlm.matching.models import MatchCandidate
from cdlm.quality.models import InvalidValue
from cdlm.vault.service import Vault
from tests.auth.test_training import signed_in
from tests.conftest import GraphQLClient, StatementRecorder
from tests.factories import bearer, gid, make_api_key, make_candidate, make_customer, make_staff

CATEGORIES = [
    "user",
    "user.behavior",
    "user.contact",
    "user.content",
    "user.demographic",
    "user.device",
    "user.name",
    "user.unique_id",
]
ASSIGN = """
mutation($input: AssignDataOwnershipInput!) {
  assignDataOwnership(input: $input) {
    __typename
    ... on DataOwnershipAssigned {
      ownership { category unowned assignedAt owner { id } steward { id role } }
    }
    ... on UserError { message code field }
  }
}"""
TASKS = """
query($filter: StewardshipTaskFilter, $first: Int, $after: String, $last: Int,
      $before: String) {
  myStewardshipTasks(filter: $filter, first: $first, after: $after, last: $last,
                     before: $before) {
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    nodes {
      kind category openedAt qualityScore
      refusedValue { field code sourceRecordId }
      customer { id }
      matchCandidate { id }
    }
  }
}"""


def _assign(category: str, owner: StaffUser, steward: StaffUser) -> dict[str, Any]:
    return {
        "input": {
            "category": category,
            "ownerId": gid("StaffUser", owner.id),
            "stewardId": gid("StaffUser", steward.id),
        }
    }


async def _own(category: str, owner: StaffUser, steward: StaffUser) -> DataOwnership:
    given = stewardship.OwnershipInput(category, owner.id, steward.id)
    return await stewardship.assign(SYSTEM, given)


@pytest.mark.pure
def test_categories_are_the_data_maps_fideslang_keys_at_their_second_level() -> None:
    assert ownership_category("user.contact.address.postal_code") == "user.contact"
    assert ownership_category("user.unique_id.pseudonymous") == "user.unique_id"
    assert ownership_category("user") == "user"
    assert ownership_categories() == CATEGORIES
    # Every kind of task goes to a category of the map.
    assert set(stewardship.TASK_CATEGORY.values()) <= set(CATEGORIES)
    assert stewardship.REFUSED_FIELD_CATEGORY["email"] == "user.contact"
    assert stewardship.REFUSED_FIELD_CATEGORY["postal_code"] == "user.contact"
    assert stewardship.REFUSED_FIELD_CATEGORY["birth_date"] == "user.demographic"
    assert stewardship.REFUSED_FIELD_CATEGORY["given_name"] == "user.name"


# ------------------------------------------------------------------- assignDataOwnership


async def test_assigning_needs_a_signed_in_caller(gql: GraphQLClient, auth: AuthSettings) -> None:
    user = (await make_staff(auth, Role.STEWARD)).user
    body = await gql(ASSIGN, _assign("user.contact", user, user))
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await DataOwnership.all().count() == 0


@pytest.mark.parametrize("role", [Role.STEWARD, Role.ANALYST, Role.AGENT, Role.INGEST])
async def test_only_admins_and_privacy_officers_assign(
    gql: GraphQLClient, auth: AuthSettings, role: Role
) -> None:
    user = (await make_staff(auth, Role.STEWARD)).user
    body = await gql(
        ASSIGN, _assign("user.contact", user, user), bearer(await make_api_key(auth, role))
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await DataOwnership.all().count() == 0


async def test_unknown_or_deactivated_staff_users_are_not_found(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    admin = bearer(await make_api_key(auth, Role.ADMIN))
    steward = (await make_staff(auth, Role.STEWARD)).user
    gone = (await make_staff(auth, Role.ANALYST)).user
    await auth_service.update_staff_user(
        SYSTEM, gone.id, auth_service.StaffUserChanges(active=False)
    )
    nobody = StaffUser(id=uuid.uuid4())
    for given, field in (
        (_assign("user.contact", nobody, steward), "input.ownerId"),
        (_assign("user.contact", steward, nobody), "input.stewardId"),
        (_assign("user.contact", gone, steward), "input.ownerId"),
    ):
        result = (await gql(ASSIGN, given, admin))["data"]["assignDataOwnership"]
        assert (result["__typename"], result["field"]) == ("NotFoundError", field)
    given = _assign("user.contact", steward, steward)
    given["input"]["ownerId"] = gid("ApiKey", steward.id)
    result = (await gql(ASSIGN, given, admin))["data"]["assignDataOwnership"]
    assert (result["__typename"], result["code"], result["field"]) == (
        "ValidationError",
        "INVALID_ID",
        "input.ownerId",
    )
    assert await DataOwnership.all().count() == 0


async def test_an_unknown_category_and_a_steward_without_a_steward_role_are_refused(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    admin = bearer(await make_api_key(auth, Role.ADMIN))
    analyst = (await make_staff(auth, Role.ANALYST)).user
    steward = (await make_staff(auth, Role.STEWARD)).user
    for category in ("user.contact.email", "system.operations", ""):
        result = (await gql(ASSIGN, _assign(category, analyst, steward), admin))["data"][
            "assignDataOwnership"
        ]
        assert (result["__typename"], result["field"], result["code"]) == (
            "ValidationError",
            "input.category",
            "UNKNOWN_CODE",
        )
        assert "user.contact" in result["message"]
    result = (await gql(ASSIGN, _assign("user.contact", steward, analyst), admin))["data"][
        "assignDataOwnership"
    ]
    assert (result["__typename"], result["field"], result["message"]) == (
        "ValidationError",
        "input.stewardId",
        "A steward must have the steward, privacy officer or admin role.",
    )
    assert await DataOwnership.all().count() == 0
    assert not await AuditEntry.exists(action="data_ownership.assign")


async def test_assigning_and_reassigning_keeps_the_history_and_is_audited(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    officer = (await make_staff(auth, Role.PRIVACY_OFFICER)).user
    headers = await signed_in(auth, officer)
    owner = (await make_staff(auth, Role.ANALYST)).user  # any active staff user may own
    steward = (await make_staff(auth, Role.STEWARD)).user
    first = datetime(2026, 3, 1, 9, tzinfo=UTC)
    with clock.frozen_at(first):
        body = await gql(ASSIGN, _assign("user.contact", owner, steward), headers)
    result = body["data"]["assignDataOwnership"]
    assert result == {
        "__typename": "DataOwnershipAssigned",
        "ownership": {
            "category": "user.contact",
            "unowned": False,
            "assignedAt": "2026-03-01T09:00:00+00:00",
            "owner": {"id": gid("StaffUser", owner.id)},
            "steward": {"id": gid("StaffUser", steward.id), "role": "STEWARD"},
        },
    }
    # The same pair again changes nothing.
    with clock.frozen_at(first + timedelta(days=1)):
        await gql(ASSIGN, _assign("user.contact", owner, steward), headers)
    assert await DataOwnership.all().count() == 1
    # The privacy officer takes over the stewardship (an officer may steward).
    with clock.frozen_at(first + timedelta(days=2)):
        body = await gql(ASSIGN, _assign("user.contact", owner, officer), headers)
    assert body["data"]["assignDataOwnership"]["ownership"]["steward"] == {
        "id": gid("StaffUser", officer.id),
        "role": "PRIVACY_OFFICER",
    }
    history = await stewardship.history("user.contact")
    assert [(h.steward_id, h.ended_at) for h in history] == [
        (officer.id, None),
        (steward.id, first + timedelta(days=2)),
    ]
    entries = await AuditEntry.filter(action="data_ownership.assign").order_by("sequence")
    assert [(e.actor_id, e.target_type, e.target_id) for e in entries] == [
        (officer.id, "data_category", "user.contact"),
        (officer.id, "data_category", "user.contact"),
    ]


# --------------------------------------------------------- data map and records of processing

DATA_MAP = """
{ dataMap { field dataCategory ownershipCategory clearRoles
    ownership { category unowned owner { id displayName } steward { id } }
    trainingCoverage { role staffUsers trained share required } } }
"""
RECORDS = """
{ recordsOfProcessing {
    unownedCategories
    dataOwnership { category unowned assignedAt owner { id } steward { id } }
    trainingCoverage { role staffUsers trained share required } } }
"""


async def _trained(user: StaffUser, *, current: bool) -> None:
    now = clock.now()
    end = now + timedelta(days=30) if current else now - timedelta(days=1)
    await StaffTraining.create(
        id=uuid.uuid4(),
        user=user,
        course="Privacy basics",
        completed_at=now - timedelta(days=300),
        valid_until=end,
        recorded_at=now,
    )


async def test_the_data_map_names_owner_and_steward_and_flags_unowned_categories(
    gql: GraphQLClient, auth: AuthSettings
) -> None:
    owner = (await make_staff(auth, Role.PRIVACY_OFFICER, name="Olivia Owner")).user
    steward = (await make_staff(auth, Role.STEWARD)).user
    other_steward = (await make_staff(auth, Role.STEWARD)).user
    agent = (await make_staff(auth, Role.AGENT)).user
    await _trained(steward, current=True)
    await _trained(other_steward, current=False)
    await _trained(agent, current=True)
    await _own("user.contact", owner, steward)
    body = await gql(DATA_MAP, None, bearer(await make_api_key(auth, Role.PRIVACY_OFFICER)))
    entries = {e["field"]: e for e in body["data"]["dataMap"]}
    email = entries["customer.profile.email"]
    assert email["ownershipCategory"] == "user.contact"
    assert email["ownership"] == {
        "category": "user.contact",
        "unowned": False,
        "owner": {"id": gid("StaffUser", owner.id), "displayName": "Olivia Owner"},
        "steward": {"id": gid("StaffUser", steward.id)},
    }
    evidence = entries["consent.evidence"]
    assert evidence["ownershipCategory"] == "user.device"
    assert evidence["ownership"] == {
        "category": "user.device",
        "unowned": True,
        "owner": None,
        "steward": None,
    }
    # Coverage of the roles that read an email in clear, in clearRoles' order: the system's
    # staff are one privacy officer (untrained), two stewards (one current), one agent
    # (current); no admin staff user (API keys are not staff).
    assert email["clearRoles"] == ["ADMIN", "AGENT", "PRIVACY_OFFICER", "STEWARD"]
    assert email["trainingCoverage"] == [
        {"role": "ADMIN", "staffUsers": 0, "trained": 0, "share": None, "required": False},
        {"role": "AGENT", "staffUsers": 1, "trained": 1, "share": 1.0, "required": False},
        {
            "role": "PRIVACY_OFFICER",
            "staffUsers": 1,
            "trained": 0,
            "share": 0.0,
            "required": False,
        },
        {"role": "STEWARD", "staffUsers": 2, "trained": 1, "share": 0.5, "required": False},
    ]


async def test_the_records_of_processing_flag_unowned_categories_and_report_training(
    gql: GraphQLClient, auth: AuthSettings, settings: Settings
) -> None:
    owner = (await make_staff(auth, Role.ADMIN)).user
    steward = (await make_staff(auth, Role.STEWARD)).user
    analysts = [(await make_staff(auth, Role.ANALYST)).user for _ in range(3)]
    await _trained(analysts[0], current=True)
    await _trained(analysts[1], current=False)
    await _trained(owner, current=True)
    with clock.frozen_at(datetime(2026, 4, 1, tzinfo=UTC)):
        await _own("user.unique_id", owner, steward)
        # An owner who leaves (is deactivated) leaves the category unowned.
        await _own("user.name", analysts[2], steward)
    await auth_service.update_staff_user(
        SYSTEM, analysts[2].id, auth_service.StaffUserChanges(active=False)
    )
    body = await gql(RECORDS, None, bearer(await make_api_key(auth, Role.PRIVACY_OFFICER)))
    records = body["data"]["recordsOfProcessing"]
    assert records["unownedCategories"] == [c for c in CATEGORIES if c != "user.unique_id"]
    owned = {o["category"]: o for o in records["dataOwnership"]}
    assert list(owned) == CATEGORIES
    assert owned["user.unique_id"] == {
        "category": "user.unique_id",
        "unowned": False,
        "assignedAt": "2026-04-01T00:00:00+00:00",
        "owner": {"id": gid("StaffUser", owner.id)},
        "steward": {"id": gid("StaffUser", steward.id)},
    }
    assert owned["user.name"] == {
        "category": "user.name",
        "unowned": True,
        "assignedAt": "2026-04-01T00:00:00+00:00",
        "owner": {"id": gid("StaffUser", analysts[2].id)},
        "steward": {"id": gid("StaffUser", steward.id)},
    }
    assert owned["user.device"] == {
        "category": "user.device",
        "unowned": True,
        "assignedAt": None,
        "owner": None,
        "steward": None,
    }
    coverage = {c["role"]: c for c in records["trainingCoverage"]}
    assert list(coverage) == ["ADMIN", "PRIVACY_OFFICER", "STEWARD", "ANALYST", "AGENT", "INGEST"]
    assert coverage["ANALYST"] == {  # the deactivated analyst does not count
        "role": "ANALYST",
        "staffUsers": 2,
        "trained": 1,
        "share": 0.5,
        "required": False,
    }
    assert coverage["ADMIN"]["share"] == 1.0
    assert coverage["STEWARD"]["share"] == 0.0
    # The command's Markdown says the same.
    markdown = to_markdown(await records_of_processing(settings))
    assert f"| `user.unique_id` | {owner.id} | {steward.id} |" in markdown
    assert f"| `user.name` | {analysts[2].id} **UNOWNED** | {steward.id} |" in markdown
    assert "| `user.device` | none **UNOWNED** | none |" in markdown
    assert "Categories without an owner: user, user.behavior," in markdown
    assert "| analyst | 2 | 1 | 50% | no |" in markdown
    assert "| agent | 0 | 0 | - | no |" in markdown


async def test_the_data_map_reads_a_constant_number_of_statements_as_owners_grow(
    gql: GraphQLClient, auth: AuthSettings, sql: StatementRecorder
) -> None:
    headers = bearer(await make_api_key(auth, Role.ADMIN))
    await gql("{ viewer { role } }", None, headers)  # the key's first use is recorded once
    counts = []
    for owned in (1, len(CATEGORIES)):
        for category in CATEGORIES[:owned]:
            owner = (await make_staff(auth, Role.ANALYST)).user
            steward = (await make_staff(auth, Role.STEWARD)).user
            await _trained(steward, current=True)
            await _own(category, owner, steward)
        with sql.recording():
            body = await gql(DATA_MAP, None, headers)
        assert "errors" not in body, body
        entries = body["data"]["dataMap"]
        owners = {e["ownership"]["owner"]["id"] for e in entries if e["ownership"]["owner"]}
        assert len(owners) == owned
        counts.append(sql.count)
        with sql.recording():
            body = await gql(RECORDS, None, headers)
        assert len(body["data"]["recordsOfProcessing"]["unownedCategories"]) == 8 - owned
        counts.append(sql.count)
        await DataOwnership.all().delete()
    assert counts[0] == counts[2], counts
    assert counts[1] == counts[3], counts


# ------------------------------------------------------------------- myStewardshipTasks


async def _world(auth: AuthSettings, vault: Vault) -> dict[str, Any]:
    """Four stewards and the issues of three customers, opened at known times:
    - ``bad``: an id in the CRM and an invalid email (refused: user.contact; score 0: low
      quality);
    - ``birth``: a valid email and an invalid birth date (refused: user.demographic; score
      0.5 x 1/9 + 0.3 x 1/2 + 0.2 = 0.4056: low quality);
    - ``good`` and ``fine``: a pair in the review queue (user.unique_id); ``fine`` has only an
      email (score 0.5 x 1/9 + 0.3 + 0.2 = 0.5556: not below 0.5).
    """
    contact = (await make_staff(auth, Role.STEWARD)).user
    records = (await make_staff(auth, Role.ADMIN)).user
    demographic = (await make_staff(auth, Role.PRIVACY_OFFICER)).user
    idle = (await make_staff(auth, Role.STEWARD)).user
    owner = (await make_staff(auth, Role.ANALYST)).user
    await _own("user.contact", owner, contact)
    await _own("user", owner, records)
    await _own("user.unique_id", owner, records)
    await _own("user.demographic", owner, demographic)
    await _own("user.name", owner, idle)
    start = datetime(2026, 5, 1, tzinfo=UTC)
    with clock.frozen_at(start):
        bad = await make_customer(vault, external_ids=["crm:1"], email="not an email")
    with clock.frozen_at(start + timedelta(hours=1)):
        birth = await make_customer(vault, email="ada@example.com", birth_date="not a date")
    with clock.frozen_at(start + timedelta(hours=2)):
        good = await make_customer(
            vault,
            given_name="Grace",
            family_name="Hopper",
            email="grace@example.com",
            phone="+442079460000",
            birth_date="1906-12-09",
            address_line1="1 Navy Way",
            city="London",
            postal_code="SW1A 1AA",
            country="GB",
        )
        fine = await make_customer(vault, email="fine@example.com")
    with clock.frozen_at(start + timedelta(hours=3)):
        pair = await make_candidate(good.customer_id, fine.customer_id)
    return {
        "start": start,
        "stewards": {"contact": contact, "records": records, "demographic": demographic},
        "idle": idle,
        "bad": bad,
        "birth": birth,
        "good": good,
        "pair": pair,
    }


def _at(moment: datetime) -> str:
    return moment.isoformat()


async def test_tasks_go_to_the_steward_of_their_category_and_to_no_one_else(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    world = await _world(auth, vault)
    start = world["start"]
    bad, birth = world["bad"], world["birth"]
    stewards = world["stewards"]
    contact = await gql(TASKS, None, await signed_in(auth, stewards["contact"]))
    assert contact["data"]["myStewardshipTasks"]["nodes"] == [
        {
            "kind": "REFUSED_VALUE",
            "category": "user.contact",
            "openedAt": _at(start),
            "qualityScore": None,
            "refusedValue": {
                "field": "profile.email",
                "code": bad.issues[0].code.name,
                "sourceRecordId": gid("SourceRecord", bad.source_record_id),
            },
            "customer": {"id": gid("Customer", bad.customer_id)},
            "matchCandidate": None,
        }
    ]
    records = await gql(TASKS, None, await signed_in(auth, stewards["records"]))
    assert records["data"]["myStewardshipTasks"]["nodes"] == [
        {
            "kind": "LOW_QUALITY_PROFILE",
            "category": "user",
            "openedAt": _at(start),
            "qualityScore": 0.0,
            "refusedValue": None,
            "customer": {"id": gid("Customer", bad.customer_id)},
            "matchCandidate": None,
        },
        {
            "kind": "LOW_QUALITY_PROFILE",
            "category": "user",
            "openedAt": _at(start + timedelta(hours=1)),
            "qualityScore": 0.4056,
            "refusedValue": None,
            "customer": {"id": gid("Customer", birth.customer_id)},
            "matchCandidate": None,
        },
        {
            "kind": "MATCH_CANDIDATE",
            "category": "user.unique_id",
            "openedAt": _at(start + timedelta(hours=3)),
            "qualityScore": None,
            "refusedValue": None,
            "customer": None,
            "matchCandidate": {"id": gid("MatchCandidate", world["pair"].id)},
        },
    ]
    demographic = await gql(TASKS, None, await signed_in(auth, stewards["demographic"]))
    (task,) = demographic["data"]["myStewardshipTasks"]["nodes"]
    assert (task["kind"], task["category"], task["refusedValue"]["field"]) == (
        "REFUSED_VALUE",
        "user.demographic",
        "profile.birthDate",
    )
    assert task["customer"] == {"id": gid("Customer", birth.customer_id)}
    idle = await gql(TASKS, None, await signed_in(auth, world["idle"]))
    assert idle["data"]["myStewardshipTasks"]["nodes"] == []  # user.name has no issue
    # Reassigning the stewardship moves the tasks.
    await _own("user.contact", stewards["records"], world["idle"])
    moved = await gql(TASKS, None, await signed_in(auth, world["idle"]))
    assert [t["category"] for t in moved["data"]["myStewardshipTasks"]["nodes"]] == ["user.contact"]
    gone = await gql(TASKS, None, await signed_in(auth, stewards["contact"]))
    assert gone["data"]["myStewardshipTasks"]["nodes"] == []


async def test_tasks_carry_no_personal_values(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    world = await _world(auth, vault)
    for steward in world["stewards"].values():
        body = await gql(TASKS, None, await signed_in(auth, steward))
        assert "errors" not in body, body
        shown = str(body)
        assert "not an email" not in shown
        assert "not a date" not in shown
        assert "example.com" not in shown


async def test_restricted_customers_and_resolved_issues_are_no_tasks(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    world = await _world(auth, vault)
    await Customer.filter(id=world["bad"].customer_id).update(restricted_at=clock.now())
    await InvalidValue.filter(customer_id=world["birth"].customer_id).update(
        resolved_at=clock.now()
    )
    for name in ("contact", "demographic"):
        body = await gql(TASKS, None, await signed_in(auth, world["stewards"][name]))
        assert body["data"]["myStewardshipTasks"]["nodes"] == []
    body = await gql(TASKS, None, await signed_in(auth, world["stewards"]["records"]))
    kinds = [(t["kind"], t["customer"]) for t in body["data"]["myStewardshipTasks"]["nodes"]]
    assert kinds == [
        ("LOW_QUALITY_PROFILE", {"id": gid("Customer", world["birth"].customer_id)}),
        ("MATCH_CANDIDATE", None),
    ]


async def test_tasks_filter_by_kind_and_category_and_page_both_ways(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    world = await _world(auth, vault)
    headers = await signed_in(auth, world["stewards"]["records"])
    body = await gql(TASKS, {"filter": {"kind": "MATCH_CANDIDATE"}}, headers)
    assert [t["kind"] for t in body["data"]["myStewardshipTasks"]["nodes"]] == ["MATCH_CANDIDATE"]
    body = await gql(TASKS, {"filter": {"category": "user"}}, headers)
    assert [t["category"] for t in body["data"]["myStewardshipTasks"]["nodes"]] == ["user"] * 2
    body = await gql(TASKS, {"filter": {"category": "user.contact"}}, headers)
    assert body["data"]["myStewardshipTasks"]["nodes"] == []  # not theirs
    body = await gql(TASKS, {"filter": {"category": "user.contact.email"}}, headers)
    assert body["errors"][0]["extensions"]["field"] == "filter.category"
    first = (await gql(TASKS, {"first": 2}, headers))["data"]["myStewardshipTasks"]
    assert [t["qualityScore"] for t in first["nodes"]] == [0.0, 0.4056]
    assert (first["pageInfo"]["hasNextPage"], first["pageInfo"]["hasPreviousPage"]) == (
        True,
        False,
    )
    rest = await gql(TASKS, {"first": 2, "after": first["pageInfo"]["endCursor"]}, headers)
    page = rest["data"]["myStewardshipTasks"]
    assert [t["kind"] for t in page["nodes"]] == ["MATCH_CANDIDATE"]
    assert (page["pageInfo"]["hasNextPage"], page["pageInfo"]["hasPreviousPage"]) == (False, True)
    back = await gql(TASKS, {"last": 1, "before": page["pageInfo"]["startCursor"]}, headers)
    page = back["data"]["myStewardshipTasks"]
    assert [t["qualityScore"] for t in page["nodes"]] == [0.4056]
    assert (page["pageInfo"]["hasNextPage"], page["pageInfo"]["hasPreviousPage"]) == (True, True)
    last = (await gql(TASKS, {"last": 2}, headers))["data"]["myStewardshipTasks"]
    assert [t["kind"] for t in last["nodes"]] == ["LOW_QUALITY_PROFILE", "MATCH_CANDIDATE"]
    forged = await gql(TASKS, {"after": "bm90IGEgY3Vyc29y"}, headers)
    assert forged["errors"][0]["extensions"]["field"] == "after"


async def test_tasks_are_for_signed_in_stewards(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault
) -> None:
    body = await gql(TASKS)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    analyst = (await make_staff(auth, Role.ANALYST)).user
    body = await gql(TASKS, None, await signed_in(auth, analyst))
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # An API key stewards nothing: it is told so, even with the admin role.
    body = await gql(TASKS, None, bearer(await make_api_key(auth, Role.ADMIN)))
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "API key" in error["message"]


async def test_task_lists_read_a_constant_number_of_statements_as_tasks_grow(
    gql: GraphQLClient, auth: AuthSettings, vault: Vault, sql: StatementRecorder
) -> None:
    steward = (await make_staff(auth, Role.ADMIN)).user
    for category in ("user", "user.contact", "user.unique_id"):
        await _own(category, steward, steward)
    headers = await signed_in(auth, steward)
    query = """{ myStewardshipTasks(first: 100) { nodes { kind
        customer { id profile { email } } matchCandidate { id left { id } } } } }"""
    counts = []
    for size in (1, 4):
        await Customer.all().delete()
        for i in range(size):
            bad = await make_customer(vault, external_ids=[f"crm:c{i}"], email=f"bad {i}")
            fine = await make_customer(vault, email=f"p{i}@example.com")
            await make_candidate(bad.customer_id, fine.customer_id)
        with sql.recording():
            body = await gql(query, None, headers)
        assert "errors" not in body, body
        # Each size: a refused email and a low-quality profile per bad customer, one pair.
        assert len(body["data"]["myStewardshipTasks"]["nodes"]) == 3 * size
        counts.append(sql.count)
        await MatchCandidate.all().delete()
    assert counts[0] == counts[1], counts

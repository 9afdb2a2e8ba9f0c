"""The access export covers every table that holds the person, or says why not.

A walk of the database's own catalogue finds every table with a column that holds a customer
id, a request id or a keyed digest of a person's identifier, and each must be either exported
(``access.EXPORTED_IN``, with the part of the export it goes to) or withheld with a reason
(``access.WITHHELD``, which the export repeats to the requester). An access request run through
the API then shows every exported table's rows in its part, what staff wrote, the messages,
who read or changed the data (by kind and role, never a staff id), the consent evidence, and
what was withheld.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

import httpx
import pytest
from tortoise.connection import get_connection

from cdlm.audit.models import AuditEntry
from cdlm.auth.settings import AuthSettings
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.core.vocabulary import SourceKind
from cdlm.dsr import access
from cdlm.identity.models import IdentityConflict
from cdlm.matching import merge as merging
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.dsr.support import approved, change, execute, export_link, file_request, key
from tests.dsr.test_execution import _person
from tests.factories import DEFAULT_PASSWORD, bearer, gid, make_customer, make_staff, source
from tests.support.audit import read_records

#: Column names that hold a customer id, a request id, or a keyed digest of a person's email,
#: phone or id (by which rows about them can be found again):
#: - ``customer_id``, ``other_customer_id``: a customer's id (``customer_keys.customer_id`` also
#:   holds the request ids whose keys seal requesters' details);
#: - ``request_id``, ``duplicate_of_id``: a data subject request's id (``audit_entries.request_id``
#:   is an HTTP request id, but the table is walked for ``target_id`` anyway);
#: - ``target_id``: the audit trail's target, a customer or a request among others;
#: - ``export_id``: a download token's export, which belongs to a request;
#: - ``blind_index``, ``subject_index``, ``key_digest``: keyed digests of identifiers.
PERSON_COLUMNS = frozenset(
    {
        "customer_id",
        "other_customer_id",
        "request_id",
        "duplicate_of_id",
        "target_id",
        "export_id",
        "blind_index",
        "left_id",
        "right_id",
        "survivor_id",
        "merged_id",
        "subject_index",
        "key_digest",
    }
)
#: Tables that hold the person under a column no name gives away, found by reading the models.
BY_READING = {
    "customers": "id is the customer's id",
    "dsr_requests": "id is the request's id",
    "idempotency_records": "result holds the customer id an ingestion resolved to and the "
    "request id a submission made; scope holds the requester's blind index",
}


#: A condition on ``table_name``: the table is not a partition of another.
NOT_A_PARTITION = (
    "NOT (SELECT relispartition FROM pg_class "
    "WHERE oid = format('%I.%I', table_schema, table_name)::regclass)"
)


async def _tables_holding_a_person() -> dict[str, set[str]]:
    """Every table of the database with a column of :data:`PERSON_COLUMNS`, with those columns
    (from information_schema, so a table made by any migration is seen). A partition (a month
    of events) is its partitioned table's: it is exported and erased through it."""
    rows = await get_connection("default").execute_query_dict(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND column_name = ANY($1::text[]) "
        f"AND {NOT_A_PARTITION}",
        [sorted(PERSON_COLUMNS)],
    )
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(row["table_name"], set()).add(row["column_name"])
    return found


async def _all_tables() -> set[str]:
    rows = await get_connection("default").execute_query_dict(
        "SELECT table_name FROM information_schema.tables "
        f"WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND {NOT_A_PARTITION}"
    )
    return {row["table_name"] for row in rows}


async def test_every_table_holding_a_person_is_exported_or_withheld_with_a_reason() -> None:
    """The walk reads the live database, not the models: a new migration adding a table with a
    ``customer_id`` (or ``request_id``, ...) column puts that table in ``found`` below, and
    unless someone also adds it to ``access.EXPORTED_IN`` (and to the export) or to
    ``access.WITHHELD`` with a reason, ``unaccounted`` is not empty and this test fails,
    naming the table and its column. A declared table that no longer exists (renamed or
    dropped) fails it too, so the declaration cannot go stale either."""
    found = await _tables_holding_a_person()
    tables = await _all_tables()
    assert set(BY_READING) <= tables
    holding = set(found) | set(BY_READING)

    unaccounted = {
        table: sorted(found.get(table, {BY_READING.get(table, "")}))
        for table in holding
        if table not in access.EXPORTED and table not in access.WITHHELD
    }
    assert unaccounted == {}, (
        "tables holding a customer or request id are neither in the access export nor "
        "withheld with a reason (cdlm.dsr.access.EXPORTED_IN / WITHHELD)"
    )
    assert access.EXPORTED.isdisjoint(access.WITHHELD)
    declared = access.EXPORTED | set(access.WITHHELD)
    assert declared - tables == set(), "declared tables that do not exist"
    assert declared - holding == set(), "declared tables that hold nobody"
    for table, reason in access.WITHHELD.items():
        assert len(reason) >= 80, f"{table}: say what it holds and why it is withheld"
    # The tables the export was missing before are now in it; identity conflicts are withheld.
    assert {"dsr_request_events", "notification_outbox", "audit_entries"} <= access.EXPORTED
    assert "identity_conflicts" in access.WITHHELD


# ------------------------------------------------------------------ the export, end to end

#: The person of :func:`tests.dsr.test_execution._person`, who is in every exported table.
EMAIL = "ines.quartermaine@example.com"
PHONE = "+447911123987"


@pytest.fixture(autouse=True)
def notifications(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cdlm.notifications")


def _parts(answer: Any, path: str) -> list[Any]:
    """The values at ``path`` of :data:`access.EXPORTED_IN` (``a.b``, ``a[].b``)."""
    values = [answer]
    for step in path.split("."):
        name = step.removesuffix("[]")
        values = [v[name] for v in values if isinstance(v, dict) and v.get(name) is not None]
        if step.endswith("[]"):
            values = [item for v in values for item in v]
    return values


async def _login(gql: GraphQLClient, email: str) -> dict[str, str]:
    body = await gql(
        "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) "
        "{ ... on LoginSucceeded { accessToken } } }",
        {"e": email, "p": DEFAULT_PASSWORD},
    )
    return bearer(body["data"]["login"]["accessToken"])


async def test_the_export_holds_every_exported_table_and_names_what_is_withheld(
    gql: GraphQLClient,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    auth: AuthSettings,
    vault: Vault,
    caplog: pytest.LogCaptureFixture,
) -> None:
    customer_id = await _person(vault)
    # A stranger sharing the person's phone, kept apart: the conflict names their profile.
    stranger = await make_customer(
        vault, given_name="Caspian", family_name="Thorne", email="c.thorne@example.org",
        phone=PHONE, birth_date="1960-01-01",
    )  # fmt: skip
    conflict = await IdentityConflict.get(other_customer_id=customer_id)
    assert conflict.customer_id == stranger.customer_id
    # A second profile of the person, made from an old address book, merged into theirs.
    second = await make_customer(
        vault,
        origin=source("address-book", SourceKind.IMPORT),
        given_name="Ines",
        family_name="Quartermaine",
        email="ines.q@example.net",
    )
    await merging.merge(
        SYSTEM,
        vault,
        merging.MergeInput(customer_id, second.customer_id, "The same person, older address."),
    )

    # An agent (a staff user) reads the person's profile; the audit trail knows them by id.
    agent = await make_staff(auth, Role.AGENT, name="Agent Quillfeather")
    read = await gql(
        "query($id: ID!) { customer(id: $id) { profile { email } } }",
        {"id": gid("Customer", customer_id)},
        await _login(gql, agent.email),
    )
    assert read["data"]["customer"]["profile"]["email"] == EMAIL
    assert any(
        e.actor_id == agent.user.id for e in await read_records("customer.read", customer_id)
    )

    # An earlier request, assigned to the agent, then denied with a reason staff wrote.
    earlier = (await file_request(gql, admin_headers, "ERASURE", EMAIL))["request"]["id"]
    assigned = await gql(
        "mutation($id: ID!, $a: ID) { assignDataSubjectRequest(input: {id: $id, assigneeId: $a})"
        " { __typename } }",
        {"id": earlier, "a": gid("StaffUser", agent.user.id)},
        admin_headers,
    )
    assert (
        assigned["data"]["assignDataSubjectRequest"]["__typename"] == "DataSubjectRequestAssigned"
    )
    denial = "Invoices for order 4471 must be kept until 2031 (tax law)."
    assert (await change(gql, admin_headers, earlier, "DENIED", denial))["request"][
        "status"
    ] == "DENIED"

    request_id = await approved(gql, admin_headers, "ACCESS", EMAIL)
    await execute(gql, admin_headers, request_id)
    response = await client.get(export_link(caplog))
    assert response.status_code == 200
    answer = response.json()
    text = response.text

    # Every exported table has its rows in its part of the export.
    for table, path in access.EXPORTED_IN.items():
        assert any(_parts(answer, path)), f"{table}: nothing at {path}"

    # Requests: what was asked, staff's reason opened, the timeline with staff's note, and the
    # messages as metadata.
    # The copy names requests by their database ids (the API's ids are global ids).
    by_id = {r["id"]: r for r in answer["requests"]}
    assert set(by_id) == {str(key(earlier)), str(key(request_id))}
    denied = by_id[str(key(earlier))]
    assert denied["identified_by"] == {"kind": "email", "value": EMAIL}
    assert denied["reason"] == denial
    assert any(e["note"] == denial and e["to_status"] == "denied" for e in denied["timeline"])
    assert [e["note"] for e in denied["timeline"] if e["kind"] == "assigned"] == [
        "to a staff member"
    ]
    [message] = [n for n in denied["notifications"] if n["template"] == "request_denied"]
    assert set(message) == {"template", "channel", "created_at", "sent_at", "attempts"}
    assert message["channel"] == "email"
    assert message["sent_at"] is not None

    # Who read or changed the data: by kind and role, never by staff id or name.
    trail = answer["audit_trail"]
    assert {"action": "customer.read", "actor_kind": "user", "actor_role": "agent"}.items() <= (
        next(e for e in trail if e["actor_kind"] == "user").items()
    )
    assert any(
        e["action"] == "dsr.denied"
        and e["target_id"] == str(key(earlier))
        and e["actor_role"] == "admin"
        for e in trail
    )
    assert all("actor_id" not in e for e in trail)
    staff_ids = {
        str(i)
        for i in await AuditEntry.filter(actor_id__isnull=False).values_list("actor_id", flat=True)
    }
    assert str(agent.user.id) in staff_ids
    assert not any(staff_id in text for staff_id in staff_ids)
    assert "Quillfeather" not in text

    # Consent evidence, opened: the user agent and the keyed digest of the IP address only.
    [decision] = answer["consents"]
    evidence = decision["evidence"]
    assert evidence["user_agent"] == "Ines's browser"
    assert re.fullmatch(r"[0-9a-f]{64}", evidence["ip_address_keyed_digest"])
    assert "203.0.113.9" not in text
    assert "digest" in answer["about"]["consents"]

    # Identity conflicts are withheld: the stranger's profile is not named, and the requester
    # is told what was left out and why.
    assert str(stranger.customer_id) not in text
    assert "Caspian" not in text
    assert answer["withheld"] == [
        {"table": table, "reason": reason} for table, reason in sorted(access.WITHHELD.items())
    ]
    assert json.dumps(answer["withheld"])  # plain data


async def test_a_requester_with_no_profile_still_gets_their_request_and_its_trail(
    gql: GraphQLClient,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    request_id = await approved(gql, admin_headers, "ACCESS", "unknown.person@example.org")
    await execute(gql, admin_headers, request_id)
    answer = (await client.get(export_link(caplog))).json()
    assert answer["data_found"] is False
    assert answer["data"] is None
    assert "consents" not in answer
    [request] = answer["requests"]
    assert request["id"] == str(key(request_id))
    assert request["identified_by"]["value"] == "unknown.person@example.org"
    assert [e["kind"] for e in request["timeline"]][:1] == ["received"]
    assert {e["target_id"] for e in answer["audit_trail"]} == {str(key(request_id))}
    assert {w["table"] for w in answer["withheld"]} == set(access.WITHHELD)


async def test_portability_keeps_to_what_the_person_provided(
    gql: GraphQLClient,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    vault: Vault,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _person(vault)
    request_id = await approved(gql, admin_headers, "PORTABILITY", EMAIL)
    await execute(gql, admin_headers, request_id)
    answer = (await client.get(export_link(caplog))).json()
    assert answer["format"] == access.PORTABLE_FORMAT
    assert {"requests", "audit_trail", "processing", "withheld"}.isdisjoint(answer)
    [decision] = answer["consents"]
    assert "evidence" not in decision


def test_a_read_record_about_many_people_shows_each_person_only_their_own_id() -> None:
    from cdlm.dsr.access import _audit_entry

    mine, theirs = uuid.uuid4(), uuid.uuid4()
    entry = AuditEntry(
        occurred_at=clock.now(),
        action="customer.read",
        fields_touched=["email"],
        actor_kind="user",
        actor_role="agent",
        target_type="customer",
        target_id=None,
        subject_ids=[theirs, mine],
    )
    shown = _audit_entry(entry, {mine})
    assert shown["target_id"] == str(mine)
    assert str(theirs) not in str(shown)

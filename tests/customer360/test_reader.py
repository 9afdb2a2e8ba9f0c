"""The customer 360 reader: one statement for every part, the same answers as the services."""

from __future__ import annotations

import uuid
from datetime import timedelta

from cdlm.consent import service as consent
from cdlm.consent.models import Decision
from cdlm.core import clock
from cdlm.core.identifiers import IdentifierKind
from cdlm.core.principal import SYSTEM
from cdlm.customer360 import reader
from cdlm.customer360.values import EventWindow, Parts
from cdlm.customers import rights
from cdlm.customers.events import EventIngest, ingest_events
from cdlm.customers.models import Customer, Event
from cdlm.matching import merge as merging
from cdlm.vault.service import Vault
from tests.consent.test_consent import make_purpose
from tests.factories import make_customer
from tests.support.sql_counter import StatementRecorder

EVERYTHING = Parts(
    profile=True,
    identities=True,
    consents=True,
    events=frozenset({EventWindow(2), EventWindow(10, type="purchase")}),
)


async def _person(vault: Vault, email: str, **more: str) -> uuid.UUID:
    made = await make_customer(vault, email=email, external_ids=[f"crm:{email}"], **more)
    return made.customer_id


async def _grant(vault: Vault, customer_id: uuid.UUID) -> None:
    await consent.record(
        SYSTEM,
        vault,
        consent.ConsentRecording(
            customer_id,
            [consent.Choice("newsletter", Decision.GRANTED, 1)],
            consent.Capture(consent.Method.FORM),
        ),
    )


async def _events(vault: Vault, customer_id: uuid.UUID) -> None:
    start = clock.now() - timedelta(days=10)
    items = [
        EventIngest(
            type="purchase" if n % 2 else "page_view",
            occurred_at=start + timedelta(days=n),
            source_system="shop",
            customer_id=customer_id,
            properties={"n": n},
            external_id=f"{customer_id}-{n}",
        )
        for n in range(5)
    ]
    await ingest_events(SYSTEM, vault, items)


async def test_every_part_in_one_statement(vault: Vault, sql: StatementRecorder) -> None:
    ada = await _person(vault, "ada@example.com", given_name="Ada", city="Leeds")
    await make_purpose("newsletter")
    await _grant(vault, ada)
    await _events(vault, ada)
    await reader.read(vault, [ada], EVERYTHING)  # data key cached, row types introspected
    with sql.recording():
        found = await reader.read(vault, [ada], EVERYTHING)
    assert sql.count == 1
    read = found[ada]
    assert read.profile == {"given_name": "Ada", "email": "ada@example.com", "city": "Leeds"}
    assert read.identities is not None
    assert {(i.kind, i.value) for i in read.identities} == {
        (IdentifierKind.EMAIL, "ada@example.com"),
        (IdentifierKind.EXTERNAL_ID, "ada@example.com"),
    }
    assert [e.properties for e in read.events[EventWindow(2)]] == [{"n": 4}, {"n": 3}, {"n": 2}]
    purchases = read.events[EventWindow(10, type="purchase")]
    assert [e.properties for e in purchases] == [{"n": 3}, {"n": 1}]
    expected = (await consent.answers([ada], await consent.all_purposes()))[ada]
    assert read.consents is not None
    assert (
        [(a.purpose.code, a.permitted, a.restricted) for a in read.consents]
        == [(a.purpose.code, a.permitted, a.restricted) for a in expected]
        == [("newsletter", True, False)]
    )


async def test_a_merged_id_gives_its_survivor_and_erased_or_unknown_give_nothing(
    vault: Vault,
) -> None:
    first = await _person(vault, "one@example.com")
    second = await _person(vault, "two@example.com")
    gone = await _person(vault, "gone@example.com")
    await merging.merge(SYSTEM, vault, merging.MergeInput(first, second, "The same person."))
    await Customer.filter(id=gone).update(erased_at=clock.now())
    found = await reader.read(vault, [first, second, gone, uuid.uuid4()], Parts(profile=True))
    assert set(found) == {first, second}
    assert found[second].customer.id == first
    assert found[first] is found[second]


async def test_restriction_is_in_the_consent_answers(vault: Vault) -> None:
    customer = await _person(vault, "rae@example.com")
    await make_purpose("newsletter")
    await _grant(vault, customer)
    await rights.restrict(customer)
    answers = (await reader.read(vault, [customer], Parts(consents=True)))[customer].consents
    assert answers is not None
    assert [(a.permitted, a.restricted) for a in answers] == [(False, True)]
    assert answers[0].latest is not None
    assert answers[0].latest.decision is Decision.GRANTED


async def test_a_shredded_key_leaves_the_clear_columns_only(vault: Vault) -> None:
    customer = await _person(vault, "shred@example.com", given_name="Sam")
    await _events(vault, customer)
    await vault.shred(customer)
    read = (await reader.read(vault, [customer], EVERYTHING))[customer]
    assert read.profile == {}
    assert read.identities is not None
    assert {i.value for i in read.identities} == {None}
    assert read.events[EventWindow(2)]
    assert all(e.properties is None for e in read.events[EventWindow(2)])


async def test_a_page_after_a_cursor_continues_where_the_last_ended(vault: Vault) -> None:
    customer = await _person(vault, "pages@example.com")
    await _events(vault, customer)
    first = (await reader.read(vault, [customer], Parts(events=frozenset({EventWindow(2)}))))[
        customer
    ].events[EventWindow(2)]
    last = first[1]
    after = EventWindow(2, after=(last.occurred_at, last.id))
    rest = (await reader.read(vault, [customer], Parts(events=frozenset({after}))))[customer]
    assert [e.properties for e in rest.events[after]] == [{"n": 2}, {"n": 1}, {"n": 0}]


async def test_nothing_asked_reads_nothing(vault: Vault, sql: StatementRecorder) -> None:
    with sql.recording():
        assert await reader.read(vault, [], Parts(profile=True)) == {}
    assert sql.count == 0


async def test_a_page_of_events_not_read_ahead_is_read_when_asked(vault: Vault) -> None:
    from cdlm.core.roles import Role
    from cdlm.customers.api.types import CustomerNode

    customer = await _person(vault, "late@example.com")
    await _events(vault, customer)
    read = (await reader.read(vault, [customer], Parts()))[customer]
    node = CustomerNode.of(read, Role.ADMIN, vault)
    later = node.events(first=2)  # not read ahead: the resolver hands back a read to await
    page = await later  # type: ignore[misc]
    assert [e.node.properties for e in page.edges] == [{"n": 4}, {"n": 3}]
    assert page.page_info.has_next_page
    oldest = await node.events(last=2)  # type: ignore[misc]
    assert [e.node.properties for e in oldest.edges] == [{"n": 1}, {"n": 0}]
    info = oldest.page_info
    assert (info.has_previous_page, info.has_next_page) == (True, False)
    assert info.start_cursor == oldest.edges[0].cursor()


async def test_a_window_counted_back_reads_oldest_first_from_the_end_or_a_cursor(
    vault: Vault,
) -> None:
    customer = await _person(vault, "back@example.com")
    await _events(vault, customer)
    end = EventWindow(2, backwards=True)
    read = (await reader.read(vault, [customer], Parts(events=frozenset({end}))))[customer]
    # One more than the page, oldest first: the API shows the page newest first.
    assert [e.properties for e in read.events[end]] == [{"n": 0}, {"n": 1}, {"n": 2}]
    newest = read.events[end][1]
    before = EventWindow(2, before=(newest.occurred_at, newest.id), backwards=True)
    purchases = EventWindow(5, type="purchase", backwards=True)
    again = (await reader.read(vault, [customer], Parts(events=frozenset({before, purchases}))))[
        customer
    ]
    assert [e.properties for e in again.events[before]] == [{"n": 2}, {"n": 3}, {"n": 4}]
    assert [e.properties for e in again.events[purchases]] == [{"n": 1}, {"n": 3}]


async def test_events_by_id_with_their_owners_and_none_of_an_erased_customer(
    vault: Vault,
) -> None:
    kept = await _person(vault, "kept@example.com")
    gone = await _person(vault, "gone@example.com")
    shredded = await _person(vault, "shredded@example.com")
    for customer in (kept, gone, shredded):
        await _events(vault, customer)
    ids = {
        customer: (await Event.filter(customer_id=customer).order_by("occurred_at").first())
        for customer in (kept, gone, shredded)
    }
    await Customer.filter(id=gone).update(erased_at=clock.now())
    await vault.shred(shredded)
    unknown = uuid.uuid4()
    asked = [row.id for row in ids.values() if row is not None] + [unknown]
    found = await reader.events(vault, asked)
    kept_event = ids[kept]
    shredded_event = ids[shredded]
    assert kept_event is not None
    assert shredded_event is not None
    assert set(found) == {kept_event.id, shredded_event.id}
    owner, value = found[kept_event.id]
    assert (owner, value.properties, value.type) == (kept, {"n": 0}, "page_view")
    assert found[shredded_event.id][0] == shredded
    assert found[shredded_event.id][1].properties is None
    assert await reader.events(vault, []) == {}

"""A small hand-built installation for the dashboard and report tests (see
:func:`installation`), built through the real services where they exist."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from tortoise.transactions import in_transaction

from cdlm.consent import service as consent
from cdlm.consent.models import Decision, Mechanism, Method
from cdlm.core import clock
from cdlm.core.identifiers import IdentifierKind
from cdlm.core.jurisdictions import RULES, Jurisdiction
from cdlm.core.principal import SYSTEM
from cdlm.core.vocabulary import LawfulBasis, SourceKind
from cdlm.customers.events import EventIngest, store_events
from cdlm.customers.models import Customer
from cdlm.dsr.models import DataSubjectRequest, FiledVia, RequestType
from cdlm.dsr.workflow import Status
from cdlm.retention.models import Action, SweepEvidence, SweepRun, Trigger
from cdlm.vault.service import Vault
from tests.factories import make_customer, source

DAY1 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY1 + timedelta(days=2)
END = DAY1 + timedelta(days=3)


async def customer_at(
    vault: Vault, at: datetime, system: str, email: str, **more: str | None
) -> uuid.UUID:
    kind = SourceKind.WEB_FORM if system == "webshop" else SourceKind.CRM
    with clock.frozen_at(at):
        made = await make_customer(
            vault,
            origin=source(system, kind, basis=LawfulBasis.CONTRACT),
            email=email,
            **more,  # type: ignore[arg-type]
        )
    return made.customer_id


def event(customer: uuid.UUID, kind: str, at: datetime, amount: str | None = None,
           currency: str | None = None) -> EventIngest:  # fmt: skip
    return EventIngest(
        type=kind,
        occurred_at=at,
        source_system="shop",
        customer_id=customer,
        amount=Decimal(amount) if amount is not None else None,
        currency=currency,
    )


async def store(vault: Vault, events: list[EventIngest]) -> None:
    async with in_transaction():
        result, _ = await store_events(vault, events)
    assert not result.rejected, result.rejected


async def decide(vault: Vault, customer: uuid.UUID, decision: Decision, at: datetime) -> None:
    with clock.frozen_at(at):
        await consent.record(
            SYSTEM,
            vault,
            consent.ConsentRecording(
                customer,
                [consent.Choice("newsletter", decision, 1)],
                consent.Capture(Method.FORM),
            ),
        )


async def purposes() -> None:
    for code, mechanism, basis in (
        ("newsletter", Mechanism.OPT_IN, LawfulBasis.CONSENT),
        ("partners", Mechanism.OPT_OUT, LawfulBasis.LEGITIMATE_INTERESTS),
    ):
        await consent.create_purpose(
            SYSTEM,
            consent.PurposeDefinition(
                code=code,
                name=code.title(),
                description=f"About {code}.",
                lawful_basis=basis,
                mechanism=mechanism,
                data_use="marketing.communications.email",
                data_categories=["user.contact.email"],
                sale_or_sharing=False,
                notice_text=f"We use your email for {code}.",
                recipients=[],
            ),
        )


async def request(
    received: datetime,
    due: datetime,
    status: Status = Status.RECEIVED,
    completed: datetime | None = None,
) -> None:
    await DataSubjectRequest.create(
        id=uuid.uuid4(),
        type=RequestType.ACCESS,
        jurisdiction=Jurisdiction.GDPR,
        status=status,
        filed_via=FiledVia.STAFF,
        subject_kind=IdentifierKind.EMAIL,
        subject_index="0" * 64,
        received_at=received,
        updated_at=completed or received,
        completed_at=completed,
        clock_rule=RULES[Jurisdiction.GDPR].to_json(),
        due_at=due,
        filed_by_kind="system",
    )


async def sweep(as_of: datetime, disposed: dict[str, int]) -> None:
    run = await SweepRun.create(
        id=uuid.uuid4(), as_of=as_of, started_at=as_of, finished_at=as_of, started_by_kind="system"
    )
    for category, n in disposed.items():
        await SweepEvidence.create(
            id=uuid.uuid4(),
            run=run,
            policy_id=uuid.uuid4(),
            category=category,
            action=Action.DELETE,
            trigger=Trigger.SINCE_COLLECTION,
            period_days=30,
            cutoff=as_of,
            disposed=n,
            digest="0" * 64,
            done=True,
        )


async def scores(given: dict[uuid.UUID, float]) -> None:
    for customer, score in given.items():
        await Customer.filter(id=customer).update(quality_score=score)


class Installation:
    """The hand-built fixture (see :func:`installation`)."""

    a: uuid.UUID
    b: uuid.UUID
    c: uuid.UUID
    d: uuid.UUID
    e: uuid.UUID


@pytest.fixture
async def installation(vault: Vault) -> Installation:
    """Five customers around 2-4 March 2026 (three UTC days, DAY1 a Monday):

    - A (webshop, DAY1 10:00): page.view DAY1; purchases DAY2 of 20.00 EUR and 10 USD (rate
      0.5), DAY3 of 7 JPY (no rate); page.view at END (outside the half-open period);
      grants newsletter DAY1 10:30.
    - B (crm, DAY1 12:00): page.view DAY3; grants newsletter DAY1 13:00, withdraws DAY2.
    - C (crm, DAY2): purchase of 100 EUR DAY2, grants DAY2; then restricted: never counted.
    - D (crm, the day before DAY1): page.view DAY1; granted newsletter before the period.
    - E (crm, DAY2 08:00): nothing else.
    """
    await purposes()
    found = Installation()
    found.d = await customer_at(vault, DAY1 - timedelta(hours=20), "crm", "d@example.com")
    found.a = await customer_at(
        vault, DAY1 + timedelta(hours=10), "webshop", "a@example.com", given_name="Quillonia"
    )
    found.b = await customer_at(vault, DAY1 + timedelta(hours=12), "crm", "b@example.com")
    found.c = await customer_at(vault, DAY2 + timedelta(hours=1), "crm", "c@example.com")
    found.e = await customer_at(vault, DAY2 + timedelta(hours=8), "crm", "e@example.com")
    await store(
        vault,
        [
            event(found.a, "page.view", DAY1 + timedelta(hours=11)),
            event(found.a, "purchase", DAY2 + timedelta(hours=9), "20.00", "EUR"),
            event(found.a, "purchase", DAY2 + timedelta(hours=10), "10.00", "USD"),
            event(found.a, "purchase", DAY3 + timedelta(hours=9), "7.00", "JPY"),
            event(found.a, "page.view", END),
            event(found.b, "page.view", DAY3 + timedelta(hours=8)),
            event(found.c, "purchase", DAY2 + timedelta(hours=2), "100.00", "EUR"),
            event(found.d, "page.view", DAY1 + timedelta(hours=1)),
        ],
    )
    await decide(vault, found.d, Decision.GRANTED, DAY1 - timedelta(hours=10))
    await decide(vault, found.a, Decision.GRANTED, DAY1 + timedelta(hours=10, minutes=30))
    await decide(vault, found.b, Decision.GRANTED, DAY1 + timedelta(hours=13))
    await decide(vault, found.c, Decision.GRANTED, DAY2 + timedelta(hours=3))
    await decide(vault, found.b, Decision.WITHDRAWN, DAY2 + timedelta(hours=12))
    await Customer.filter(id=found.c).update(restricted_at=DAY3)
    # Requests: on time, late, open, denied (closed but not completed).
    await request(DAY1 + timedelta(hours=9), DAY1 + timedelta(days=30), Status.COMPLETED, DAY2)
    await request(
        DAY1 - timedelta(days=40), DAY2, Status.COMPLETED, DAY3 + timedelta(hours=1)
    )  # due DAY2 00:00, completed DAY3: late
    await request(DAY3 + timedelta(hours=5), DAY3 + timedelta(days=30))
    await request(DAY2 + timedelta(hours=5), DAY2 + timedelta(days=30), Status.DENIED, DAY3)
    await sweep(DAY2 + timedelta(hours=2), {"events": 5, "profiles": 2})
    await sweep(END + timedelta(hours=2), {"events": 9})
    return found

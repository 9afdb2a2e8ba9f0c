"""Demo data for exploring cdlm in GraphiQL: fictional customers and everything around them.

``cdlm seed-demo`` fills an empty installation (never a production one) with a purposes
catalog, retention policies, customers from several sources with events and consent
decisions, a legal hold and data subject requests in different states. Everything goes
through the same services the API uses, so it is validated, encrypted and audited, and the
same seed gives the same people.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from cdlm.auth.settings import AuthSettings
from cdlm.config import Settings
from cdlm.consent import service as consent
from cdlm.consent.models import Decision, Mechanism, Method
from cdlm.core import clock
from cdlm.core.errors import Conflict
from cdlm.core.identifiers import IdentifierKind
from cdlm.core.principal import SYSTEM
from cdlm.core.vocabulary import LawfulBasis, LifecycleStage, SourceKind
from cdlm.customers import service as customers
from cdlm.customers.events import EventIngest, ingest_events
from cdlm.customers.ingest import CustomerIngest, Source, ingest_one
from cdlm.dsr import intake
from cdlm.dsr.models import RequestType, VerificationMethod
from cdlm.dsr.notifier import Notifier
from cdlm.retention import policies
from cdlm.retention import service as retention
from cdlm.retention.models import Action, Trigger
from cdlm.vault.service import Vault

GIVEN = ["Ada", "Grace", "Alan", "Katherine", "Tim", "Margaret", "Linus", "Barbara",
         "Edsger", "Frances", "Dennis", "Radia", "Ken", "Hedy", "Sophie", "Mary"]  # fmt: skip
FAMILY = ["Lovelace", "Hopper", "Turing", "Johnson", "Berners-Lee", "Hamilton", "Torvalds",
          "Liskov", "Dijkstra", "Allen", "Ritchie", "Perlman", "Thompson", "Lamarr", "Backus",
          "Wilson", "Shannon", "Keller"]  # fmt: skip
CITIES = [("London", "SW1A 1AA"), ("Manchester", "M1 1AE"), ("Leeds", "LS1 1UR"),
          ("Bristol", "BS1 4DJ"), ("Glasgow", "G1 1XQ"), ("Cardiff", "CF10 1EP")]  # fmt: skip
SOURCES = [
    ("crm", SourceKind.CRM, LawfulBasis.CONTRACT),
    ("webshop", SourceKind.WEB_FORM, LawfulBasis.CONSENT),
    ("helpdesk", SourceKind.SUPPORT, LawfulBasis.LEGITIMATE_INTERESTS),
]
EVENT_TYPES = ["page.view", "product.view", "cart.update", "purchase", "email.open"]

PURPOSES = [
    ("newsletter", "Newsletter", LawfulBasis.CONSENT, Mechanism.OPT_IN,
     "marketing.communications.email", ["user.contact.email", "user.name"], False),
    ("partners", "Sharing with partners", LawfulBasis.LEGITIMATE_INTERESTS, Mechanism.OPT_OUT,
     "third_party_sharing", ["user.contact", "user.behavior.purchase_history"], True),
    ("service-mail", "Service messages", LawfulBasis.CONTRACT, Mechanism.NOTICE_ONLY,
     "essential.service.notifications", ["user.contact.email"], False),
    ("analytics", "Product analytics", LawfulBasis.LEGITIMATE_INTERESTS, Mechanism.NOTICE_ONLY,
     "analytics.reporting", ["user.behavior"], False),
]  # fmt: skip

POLICIES = [
    ("events.page.view", 365, Trigger.SINCE_COLLECTION, Action.DELETE),
    ("events", 1095, Trigger.SINCE_COLLECTION, Action.ANONYMIZE),
    ("events.purchase", 3650, Trigger.SINCE_COLLECTION, Action.ARCHIVE),
    ("customers.inactive", 1095, Trigger.SINCE_LAST_ACTIVITY, Action.DELETE),
    ("dsr.exports", 30, Trigger.SINCE_COLLECTION, Action.DELETE),
    ("dsr.verification_codes", 30, Trigger.SINCE_COLLECTION, Action.DELETE),
    ("dsr.requests", 1095, Trigger.SINCE_REQUEST_COMPLETION, Action.CRYPTO_SHRED),
    ("notifications", 90, Trigger.SINCE_COLLECTION, Action.DELETE),
    ("idempotency_records", 30, Trigger.SINCE_COLLECTION, Action.DELETE),
    ("rate_limit_counters", 2, Trigger.SINCE_COLLECTION, Action.DELETE),
]


@dataclass(frozen=True)
class Seeded:
    """What the demo created."""

    customers: int
    events: int
    consent_decisions: int
    requests: int


class AlreadySeeded(Conflict):
    """The installation already holds customers."""


async def seed_demo(
    vault: Vault,
    auth: AuthSettings,
    settings: Settings,
    notifier: Notifier,
    *,
    count: int = 200,
    seed: int = 7,
) -> Seeded:
    """Fill an empty installation with demo data (refused when customers exist)."""
    if await customers.count() > 0 or await consent.all_purposes() or await policies.all_policies():
        raise AlreadySeeded(
            "This installation already has customers, purposes or retention policies; "
            "demo data goes in an empty one."
        )
    chooser = random.Random(seed)  # noqa: S311 (fictional demo data, not secrets)
    await _catalog()
    people = [await _customer(vault, chooser, number) for number in range(count)]
    events = await _events(vault, chooser, people)
    decisions = await _consents(vault, chooser, people)
    requests = await _requests(vault, auth, settings, notifier, people)
    if people:
        await retention.place_hold(
            SYSTEM, reason="Demo: a disputed invoice", customer_id=people[-1][0]
        )
    return Seeded(len(people), events, decisions, requests)


async def _catalog() -> None:
    for code, name, basis, mechanism, use, categories, sold in PURPOSES:
        await consent.create_purpose(
            SYSTEM,
            consent.PurposeDefinition(
                code=code,
                name=name,
                description=f"{name} (demo purpose).",
                lawful_basis=basis,
                mechanism=mechanism,
                data_use=use,
                data_categories=categories,
                sale_or_sharing=sold,
                notice_text=f"We use your data for: {name.lower()}.",
                recipients=["Advertising partners (fictional)"] if sold else [],
            ),
        )
    for category, days, trigger, action in POLICIES:
        await policies.create_policy(
            SYSTEM, category=category, period_days=days, trigger=trigger, action=action
        )


async def _customer(vault: Vault, chooser: random.Random, number: int) -> tuple[uuid.UUID, str]:
    given, family = chooser.choice(GIVEN), chooser.choice(FAMILY)
    city, postal_code = chooser.choice(CITIES)
    email = f"{given}.{family}.{number}@example.com".lower().replace("-", "")
    system, kind, basis = chooser.choice(SOURCES)
    collected = clock.now() - timedelta(days=chooser.randrange(1, 900))
    ingested = await ingest_one(
        SYSTEM,
        vault,
        CustomerIngest(
            source=Source(system, kind, collected, basis, "essential.service"),
            profile={
                "given_name": given,
                "family_name": family,
                "email": email,
                "phone": f"+44 7911 {100000 + number}",
                "address_line1": f"{chooser.randrange(1, 200)} High Street",
                "city": city,
                "postal_code": postal_code,
                "country": "GB",
                "birth_date": _birth_date(chooser, number),
            },
            external_ids=[f"{system}:{10000 + number}"],
            lifecycle_stage=chooser.choice(list(LifecycleStage)),
        ),
    )
    return ingested.result.customer_id, email


def _birth_date(chooser: random.Random, number: int) -> str:
    if number % 10 == 9:
        return "1990-02-30"  # one in ten is impossible: validation refuses it, as in life
    year, month, day = (
        chooser.randrange(1950, 2000),
        chooser.randrange(1, 13),
        chooser.randrange(1, 29),
    )
    return f"{year}-{month:02d}-{day:02d}"


async def _events(vault: Vault, chooser: random.Random, people: list[tuple[uuid.UUID, str]]) -> int:
    """Each person's events, taken in when they last happened: older ones are due for the
    retention policies, so a sweep has something to do."""
    now = clock.now()
    stored = 0
    for customer_id, _ in people:
        items = []
        for _ in range(chooser.randrange(3, 15)):
            event_type = chooser.choice(EVENT_TYPES)
            purchase = event_type == "purchase"
            items.append(
                EventIngest(
                    type=event_type,
                    occurred_at=now - timedelta(minutes=chooser.randrange(5, 500 * 24 * 60)),
                    source_system="webshop",
                    channel="web",
                    customer_id=customer_id,
                    amount=Decimal(chooser.randrange(500, 20000)) / 100 if purchase else None,
                    currency="GBP" if purchase else None,
                    properties={"path": f"/products/{chooser.randrange(1, 60)}"},
                )
            )
        collected = max(item.occurred_at for item in items) + timedelta(minutes=1)
        with clock.frozen_at(collected):
            result, _ = await ingest_events(SYSTEM, vault, items)
        stored += len(result.accepted)
    return stored


async def _consents(
    vault: Vault, chooser: random.Random, people: list[tuple[uuid.UUID, str]]
) -> int:
    decisions = 0
    for customer_id, _ in people:
        choices = []
        if chooser.random() < 0.6:
            choices.append(consent.Choice("newsletter", Decision.GRANTED, 1))
        if chooser.random() < 0.2:
            choices.append(consent.Choice("partners", Decision.DENIED))
        if choices:
            recording = consent.ConsentRecording(customer_id, choices, consent.Capture(Method.FORM))
            await consent.record(SYSTEM, vault, recording)
            decisions += len(choices)
    return decisions


async def _requests(
    vault: Vault,
    auth: AuthSettings,
    settings: Settings,
    notifier: Notifier,
    people: list[tuple[uuid.UUID, str]],
) -> int:
    """An access request to handle, an overdue erasure and a request waiting for its code."""
    if len(people) < 3:
        return 0
    filings = [
        intake.Filing(
            RequestType.ACCESS,
            intake.Subject(IdentifierKind.EMAIL, people[0][1]),
            VerificationMethod.SIGNED_IN_ACCOUNT,
        ),
        intake.Filing(
            RequestType.ERASURE,
            intake.Subject(IdentifierKind.EMAIL, people[1][1]),
            VerificationMethod.IDENTITY_DOCUMENT,
            received_at=clock.now() - timedelta(days=40),
        ),
    ]
    for filing in filings:
        await intake.file_request(SYSTEM, vault, settings, notifier, filing)
    await intake.submit(
        vault,
        auth,
        settings,
        notifier,
        intake.RequestSubmission(
            RequestType.OPT_OUT_OF_SALE,
            intake.Subject(IdentifierKind.EMAIL, people[2][1]),
            client_address="demo",
        ),
    )
    return len(filings) + 1

"""The data set of ``bench.read_path``, loaded through cdlm's own code.

Run as a separate process by ``bench.read_path`` against a migrated database, with the source
tree of the release whose migrations made it (``DATABASE_URL``, ``CDLM_MASTER_KEY_FILE`` and the
other settings come from the environment, as for ``cdlm``). It is the only module of the read
path benchmark that imports cdlm, and it runs with the *baseline* release's source tree (so
the imports below name that release's modules, not this one's).

Three stages, each a process run as ``python -m bench.read_path_load STAGE``; customers and
events can be split in parts loaded side by side (``--part``/``--parts``). What it loads,
deterministically (fixed seeds):

- ``--customers`` people with a full profile (name, email, phone, birth date, address) and an
  external id, through ``ingest_batch`` (the importer's code path: validated, resolved, sealed
  under per-customer data keys, identities with blind indexes), 1,000 a transaction;
- three purposes (``create_purpose``) and one decision per person and purpose, made by form with
  sealed evidence (user agent, keyed IP digest) as ``recordConsent`` seals it, chained with the
  product's ledger hash and copied into the ledger in order (the links are checked afterwards);
- ``--events`` events spread over the customers (about 10 each), through ``store_events`` (the
  ``ingestEvents`` code path: checked, properties sealed, copied in), 1,000 a transaction.

Each prints one JSON object: its count and seconds. The customers stage writes the ids it
created to ``--ids`` (one a line); the other stages read all the ids, in order, from there.
"""

# ruff: noqa: I001  (the baseline tree's modules are unknown to this tree's import sorter)
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

# ---- every cdlm import of the benchmark (the baseline release's module paths) -----------------
from cdlm import chain
from cdlm.auth.principal import SYSTEM
from cdlm.config import load_settings
from cdlm.consent import service as consent
from cdlm.consent.models import Decision, Mechanism, Method
from cdlm.customers.events import EventIngest, store_events
from cdlm.customers.ingest import CustomerIngest, Source, ingest_batch
from cdlm.customers.models import LawfulBasis, LifecycleStage, SourceKind
from cdlm.db.lifecycle import close_orm, init_orm
from cdlm.vault.keys import provider_from_settings
from cdlm.vault.service import Vault

# -----------------------------------------------------------------------------------------------

SEED = 20261201
CUSTOMER_BATCH = 1000
EVENT_BATCH = 1000  # the most one ingestEvents batch takes
CONSENT_COPY = 30_000

GIVEN = ["Olivia", "Amelia", "Isla", "Ava", "Mia", "Ivy", "Lily", "Isabella", "Rosie", "Sophia",
         "Noah", "Oliver", "George", "Arthur", "Muhammad", "Leo", "Harry", "Oscar", "Archie",
         "Henry", "Theodore", "Freddie", "Jack", "Charlie", "Thomas", "Alfie", "Grace", "Freya",
         "Florence", "Willow", "Evie", "Poppy", "Elsie", "Ella", "Sienna", "Aisha", "Priya",
         "Kwame", "Wei", "Mateusz"]  # fmt: skip
FAMILY = ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
          "Patel", "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts",
          "Green", "Hall", "Thomas", "Clarke", "Jackson", "Wood", "Harris", "Edwards", "Turner",
          "Martin", "Cooper", "Hill", "Ward", "Hughes", "Moore", "Clark", "King", "Harrison",
          "Lewis", "Baker", "Lee", "Allen", "Morris", "Khan", "Scott", "Watson", "Davis",
          "Parker", "James", "Bennett", "Young", "Phillips", "Richardson", "Mitchell"]  # fmt: skip
CITIES = [("London", "SW1A 1AA"), ("London", "EC1A 1BB"), ("Manchester", "M1 1AE"),
          ("Leeds", "LS1 1UR"), ("Bristol", "BS1 4DJ"), ("Glasgow", "G1 1XQ"),
          ("Cardiff", "CF10 1EP"), ("Birmingham", "B1 1BB"), ("Liverpool", "L1 8JQ"),
          ("Edinburgh", "EH1 1YZ"), ("Newcastle upon Tyne", "NE1 4ST"),
          ("Sheffield", "S1 2HH")]  # fmt: skip
STREETS = ["High Street", "Station Road", "Church Lane", "Victoria Road", "Green Lane",
           "Manor Road", "Park Avenue", "Queens Road", "New Street", "Mill Lane"]  # fmt: skip
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.co.uk"]
EVENT_TYPES = ["page.viewed", "product.viewed", "cart.updated", "order.placed", "email.opened"]
CHANNELS = ["web", "mobile", "email", "store"]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 Version/18.1 Safari",
]
#: The three purposes every person decides about: (code, name, basis, mechanism, data use,
#: categories, sale or sharing, share of people granting).
PURPOSES = [
    ("newsletter", "Newsletter", LawfulBasis.CONSENT, Mechanism.OPT_IN,
     "marketing.communications.email", ["user.contact.email", "user.name"], False, 0.6),
    ("partners", "Sharing with partners", LawfulBasis.LEGITIMATE_INTERESTS, Mechanism.OPT_OUT,
     "third_party_sharing", ["user.contact", "user.behavior.purchase_history"], True, 0.7),
    ("offers", "Personalised offers", LawfulBasis.CONSENT, Mechanism.OPT_IN,
     "marketing.advertising.first_party.targeted", ["user.behavior"], False, 0.4),
]  # fmt: skip
CONSENT_COLUMNS = [
    "id", "customer_id", "purpose_id", "decision", "notice_version", "method", "channel",
    "decided_at", "recorded_at", "evidence_sealed", "actor_kind", "actor_id", "prev_hash", "hash",
    "key_id",
]  # fmt: skip


def person(number: int) -> CustomerIngest:
    """Person ``number`` (below a million): unique email, phone and external id, so nobody
    matches anybody."""
    chooser = random.Random(SEED * 1_000_003 + number)
    given, family = chooser.choice(GIVEN), chooser.choice(FAMILY)
    city, postal_code = chooser.choice(CITIES)
    birth = datetime(1940, 1, 1) + timedelta(days=chooser.randrange(365 * 65))
    profile: dict[str, str | None] = {
        "given_name": given,
        "family_name": family,
        "email": f"{given}.{family}.{number}@{chooser.choice(DOMAINS)}".lower(),
        "phone": f"+44 7400 {number:06d}",
        "birth_date": birth.date().isoformat(),
        "address_line1": f"{chooser.randrange(1, 300)} {chooser.choice(STREETS)}",
        "address_line2": f"Flat {chooser.randrange(1, 40)}" if chooser.random() < 0.3 else None,
        "city": city,
        "region": None,
        "postal_code": postal_code,
        "country": "GB",
    }
    collected = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=chooser.randrange(500_000))
    return CustomerIngest(
        source=Source("crm", SourceKind.CRM, collected, LawfulBasis.CONTRACT, "essential.service"),
        profile={k: v for k, v in profile.items() if v is not None},
        external_ids=[f"crm:{1_000_000 + number}"],
        lifecycle_stage=chooser.choice(list(LifecycleStage)),
    )


def part(count: int, number: int, parts: int) -> range:
    """The positions of part ``number`` of ``parts`` (loaded by processes side by side)."""
    return range(count * number // parts, count * (number + 1) // parts)


async def load_customers(vault: Vault, people: range) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for start in range(people.start, people.stop, CUSTOMER_BATCH):
        records = [person(n) for n in range(start, min(people.stop, start + CUSTOMER_BATCH))]
        async with in_transaction():
            results = await ingest_batch(vault, records)
        for result in results:
            if isinstance(result, Exception):
                raise SystemExit(f"a synthetic person was refused: {result}")
            if result.outcome.value != "created" or result.issues:
                raise SystemExit(f"a synthetic person did not load cleanly: {result}")
            ids.append(result.customer_id)
    return ids


async def load_consents(vault: Vault, ids: list[uuid.UUID]) -> int:
    """One decision per person and purpose, as ``recordConsent`` by form would append them."""
    purposes = {}
    for code, name, basis, mechanism, use, categories, sold, _ in PURPOSES:
        purposes[code] = await consent.create_purpose(
            SYSTEM,
            code=code,
            name=name,
            description=f"{name} (benchmark purpose).",
            lawful_basis=basis,
            mechanism=mechanism,
            data_use=use,
            data_categories=categories,
            sale_or_sharing=sold,
            notice_text=f"We use your data for: {name.lower()}.",
            recipients=["Advertising partners (fictional)"] if sold else [],
        )
    chooser = random.Random(SEED + 1)
    keys: dict[uuid.UUID, bytes] = {}
    for start in range(0, len(ids), 10_000):
        keys.update(await vault.customer_keys(ids[start : start + 10_000]))
    client = get_connection("default")
    previous = chain.GENESIS_HASH
    rows: list[tuple[Any, ...]] = []
    decided = datetime.now(UTC) - timedelta(days=1)
    written = 0
    for position, customer_id in enumerate(ids):
        at = decided + timedelta(microseconds=position * 100)
        evidence = vault.seal(
            keys[customer_id],
            customer_id,
            "consent-evidence",
            {
                "user_agent": chooser.choice(USER_AGENTS),
                "ip_digest": vault.blind_index("ip", f"203.0.113.{chooser.randrange(1, 255)}"),
            },
        )
        for code, *_, granting in PURPOSES:
            granted = chooser.random() < granting
            # The attributes of a ConsentEntry, hashed by the ledger's own content and hash
            # functions (a plain object: building 300,000 ORM objects costs a minute).
            entry = SimpleNamespace(
                id=uuid.uuid4(),
                customer_id=customer_id,
                purpose_id=purposes[code].id,
                decision=Decision.GRANTED if granted else Decision.DENIED,
                notice_version=1 if granted else None,
                method=Method.FORM,
                channel="web",
                decided_at=at,
                recorded_at=at,
                evidence_sealed=evidence,
                actor_kind=SYSTEM.kind.value,
                actor_id=SYSTEM.id,
                prev_hash=previous,
            )
            entry.key_id, entry.hash = chain.keyring().sign(consent.content_of(entry), previous)  # type: ignore[arg-type]
            previous = entry.hash
            rows.append(tuple(_db_value(getattr(entry, column)) for column in CONSENT_COLUMNS))
        if len(rows) >= CONSENT_COPY or position == len(ids) - 1:
            # The ledger's sequence is given by the order of the rows (COPY appends in order).
            async with client.acquire_connection() as connection:
                await connection.copy_records_to_table(
                    "consent_entries", records=rows, columns=CONSENT_COLUMNS
                )
            written += len(rows)
            rows = []
    # Each entry names the hash of the entry before it in the ledger's order (the hashes
    # themselves are the product's; its full verification would read 300,000 ORM objects).
    broken = await client.execute_query_dict(
        'SELECT count(*) AS n FROM (SELECT "prev_hash", lag("hash", 1, $1) '
        'OVER (ORDER BY "sequence") AS "before" FROM "consent_entries") AS links '
        'WHERE "prev_hash" <> "before"',
        [chain.GENESIS_HASH],
    )
    if broken[0]["n"]:
        raise SystemExit(f"the consent ledger is out of order ({broken[0]['n']} links broken)")
    return written


def _db_value(value: Any) -> Any:
    return value.value if isinstance(value, Decision | Method) else value


async def load_events(vault: Vault, ids: list[uuid.UUID], count: int, customers: range) -> int:
    """Of ``count`` events, each for a customer drawn at random, those of ``customers`` (by
    position in ``ids``), taken in customer by customer."""
    draw = random.Random(SEED + 2)
    per_customer = Counter(draw.randrange(len(ids)) for _ in range(count))
    start = datetime.now(UTC) - timedelta(days=730)
    span = 729 * 86_400
    stored = 0
    batch: list[EventIngest] = []
    for position in customers:
        chooser = random.Random((SEED + 3) * 1_000_003 + position)
        for number in range(per_customer.get(position, 0)):
            kind = chooser.choice(EVENT_TYPES)
            order = kind == "order.placed"
            batch.append(
                EventIngest(
                    type=kind,
                    occurred_at=start + timedelta(seconds=chooser.randrange(span)),
                    source_system="web-shop",
                    channel=chooser.choice(CHANNELS),
                    customer_id=ids[position],
                    amount=Decimal(chooser.randrange(100, 50_000)) / 100 if order else None,
                    currency="GBP" if order else None,
                    properties={
                        "page": f"/p/{chooser.randrange(5000)}",
                        "session": f"s-{position}-{number // 7}",
                        "referrer": chooser.choice(["search", "email", "direct", "social"]),
                    },
                    external_id=f"evt-{position}-{number}",
                )
            )
            if len(batch) == EVENT_BATCH:
                stored += await _store(vault, batch)
                batch = []
    if batch:
        stored += await _store(vault, batch)
    return stored


async def _store(vault: Vault, batch: list[EventIngest]) -> int:
    async with in_transaction():
        result, _ = await store_events(vault, batch)
    if result.rejected:
        raise SystemExit(f"synthetic events were refused: {list(result.rejected.items())[:3]}")
    return len(result.accepted)


async def load(args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings()
    assert settings.database is not None, "DATABASE_URL must be set"
    context = await init_orm(settings.database, settings)
    numbers: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        vault = Vault(provider_from_settings(settings), cache_entries=args.customers + 1000)
        await vault.ready()
        if args.stage == "customers":
            people = part(args.customers, args.part, args.parts)
            ids = await load_customers(vault, people)
            _write_ids(args.ids, ids)
            numbers["customers"] = len(ids)
        else:
            ids = _read_ids(args.ids)
            if args.stage == "consents":
                numbers["consent_decisions"] = await load_consents(vault, ids)
            else:
                customers = part(len(ids), args.part, args.parts)
                numbers["events"] = await load_events(vault, ids, args.events, customers)
    finally:
        await close_orm(context)
    numbers["seconds"] = round(time.perf_counter() - started, 1)
    return numbers


def _write_ids(path: Path, ids: list[uuid.UUID]) -> None:
    path.write_text("".join(f"{i}\n" for i in ids))


def _read_ids(path: Path) -> list[uuid.UUID]:
    return [uuid.UUID(line) for line in path.read_text().split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stage", choices=["customers", "consents", "events"])
    parser.add_argument("--ids", type=Path, required=True, help="written by customers, else read")
    parser.add_argument("--customers", type=int, default=0, help="all people (customers stage)")
    parser.add_argument("--events", type=int, default=0, help="all events (events stage)")
    parser.add_argument("--part", type=int, default=0, help="which part this process loads")
    parser.add_argument("--parts", type=int, default=1)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    print(json.dumps(asyncio.run(load(args))), flush=True)


if __name__ == "__main__":
    main()

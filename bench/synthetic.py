"""Deterministic synthetic customers and events (Faker with a fixed seed)."""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from faker import Faker

SEED = 20261122
COLUMNS = [
    "email", "given_name", "family_name", "phone", "birth_date", "address_line1", "city",
    "postal_code", "country", "external_ids", "lifecycle_stage",
]  # fmt: skip


def customers(count: int, seed: int = SEED) -> list[dict[str, str]]:
    """``count`` people; about 3% share an email with an earlier one (duplicates to match)."""
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    chooser = random.Random(seed)
    rows: list[dict[str, str]] = []
    for number in range(count):
        if rows and chooser.random() < 0.03:
            email = rows[chooser.randrange(len(rows))]["email"]
        else:
            email = f"{fake.user_name()}.{number}@{fake.free_email_domain()}"
        rows.append(
            {
                "email": email,
                "given_name": fake.first_name(),
                "family_name": fake.last_name(),
                "phone": f"+44 7{chooser.randrange(100, 999)} {chooser.randrange(100000, 999999)}",
                "birth_date": fake.date_of_birth(minimum_age=18, maximum_age=90).isoformat(),
                "address_line1": fake.street_address().replace("\n", ", "),
                "city": fake.city(),
                "postal_code": fake.postcode(),
                "country": "GB",
                "external_ids": f"crm:{100000 + number}",
                "lifecycle_stage": chooser.choice(["lead", "prospect", "active"]),
            }
        )
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    """The rows as a CSV file with a header, as ``cdlm import`` reads them."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


EVENT_TYPES = ["page.viewed", "product.viewed", "cart.updated", "order.placed", "email.opened"]


def events(customer_ids: list[str], count: int, seed: int = SEED) -> list[dict[str, Any]]:
    """``count`` GraphQL ``EventInput`` values spread over the customers (``customer_ids``:
    their global ids, as ``customerId`` takes them)."""
    chooser = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for number in range(count):
        kind = chooser.choice(EVENT_TYPES)
        event: dict[str, Any] = {
            "type": kind,
            "occurredAt": (start + timedelta(seconds=number * 17)).isoformat(),
            "sourceSystem": "web-shop",
            "channel": chooser.choice(["web", "mobile", "email"]),
            "customerId": chooser.choice(customer_ids),
            "externalId": f"evt-{seed}-{number}",
            "properties": {"page": f"/p/{chooser.randrange(500)}", "session": number // 7},
        }
        if kind == "order.placed":
            event["amount"] = f"{chooser.randrange(100, 50000) / 100:.2f}"
            event["currency"] = "GBP"
        out.append(event)
    return out

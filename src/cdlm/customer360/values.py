"""What the customer 360 reader returns: plain, immutable values (decrypted, not masked)."""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from cdlm.consent.service import Answer
from cdlm.core.identifiers import IdentifierKind
from cdlm.core.vocabulary import LifecycleStage


@dataclass(frozen=True)
class EventWindow:
    """One page of a customer's events: newest first, optionally filtered."""

    first: int  #: the page size
    after: tuple[datetime, uuid.UUID] | None = None
    type: str | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None
    before: tuple[datetime, uuid.UUID] | None = None
    #: Counted back from ``before`` (or the oldest): read oldest first, shown newest first.
    backwards: bool = False


@dataclass(frozen=True)
class Parts:
    """Which parts of the 360 a request selected (the customer's own columns always come)."""

    profile: bool = False
    identities: bool = False
    consents: bool = False
    events: frozenset[EventWindow] = frozenset()


@dataclass(frozen=True)
class CustomerRecord:
    """A customer's clear columns."""

    id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    lifecycle_stage: LifecycleStage
    source_systems: list[str]
    last_activity_at: datetime | None
    restricted_at: datetime | None
    erased_at: datetime | None
    lineage_json: str | dict[str, dict[str, Any]] = field(repr=False)
    completeness: float
    validity: float
    quality_score: float

    @functools.cached_property
    def lineage(self) -> dict[str, dict[str, Any]]:
        """Per profile field, the source record behind its value (parsed when first used)."""
        if isinstance(self.lineage_json, str):
            parsed: dict[str, dict[str, Any]] = json.loads(self.lineage_json)
            return parsed
        return self.lineage_json

    @property
    def processable(self) -> bool:
        """Not erased and not restricted (GDPR Art. 18)."""
        return self.erased_at is None and self.restricted_at is None


@dataclass(frozen=True)
class IdentityValue:
    """One identifier of the customer (``value`` None once the data key is shredded)."""

    kind: IdentifierKind
    namespace: str
    value: str | None
    created_at: datetime


@dataclass(frozen=True)
class EventValue:
    """One event, its properties opened (None when it has none or the key is shredded)."""

    id: uuid.UUID
    type: str
    channel: str
    occurred_at: datetime
    received_at: datetime
    amount: Decimal | None
    currency: str | None
    source_system: str
    external_id: str | None
    properties: Any
    sentiment: float | None = None  #: feedback: VADER compound score
    nps: int | None = None
    csat: int | None = None
    item_id: str | None = None


@dataclass(frozen=True)
class Profile360:
    """What was read of one customer; a part is None when it was not asked for."""

    customer: CustomerRecord
    readable: bool  #: the customer's data key exists (False once crypto-shredded)
    profile: dict[str, str] | None = None
    identities: list[IdentityValue] | None = None
    consents: list[Answer] | None = None
    events: dict[EventWindow, list[EventValue]] = field(default_factory=dict)

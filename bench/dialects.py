"""What each release's GraphQL API understands, for benchmarks that drive two releases (this
tree and a baseline checked out from git) with the same work.

API 1.0 (issue 14) changed what a client sends and reads: every id is a Relay global id (the
base64 of ``<TypeName>:<uuid>``) instead of the bare UUID, and ``ingestEvents`` takes a typed
batch, ``ingestEvents(input: {events: [EventInput!]!})``, instead of a list of JSON objects
(``ingestEvents(events: [EventRecord!]!)``; the keys of an event are the same). A release speaks
1.0 when its tree has ``cdlm/graphql/relay.py``.

A benchmark takes a release's :class:`Dialect` and sends its documents, with ids made by its
:meth:`Dialect.customer_id` from the database's UUIDs; :meth:`Dialect.plain` turns an answer's
global ids back into UUIDs, so that answers of two releases can be compared. This module imports
no cdlm code (the releases' own code runs in their processes).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# -- the read shapes of bench.read_path (the same fields in both releases)

CUSTOMER_360 = """
query Customer360($id: ID!) {
  customer(id: $id) {
    id
    profile {
      givenName familyName email phone birthDate
      address { line1 line2 city region postalCode country }
    }
    identities { kind value }
    consents { purposeCode permitted restricted decision byDefault noticeVersion decidedAt }
    events(first: 10) { nodes { id type occurredAt amount currency properties } }
  }
}
"""
CUSTOMER_LIST = """
query CustomerList($after: String) {
  customers(first: 50, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      profile {
        givenName familyName email phone birthDate
        address { line1 line2 city region postalCode country }
      }
      consents { purposeCode permitted restricted decision byDefault noticeVersion decidedAt }
    }
  }
}
"""

# -- ingestEvents: the JSON scalar list before 1.0, the typed input since

INGEST_EVENTS_JSON = """
mutation IngestEvents($events: [EventRecord!]!) {
  ingestEvents(events: $events) {
    __typename
    ... on EventsIngested { accepted duplicates rejected }
    ... on UserError { code message field }
  }
}
"""
INGEST_EVENTS_TYPED = """
mutation IngestEvents($input: IngestEventsInput!) {
  ingestEvents(input: $input) {
    __typename
    ... on EventsIngested { accepted duplicates rejected }
    ... on UserError { code message field }
  }
}
"""


def global_id(type_name: str, key: uuid.UUID | str) -> str:
    """The Relay global id of the ``type_name`` object ``key`` (``cdlm.graphql.relay``)."""
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def _uuid_of(value: str) -> str | None:
    """The UUID inside a global id; None when ``value`` is not one."""
    try:
        type_name, _, key = base64.b64decode(value, validate=True).decode().partition(":")
        return str(uuid.UUID(key)) if type_name else None
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


@dataclass(frozen=True)
class Dialect:
    """The documents and ids one release understands."""

    name: str
    relay: bool
    customer_360: str
    customer_list: str
    ingest_events: str

    def customer_id(self, key: uuid.UUID | str) -> str:
        """The id of customer ``key`` (a database UUID) as this release takes it."""
        return global_id("Customer", key) if self.relay else str(key)

    def ingest_variables(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """The variables of :attr:`ingest_events` for a batch of events (JSON objects with
        the keys of ``EventInput``; ``customerId`` made by :meth:`customer_id`)."""
        return {"input": {"events": events}} if self.relay else {"events": events}

    def plain(self, answer: Any) -> Any:
        """``answer`` with every global id under an ``id`` or ``...Id`` key as its UUID."""
        if not self.relay:
            return answer
        if isinstance(answer, list):
            return [self.plain(item) for item in answer]
        if not isinstance(answer, dict):
            return answer
        shown: dict[str, Any] = {}
        for key, value in answer.items():
            if (key == "id" or key.endswith("Id")) and isinstance(value, str):
                shown[key] = _uuid_of(value) or value
            else:
                shown[key] = self.plain(value)
        return shown


BEFORE_1_0 = Dialect(
    "before-1.0",
    relay=False,
    customer_360=CUSTOMER_360,
    customer_list=CUSTOMER_LIST,
    ingest_events=INGEST_EVENTS_JSON,
)
API_1_0 = Dialect(
    "1.0",
    relay=True,
    customer_360=CUSTOMER_360,
    customer_list=CUSTOMER_LIST,
    ingest_events=INGEST_EVENTS_TYPED,
)


def of(src: Path) -> Dialect:
    """The dialect of the release whose source tree (the directory holding ``cdlm``) is
    ``src``."""
    return API_1_0 if (src / "cdlm" / "graphql" / "relay.py").exists() else BEFORE_1_0

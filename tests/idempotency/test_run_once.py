"""``run_once`` returns the operation's own typed result on the first call and decodes the
remembered JSON only on a replay; for each idempotent operation, the first call and its replay
give equal typed results."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cdlm.auth.settings import AuthSettings
from cdlm.config import Settings
from cdlm.consent import service as consent
from cdlm.consent.models import Decision, Method
from cdlm.core import clock
from cdlm.core.identifiers import IdentifierKind
from cdlm.core.principal import SYSTEM
from cdlm.customers.events import EventIngest, ingest_events
from cdlm.customers.ingest import CustomerIngest, ingest_one
from cdlm.dsr import intake
from cdlm.dsr.models import RequestType, VerificationMethod
from cdlm.dsr.notifier import LogNotifier
from cdlm.idempotency import service as idempotency
from cdlm.idempotency.models import IdempotencyRecord
from cdlm.vault.service import Vault
from tests.consent.test_consent import make_purpose
from tests.factories import make_customer, source

KEY = "retry-7f3a"


@dataclass(frozen=True)
class Made:
    """A typed result, with the JSON it is remembered as."""

    id: uuid.UUID
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": str(self.id), "at": self.at.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Made:
        return cls(uuid.UUID(data["id"]), datetime.fromisoformat(data["at"]))


class Counting:
    """A codec for :class:`Made` that counts how often each direction is used."""

    def __init__(self) -> None:
        self.encoded = 0
        self.decoded = 0

    def codec(self) -> idempotency.Codec[Made]:
        return idempotency.Codec(self._to_json, self._from_json)

    def _to_json(self, made: Made) -> dict[str, Any]:
        self.encoded += 1
        return made.to_json()

    def _from_json(self, data: dict[str, Any]) -> Made:
        self.decoded += 1
        return Made.from_json(data)


async def test_the_first_call_returns_the_operations_own_value_and_a_replay_an_equal_one(
    vault: Vault,
) -> None:
    made: list[Made] = []

    async def operation() -> Made:
        made.append(Made(uuid.uuid4(), datetime(2026, 11, 3, 9, 30, 0, 123456, tzinfo=UTC)))
        return made[-1]

    counting = Counting()
    scope = idempotency.scope_for("test", SYSTEM)
    first = await idempotency.run_once(vault, scope, KEY, "same", operation, counting.codec())
    assert first.result is made[0]  # no JSON round trip on the first call
    assert not first.replayed
    assert (counting.encoded, counting.decoded) == (1, 0)
    [stored] = await IdempotencyRecord.all()
    assert stored.result == made[0].to_json()

    again = await idempotency.run_once(vault, scope, KEY, "same", operation, counting.codec())
    assert again.replayed
    assert again.result == first.result
    assert isinstance(again.result, Made)
    assert len(made) == 1  # the operation did not run again
    assert (counting.encoded, counting.decoded) == (1, 1)


async def test_without_a_key_nothing_is_encoded_or_stored(vault: Vault) -> None:
    made = Made(uuid.uuid4(), clock.now())

    async def operation() -> Made:
        return made

    counting = Counting()
    scope = idempotency.scope_for("test", SYSTEM)
    outcome = await idempotency.run_once(vault, scope, None, "same", operation, counting.codec())
    assert outcome.result is made
    assert (counting.encoded, counting.decoded) == (0, 0)
    assert await IdempotencyRecord.all().count() == 0


# ------------------------------------------------------------------- the operations using it


async def test_ingest_customer_first_call_and_replay_are_equal(vault: Vault) -> None:
    record = CustomerIngest(
        source=source(), profile={"email": "ida@example.com", "given_name": "Ida", "phone": "12"}
    )
    first = await ingest_one(SYSTEM, vault, record, KEY)
    again = await ingest_one(SYSTEM, vault, record, KEY)
    assert first.result.issues  # the refused phone: issues survive the round trip too
    assert (first.replayed, again.replayed) == (False, True)
    assert again.result == first.result


async def test_ingest_events_first_call_and_replay_are_equal(vault: Vault) -> None:
    customer_id = (await make_customer(vault, email="eve@example.com")).customer_id
    items = [
        EventIngest("order.placed", clock.now(), "shop", customer_id=customer_id),
        EventIngest("order.placed", clock.now(), "shop", external_id="o-1", customer_id=None),
    ]
    first, first_replayed = await ingest_events(SYSTEM, vault, items, KEY)
    again, again_replayed = await ingest_events(SYSTEM, vault, items, KEY)
    assert first.accepted
    assert first.rejected
    assert (first_replayed, again_replayed) == (False, True)
    assert again == first


async def test_recording_consent_first_call_and_replay_are_equal(vault: Vault) -> None:
    await make_purpose("newsletter")
    customer_id = (await make_customer(vault, email="con@example.com")).customer_id
    recording = consent.ConsentRecording(
        customer_id,
        [consent.Choice("newsletter", Decision.GRANTED, 1)],
        consent.Capture(Method.FORM),
    )
    first = await consent.record(SYSTEM, vault, recording, KEY)
    again = await consent.record(SYSTEM, vault, recording, KEY)
    assert first[0]
    assert all(isinstance(i, uuid.UUID) for i in first[0])
    assert (first[1], again[1]) == (False, True)
    assert again[0] == first[0]


async def test_submitting_and_filing_requests_first_call_and_replay_are_equal(
    vault: Vault, auth: AuthSettings, settings: Settings
) -> None:
    notifier = LogNotifier()
    submission = intake.RequestSubmission(
        RequestType.ACCESS,
        intake.Subject(IdentifierKind.EMAIL, "sub@example.com"),
        client_address="198.51.100.20",
    )
    first = await intake.submit(vault, auth, settings, notifier, submission, KEY)
    again = await intake.submit(vault, auth, settings, notifier, submission, KEY)
    assert first.verification_expires_at is not None
    assert (first.replayed, again.replayed) == (False, True)
    assert again == replace(first, replayed=True)

    filing = intake.Filing(
        RequestType.ACCESS,
        intake.Subject(IdentifierKind.EMAIL, "filed@example.com"),
        VerificationMethod.IDENTITY_DOCUMENT,
        received_at=clock.now(),
    )
    filed = await intake.file_request(SYSTEM, vault, settings, notifier, filing, KEY)
    refiled = await intake.file_request(SYSTEM, vault, settings, notifier, filing, KEY)
    assert (filed.replayed, refiled.replayed) == (False, True)
    assert refiled == replace(filed, replayed=True)


async def test_a_filing_retried_without_a_received_time_is_replayed(
    vault: Vault, settings: Settings
) -> None:
    notifier = LogNotifier()
    filing = intake.Filing(
        RequestType.ERASURE,
        intake.Subject(IdentifierKind.EMAIL, "retry@example.com"),
        VerificationMethod.IDENTITY_DOCUMENT,
    )
    filed = await intake.file_request(SYSTEM, vault, settings, notifier, filing, KEY)
    with clock.travel(timedelta(seconds=30)):  # the retry comes later: "now" has moved
        refiled = await intake.file_request(SYSTEM, vault, settings, notifier, filing, KEY)
    assert (filed.replayed, refiled.replayed) == (False, True)
    assert refiled == replace(filed, replayed=True)

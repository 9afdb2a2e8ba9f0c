"""A message that can never be delivered: retried by each tick up to ``MAX_ATTEMPTS``, then
given up, without personal data in its error or in the log."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest

from cdlm.auth.settings import AuthSettings
from cdlm.config import Settings
from cdlm.core import clock
from cdlm.core.identifiers import IdentifierKind
from cdlm.dsr import intake, outbox
from cdlm.dsr.models import Notification, RequestType
from cdlm.dsr.notifier import LogNotifier, Message
from cdlm.dsr.tick import tick
from cdlm.vault.service import Vault

EMAIL = "wilhelmina.unreachable@example.com"


class Refusing:
    """A notifier whose every send fails with an error quoting the message, as a mail
    provider's error might."""

    def __init__(self) -> None:
        self.tried: list[Message] = []

    async def send(self, message: Message) -> None:
        self.tried.append(message)
        raise RuntimeError(f"mailbox {message.to} refused {message.text!r}")


async def _undeliverable(vault: Vault, auth: AuthSettings, settings: Settings) -> uuid.UUID:
    """A self-service request whose verification code could not be sent; its id."""
    done = await intake.submit(
        vault,
        auth,
        settings,
        Refusing(),
        intake.RequestSubmission(
            RequestType.ACCESS,
            intake.Subject(IdentifierKind.EMAIL, EMAIL),
            client_address="203.0.113.40",
        ),
    )
    return done.request_id


@pytest.fixture(autouse=True)
def notifications(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


async def test_a_message_that_always_fails_is_given_up_after_the_maximum_attempts(
    vault: Vault, auth: AuthSettings, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    request_id = await _undeliverable(vault, auth, settings)
    [row] = await Notification.filter(request_id=request_id)
    assert (row.attempts, row.sent_at) == (1, None)

    refusing = Refusing()
    failures = []
    for hour in range(1, outbox.MAX_ATTEMPTS + 3):
        with clock.travel(timedelta(hours=hour)):  # hourly, as scheduled
            report = await tick(vault, refusing, settings)
        failures.append(report.notifications_failed)
        assert report.notifications_sent == 0
        row = await Notification.get(id=row.id)
        assert row.attempts == min(1 + hour, outbox.MAX_ATTEMPTS)

    # Each tick until the maximum counted one failure; after that none were tried.
    assert failures == [1] * (outbox.MAX_ATTEMPTS - 1) + [0] * 3
    assert len(refusing.tried) == outbox.MAX_ATTEMPTS - 1
    [message] = {(m.to, m.text) for m in refusing.tried}
    code_text = message[1]
    assert EMAIL in message

    row = await Notification.get(id=row.id)
    assert row.attempts == outbox.MAX_ATTEMPTS
    assert row.sent_at is None  # undelivered, not pretended sent
    assert row.last_error == "RuntimeError"
    code = code_text.split(" is ")[1][:6]
    for secret in (EMAIL, "wilhelmina", code_text, code):
        assert secret not in (row.last_error or "")
    # The log (messages and their structured fields) names the message, never its content.
    warnings = [r for r in caplog.records if r.getMessage() == "notification not delivered"]
    assert len(warnings) == outbox.MAX_ATTEMPTS
    assert {r.__dict__["notification_id"] for r in warnings} == {str(row.id)}
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in (EMAIL, "wilhelmina", code_text, f"is {code}"):
        assert secret not in logged

    # A notifier that works does not bring it back: it is no longer retried, by the tick or
    # by the delivery that follows a change to its request.
    working = LogNotifier()
    assert (await tick(vault, working, settings)).notifications_sent == 0
    assert await outbox.deliver_pending(vault, working, [request_id]) == (0, 0)
    row = await Notification.get(id=row.id)
    assert (row.attempts, row.sent_at) == (outbox.MAX_ATTEMPTS, None)


async def test_other_messages_are_still_delivered_beside_a_given_up_one(
    vault: Vault, auth: AuthSettings, settings: Settings
) -> None:
    stuck = await _undeliverable(vault, auth, settings)
    for _ in range(outbox.MAX_ATTEMPTS):
        await outbox.deliver_pending(vault, Refusing())
    fine = await intake.submit(
        vault,
        auth,
        settings,
        Refusing(),
        intake.RequestSubmission(
            RequestType.ACCESS,
            intake.Subject(IdentifierKind.EMAIL, "reachable@example.com"),
            client_address="203.0.113.41",
        ),
    )
    report = await tick(vault, LogNotifier(), settings)
    assert (report.notifications_sent, report.notifications_failed) == (1, 0)
    delivered = await Notification.get(request_id=fine.request_id)
    assert delivered.sent_at is not None
    assert delivered.payload_sealed is None  # emptied once sent
    given_up = await Notification.get(request_id=stuck)
    assert (given_up.attempts, given_up.sent_at) == (outbox.MAX_ATTEMPTS, None)

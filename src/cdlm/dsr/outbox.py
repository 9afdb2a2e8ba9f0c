"""The notification outbox: messages are written with the change that causes them and
delivered after it commits, so a message is never sent for a change that rolled back, and a
failed delivery is retried (by the next delivery run or ``cdlm dsr tick``).

Recipient and text are sealed under the request's key and emptied once delivered.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from tortoise.transactions import in_transaction

from cdlm.core import clock
from cdlm.dsr.models import Notification
from cdlm.dsr.notifier import Message, Notifier, render, render_loggable
from cdlm.vault.service import MissingKey, Vault

logger = logging.getLogger("cdlm.notifications")

MAX_ATTEMPTS = 10
_PAYLOAD = "notification"


@dataclass(frozen=True)
class OutboxMessage:
    """A message to a requester: where it goes, and the template with what fills it."""

    request_id: uuid.UUID
    channel: str
    to: str
    template: str
    variables: dict[str, str]


async def queue(vault: Vault, key: bytes, message: OutboxMessage) -> Notification:
    """Add a message to the outbox (in the caller's transaction), sealed under ``key`` (the
    request's)."""
    notification_id = uuid.uuid4()
    request_id = message.request_id
    payload = {
        "to": message.to,
        "text": render(message.template, message.variables),
        "loggable": render_loggable(message.template, message.variables),
    }
    return await Notification.create(
        id=notification_id,
        request_id=request_id,
        channel=message.channel,
        template=message.template,
        payload_sealed=vault.seal(key, request_id, f"{_PAYLOAD}:{notification_id}", payload),
        created_at=clock.now(),
    )


async def deliver_pending(
    vault: Vault, notifier: Notifier, request_ids: Iterable[uuid.UUID] | None = None
) -> tuple[int, int]:
    """Deliver waiting messages (of some requests, or all); returns (sent, failed).

    Each message is locked while it is sent, so concurrent runs never send one twice.
    """
    query = Notification.filter(sent_at__isnull=True, attempts__lt=MAX_ATTEMPTS)
    if request_ids is not None:
        query = query.filter(request_id__in=list(request_ids))
    sent = failed = 0
    for notification_id in await query.order_by("created_at").values_list("id", flat=True):
        async with in_transaction():
            row = (
                await Notification.filter(id=notification_id, sent_at__isnull=True)
                .select_for_update(skip_locked=True)
                .first()
            )
            if row is None or row.payload_sealed is None:
                continue
            try:
                key = await vault.customer_key(row.request_id)
                payload = vault.open(
                    key, row.request_id, f"{_PAYLOAD}:{row.id}", bytes(row.payload_sealed)
                )
                await notifier.send(
                    Message(
                        row.channel,
                        payload["to"],
                        row.template,
                        payload["text"],
                        payload.get("loggable", payload["text"]),
                    )
                )
            except MissingKey:
                row.last_error = "The request's key is destroyed; the message cannot be sent."
                row.attempts = MAX_ATTEMPTS
                failed += 1
            except Exception as error:
                row.attempts += 1
                row.last_error = type(error).__name__
                logger.warning(
                    "notification not delivered",
                    extra={"notification_id": str(row.id), "error_type": type(error).__name__},
                )
                failed += 1
            else:
                row.sent_at = clock.now()
                row.payload_sealed = None
                row.attempts += 1
                sent += 1
            await row.save()
    return sent, failed

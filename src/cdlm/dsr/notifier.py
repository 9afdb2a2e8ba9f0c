"""Telling requesters about their request: messages, templates and notifiers.

Messages wait in the outbox (``cdlm.dsr.outbox``) until a :class:`Notifier` delivers them. The
:class:`LogNotifier` writes each message to the log with the recipient masked; it is meant for
local use, where the log is the developer's inbox (it shows codes and links).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from cdlm.auth.masking import mask_email, mask_phone

logger = logging.getLogger("cdlm.notifications")

TEMPLATES: dict[str, str] = {
    "verification_code": (
        "Your code to confirm your {request_type} request is {code}. "
        "It expires in {minutes} minutes. Request reference: {request_id}."
    ),
    "request_received": (
        "We received your {request_type} request {request_id} on {received_at}. "
        "We will answer by {due_at}."
    ),
    "deadline_extended": (
        "We need more time for your {request_type} request {request_id}: we will answer by "
        "{due_at}. Reason: {reason}"
    ),
    "export_ready": (
        "The copy of your data for request {request_id} is ready: {url} "
        "(the link works until {expires_at})."
    ),
    "request_completed": "Your {request_type} request {request_id} is complete.",
    "request_denied": "Your {request_type} request {request_id} was declined. Reason: {reason}",
}


@dataclass(frozen=True)
class Message:
    """One message to one recipient."""

    channel: str  # "email" or "sms"
    to: str
    template: str
    text: str


def render(template: str, variables: dict[str, str]) -> str:
    """The text of ``template`` with ``variables`` filled in."""
    return TEMPLATES[template].format(**variables)


class Notifier(Protocol):
    """Delivers messages; raises on failure (the outbox retries later)."""

    async def send(self, message: Message) -> None: ...


class LogNotifier:
    """Writes messages to the log (recipient masked): the local developer's inbox."""

    async def send(self, message: Message) -> None:
        masked = mask_email(message.to) if message.channel == "email" else mask_phone(message.to)
        logger.info(
            "notification",
            extra={
                "channel": message.channel,
                "template": message.template,
                "recipient": masked,
                "text": message.text,
            },
        )

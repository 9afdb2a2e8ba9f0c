"""Telling requesters about their request: messages, templates and notifiers.

Messages wait in the outbox (``cdlm.dsr.outbox``) until a :class:`Notifier` delivers them.
``CDLM_NOTIFIER`` chooses one: ``aws`` sends email with Amazon SES (from ``CDLM_NOTIFY_FROM``)
and text messages with Amazon SNS; ``log`` writes each message to the log with the recipient
masked, for local use, where the log is the developer's inbox (it shows codes and links, so
production refuses it).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from cdlm.config import ConfigError, Settings
from cdlm.core.masking import mask_email, mask_phone

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


#: Variables that carry what staff wrote (a denial's or an extension's reason): personal data
#: about the request, told to the requester but never written to a log.
STAFF_TEXT = frozenset({"reason"})
STAFF_TEXT_PLACEHOLDER = "[staff note, sent to the requester, not logged]"


@dataclass(frozen=True)
class Message:
    """One message to one recipient; ``loggable`` is its text without staff notes."""

    channel: str  # "email" or "sms"
    to: str
    template: str
    text: str
    loggable: str | None = None


def render(template: str, variables: dict[str, str]) -> str:
    """The text of ``template`` with ``variables`` filled in."""
    return TEMPLATES[template].format(**variables)


def render_loggable(template: str, variables: dict[str, str]) -> str:
    """:func:`render` with what staff wrote replaced by a placeholder."""
    return render(
        template,
        {k: STAFF_TEXT_PLACEHOLDER if k in STAFF_TEXT else v for k, v in variables.items()},
    )


class Notifier(Protocol):
    """Delivers messages; raises on failure (the outbox retries later)."""

    async def send(self, message: Message) -> None: ...


class LogNotifier:
    """Writes messages to the log (recipient masked, staff notes left out): the local
    developer's inbox."""

    async def send(self, message: Message) -> None:
        masked = mask_email(message.to) if message.channel == "email" else mask_phone(message.to)
        logger.info(
            "notification",
            extra={
                "channel": message.channel,
                "template": message.template,
                "recipient": masked,
                "text": message.text if message.loggable is None else message.loggable,
            },
        )


class AwsNotifier:
    """Email through Amazon SES, text messages through Amazon SNS (needs the aws extra)."""

    def __init__(self, sender: str, *, ses: Any = None, sns: Any = None) -> None:
        self.sender = sender
        self._ses = ses
        self._sns = sns

    def _clients(self) -> tuple[Any, Any]:
        if self._ses is None or self._sns is None:
            try:
                import boto3
            except ImportError:  # pragma: no cover - depends on the installed extras
                raise ConfigError(
                    "CDLM_NOTIFIER", "aws needs the aws extra: pip install 'cdlm[aws]'"
                ) from None
            self._ses = self._ses or boto3.client("ses")
            self._sns = self._sns or boto3.client("sns")
        return self._ses, self._sns

    def _send(self, message: Message) -> None:
        ses, sns = self._clients()
        if message.channel == "sms":
            sns.publish(
                PhoneNumber=message.to,
                Message=message.text,
                MessageAttributes={
                    "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}
                },
            )
        else:
            ses.send_email(
                Source=self.sender,
                Destination={"ToAddresses": [message.to]},
                Message={
                    "Subject": {"Data": SUBJECTS.get(message.template, "Your privacy request")},
                    "Body": {"Text": {"Data": message.text}},
                },
            )

    async def send(self, message: Message) -> None:
        await asyncio.to_thread(self._send, message)


SUBJECTS: dict[str, str] = {
    "verification_code": "Your verification code",
    "request_received": "We received your privacy request",
    "deadline_extended": "We need more time for your privacy request",
    "export_ready": "Your data is ready",
    "request_completed": "Your privacy request is complete",
    "request_denied": "About your privacy request",
}


def notifier_from(settings: Settings) -> Notifier:
    """The notifier ``CDLM_NOTIFIER`` names."""
    if settings.notifier == "aws":
        assert settings.notify_from is not None  # checked when the settings were loaded
        return AwsNotifier(settings.notify_from)
    return LogNotifier()

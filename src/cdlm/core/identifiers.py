"""Identifiers: normalization, junk values that must never match, priority and per-type limits.

Three kinds identify a person: external ids from source systems (``crm:123``), email addresses
and phone numbers. Matching uses their normalized form only. Values that many unrelated people
share (``test@test.com``, ``anonymous``, ``000000``) are blocked so they cannot glue strangers
into one profile, and each profile holds a bounded number of identifiers of each kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from cdlm.core.errors import ErrorCode


class IdentifierKind(StrEnum):
    """Kinds of identifier, in matching priority order (strongest first)."""

    EXTERNAL_ID = "external_id"
    EMAIL = "email"
    PHONE = "phone"


#: Profile fields whose values are also identifiers of the customer.
IDENTIFYING_FIELDS: dict[str, IdentifierKind] = {
    "email": IdentifierKind.EMAIL,
    "phone": IdentifierKind.PHONE,
}
#: Strongest first: a match on an external id beats one on an email, which beats a phone.
PRIORITY: tuple[IdentifierKind, ...] = (
    IdentifierKind.EXTERNAL_ID,
    IdentifierKind.EMAIL,
    IdentifierKind.PHONE,
)
#: Most identifiers of a kind one profile may hold (external ids: per namespace).
LIMITS: dict[IdentifierKind, int] = {
    IdentifierKind.EXTERNAL_ID: 1,
    IdentifierKind.EMAIL: 5,
    IdentifierKind.PHONE: 5,
}

_JUNK_WORDS = frozenset(
    {
        "null", "none", "nil", "undefined", "anonymous", "anon", "unknown", "n/a", "na", "test",
        "guest", "noemail", "no-email", "none@none", "-1", "x", "xxx", "asdf",
    }
)  # fmt: skip
_JUNK_EMAILS = frozenset(
    {
        "test@test.com", "test@example.com", "email@email.com", "a@a.com", "na@na.com",
        "none@none.com", "noemail@noemail.com", "no@email.com", "null@null.com",
        "noreply@noreply.com", "user@domain.com", "abc@abc.com",
    }
)  # fmt: skip
_JUNK_EMAIL_LOCALS = frozenset({"noreply", "no-reply", "donotreply", "do-not-reply", "null"})
_ALL_SAME_OR_ZERO = re.compile(r"^([0-])[0-]*$|^(\d)\2{5,}$")
_NAMESPACE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
MAX_EXTERNAL_VALUE = 128


class InvalidIdentifier(ValueError):
    """An identifier that cannot be used for matching; ``code`` says why."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, order=True)
class Identifier:
    """A normalized identifier. ``namespace`` is the source system of an external id."""

    kind: IdentifierKind
    namespace: str
    value: str

    @property
    def index_kind(self) -> str:
        """What the blind index is computed over, besides the value."""
        return f"{self.kind.value}:{self.namespace}"

    @property
    def text(self) -> str:
        """The identifier as a person writes it: ``crm:123`` for an external id."""
        return f"{self.namespace}:{self.value}" if self.namespace else self.value

    @property
    def label(self) -> str:
        """How results name it: ``email``, ``phone`` or ``external_id:crm``."""
        return self.index_kind if self.namespace else self.kind.value


def _blocked(message: str) -> InvalidIdentifier:
    return InvalidIdentifier(ErrorCode.BLOCKED_IDENTIFIER, message)


def normalize_email(raw: str) -> Identifier:
    """The canonical email identifier; raises :class:`InvalidIdentifier`."""
    from email_validator import EmailNotValidError, validate_email  # not needed at start-up

    candidate = raw.strip()
    if candidate.lower() in _JUNK_WORDS:
        raise _blocked("This email is a placeholder and cannot identify a person.")
    try:
        normalized = validate_email(candidate, check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise InvalidIdentifier(ErrorCode.INVALID_FORMAT, "Not a valid email address.") from None
    local = normalized.split("@", 1)[0]
    if normalized in _JUNK_EMAILS or local in _JUNK_EMAIL_LOCALS:
        raise _blocked("This email is a placeholder and cannot identify a person.")
    return Identifier(IdentifierKind.EMAIL, "", normalized)


def normalize_phone(raw: str, default_region: str | None) -> Identifier:
    """The E.164 phone identifier; ``default_region`` reads numbers without ``+``."""
    import phonenumbers  # not needed at start-up

    candidate = raw.strip()
    if candidate.lower() in _JUNK_WORDS:
        raise _blocked("This phone number is a placeholder and cannot identify a person.")
    digits = re.sub(r"\D", "", candidate)
    if digits and _ALL_SAME_OR_ZERO.fullmatch(digits):
        raise _blocked("This phone number is a placeholder and cannot identify a person.")
    try:
        number = phonenumbers.parse(candidate, default_region)
    except phonenumbers.NumberParseException:
        raise InvalidIdentifier(ErrorCode.INVALID_FORMAT, "Not a phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidIdentifier(ErrorCode.INVALID_FORMAT, "Not a valid phone number.")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Identifier(IdentifierKind.PHONE, "", e164)


def normalize_external_id(raw: str) -> Identifier:
    """``namespace:value`` (e.g. ``crm:123``) with a lower-cased namespace."""
    namespace, separator, value = raw.strip().partition(":")
    namespace = namespace.strip().lower()
    value = value.strip()
    if not separator or not _NAMESPACE.fullmatch(namespace) or not value:
        raise InvalidIdentifier(
            ErrorCode.INVALID_FORMAT, "External ids read namespace:value, e.g. crm:123."
        )
    if len(value) > MAX_EXTERNAL_VALUE:
        raise InvalidIdentifier(
            ErrorCode.TOO_LONG, "External id values have at most 128 characters."
        )
    if value.lower() in _JUNK_WORDS or _ALL_SAME_OR_ZERO.fullmatch(value):
        raise _blocked("This external id is a placeholder and cannot identify a person.")
    return Identifier(IdentifierKind.EXTERNAL_ID, namespace, value)


def parse(kind: IdentifierKind, raw: str, default_region: str | None = None) -> Identifier:
    """Normalize ``raw`` as an identifier of ``kind``."""
    if kind is IdentifierKind.EMAIL:
        return normalize_email(raw)
    if kind is IdentifierKind.PHONE:
        return normalize_phone(raw, default_region)
    return normalize_external_id(raw)

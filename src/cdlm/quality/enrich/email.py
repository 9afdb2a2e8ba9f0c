"""Email address → domain kind: disposable, role account, free mail or organisation.

Decided in this order, the first that holds:

1. ``DISPOSABLE``: the domain, or a parent domain of it, is on the blocklist of the
   ``disposable-email-domains`` package (maintained list, MIT).
2. ``ROLE_ACCOUNT``: the local part (lower-cased, without a ``+tag``) names a function rather
   than a person (``info``, ``sales``, ``noreply``...; :data:`ROLE_LOCAL_PARTS`), at any domain.
3. ``FREE_MAIL``: the domain is a consumer mail provider's (``data/free_mail_domains.txt``,
   shipped here because no maintained PyPI package lists them; its header says where it comes
   from).
4. ``ORGANISATION``: any other well-formed domain.

An address without exactly one usable ``@``, or whose domain is not a well-formed DNS name,
gives nothing. Only the kind leaves this module, never the local part or the domain.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from importlib import resources
from typing import Final

from cdlm.quality.enrich.base import Attribute, text

#: RFC 5321 limit of a whole address.
MAX_INPUT = 254
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")


class DomainKind(StrEnum):
    """What kind of mailbox an address is."""

    FREE_MAIL = "free_mail"
    DISPOSABLE = "disposable"
    ROLE_ACCOUNT = "role_account"
    ORGANISATION = "organisation"


#: Local parts that name a function or a shared mailbox, not a person (compared lower-cased,
#: without a ``+tag``; ``.``, ``-`` and ``_`` are ignored, so ``no-reply`` is ``noreply``).
ROLE_LOCAL_PARTS: Final[frozenset[str]] = frozenset(
    {
        "abuse", "accounting", "accounts", "admin", "administrator", "billing", "booking",
        "bookings", "careers", "contact", "contactus", "customercare", "customerservice",
        "customersupport", "devnull", "enquiries", "enquiry", "feedback", "finance", "hello",
        "help", "helpdesk", "hostmaster", "hr", "info", "information", "inquiries", "inquiry",
        "invoice", "invoices", "it", "jobs", "legal", "mail", "mailerdaemon", "marketing",
        "media", "newsletter", "noc", "noreply", "donotreply", "office", "orders", "postmaster",
        "press", "privacy", "purchasing", "reception", "recruitment", "root", "sales",
        "security", "service", "shop", "staff", "support", "team", "webmaster",
    }
)  # fmt: skip


def normalize_domain(domain: str) -> str | None:
    """``domain`` as lower-case ASCII (IDNA for unicode names), or None when it is not a
    well-formed DNS name of at least two labels."""
    candidate = domain.strip().rstrip(".").lower()
    if not candidate.isascii():
        try:
            candidate = candidate.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    labels = candidate.split(".")
    if len(labels) < 2 or len(candidate) > 253:
        return None
    if not all(_LABEL.match(label) for label in labels) or not _TLD.match(labels[-1]):
        return None
    return candidate


def _role_key(local: str) -> str:
    return re.sub(r"[._-]", "", local.split("+", 1)[0].lower())


@functools.cache
def disposable_domains() -> frozenset[str]:
    """The ``disposable-email-domains`` blocklist (loaded on first use)."""
    from disposable_email_domains import blocklist

    return frozenset(blocklist)


@functools.cache
def free_mail_domains() -> frozenset[str]:
    """The shipped list of consumer mail providers' domains."""
    data = resources.files(__package__).joinpath("data/free_mail_domains.txt")
    lines = data.read_text(encoding="utf-8").splitlines()
    return frozenset(
        line.strip().lower() for line in lines if line.strip() and not line.startswith("#")
    )


def _parents(domain: str) -> list[str]:
    """``a.b.example.com`` → itself, ``b.example.com``, ``example.com``."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def domain_kind(address: str) -> DomainKind | None:
    """The kind of ``address``, or None when it is not a usable address."""
    local, at, domain = address.rpartition("@")
    if not at or not local or "@" in local or len(local) > 64:
        return None
    normalized = normalize_domain(domain)
    if normalized is None:
        return None
    blocked = disposable_domains()
    if any(parent in blocked for parent in _parents(normalized)):
        return DomainKind.DISPOSABLE
    if _role_key(local) in ROLE_LOCAL_PARTS:
        return DomainKind.ROLE_ACCOUNT
    if normalized in free_mail_domains():
        return DomainKind.FREE_MAIL
    return DomainKind.ORGANISATION


@dataclass(frozen=True)
class EmailDomainEnricher:
    """Email address → ``email_domain_kind``."""

    name: str = "email_domain"
    version: int = 1
    reads: tuple[str, ...] = ("email",)
    derives: tuple[Attribute, ...] = (Attribute.EMAIL_DOMAIN_KIND,)

    def derive(self, values: Mapping[str, str], *, as_of: date) -> dict[Attribute, str]:
        """See the module's description; ``as_of`` is not used."""
        raw = text(values, "email", MAX_INPUT)
        kind = domain_kind(raw) if raw is not None else None
        return {} if kind is None else {Attribute.EMAIL_DOMAIN_KIND: kind.value}

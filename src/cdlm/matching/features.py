"""What the linkage model compares: a profile's values normalized into a :class:`MatchRecord`.

Pure and light (stdlib only), so the rules are tested without Splink. The record holds
decrypted, normalized values: it lives in process memory only, and its ``repr`` shows the id
alone so that a stray log line cannot print a value.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from types import MappingProxyType

from cdlm.matching.nicknames import canonical

#: Street words written short, and the word each stands for.
STREET_WORDS: MappingProxyType[str, str] = MappingProxyType(
    {
        "st": "street", "str": "street", "rd": "road", "ave": "avenue", "av": "avenue",
        "ln": "lane", "dr": "drive", "ct": "court", "pl": "place", "sq": "square",
        "cres": "crescent", "cr": "crescent", "gdns": "gardens", "gr": "grove", "gro": "grove",
        "blvd": "boulevard", "hwy": "highway", "pk": "park", "ter": "terrace", "terr": "terrace",
        "cl": "close", "mt": "mount", "apt": "apartment", "fl": "flat", "n": "north",
        "s": "south", "e": "east", "w": "west", "bldg": "building", "hse": "house",
    }
)  # fmt: skip
#: Email domains that ignore dots in the local part, and the domain they stand for.
DOTLESS_DOMAINS: MappingProxyType[str, str] = MappingProxyType(
    {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}
)
#: Letters of the Soundex code of a family name (vowels, h, w and y have none).
_SOUNDEX = {
    **dict.fromkeys("bfpv", "1"), **dict.fromkeys("cgjkqsxz", "2"), **dict.fromkeys("dt", "3"),
    "l": "4", **dict.fromkeys("mn", "5"), "r": "6",
}  # fmt: skip
_APOSTROPHES = frozenset("'\u2019`\u02bc")  # ASCII, right single quote, grave, modifier


@dataclass(frozen=True, slots=True, repr=False)
class MatchRecord:
    """One profile as the linkage model reads it (None: not known)."""

    unique_id: str
    given_name: str | None = None
    given_canonical: str | None = None  # each word through the nickname table
    given_initial: str | None = None
    family_name: str | None = None
    family_key: str | None = None  # Soundex of the family name, for blocking
    birth_date: str | None = None  # YYYY-MM-DD
    birth_swapped: str | None = None  # day and month exchanged, when that is a date too
    birth_year_month: str | None = None
    birth_year: str | None = None
    email: str | None = None  # local part without +tag (and dots for Gmail) @ domain
    email_local: str | None = None
    email_letters: str | None = None  # the local part's letters only (no digits, no dots)
    email_domain: str | None = None
    phone: str | None = None  # E.164
    phone_last7: str | None = None
    postal_code: str | None = None
    street_tokens: tuple[str, ...] | None = None  # sorted, distinct
    city: str | None = None
    country: str | None = None
    external_ids: tuple[str, ...] | None = None  # sorted, distinct namespace:digest tokens
    external_namespaces: tuple[str, ...] | None = None

    def __repr__(self) -> str:
        return f"MatchRecord(unique_id={self.unique_id!r})"


#: The record's fields in order: the columns of the table the model reads.
COLUMNS: tuple[str, ...] = tuple(field.name for field in fields(MatchRecord))
#: Columns holding several tokens.
ARRAY_COLUMNS: frozenset[str] = frozenset({"street_tokens", "external_ids", "external_namespaces"})


def fold(text: str) -> str:
    """Case-folded words without accents or punctuation, single-spaced (``O'Brien-Núñez`` →
    ``obrien nunez``)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    kept = "".join(
        ch if ch.isalnum() else ("" if ch in _APOSTROPHES else " ")
        for ch in decomposed
        if not unicodedata.combining(ch)
    )
    return " ".join(kept.split())


def soundex(word: str) -> str | None:
    """The Soundex code of the letters of ``word`` (``Robert`` → ``R163``), None without any."""
    letters = [ch for ch in fold(word) if "a" <= ch <= "z"]
    if not letters:
        return None
    code, previous = letters[0].upper(), _SOUNDEX.get(letters[0], "")
    for ch in letters[1:]:
        digit = _SOUNDEX.get(ch, "")
        if digit and digit != previous:
            code += digit
        if ch not in "hw":
            previous = digit
    return (code + "000")[:4]


def _given(raw: str | None) -> tuple[str | None, str | None, str | None]:
    name = fold(raw) if raw else ""
    if not name:
        return None, None, None
    return name, " ".join(canonical(word) for word in name.split()), name[0]


def _birth(raw: str | None) -> tuple[str | None, str | None, str | None, str | None]:
    try:
        born = date.fromisoformat((raw or "").strip())
    except ValueError:
        return None, None, None, None
    text = born.isoformat()
    swapped = None
    if born.day <= 12 and born.day != born.month:
        swapped = date(born.year, born.day, born.month).isoformat()
    return text, swapped, text[:7], text[:4]


def _email(raw: str | None) -> tuple[str | None, str | None, str | None, str | None]:
    local, at, domain = (raw or "").strip().lower().rpartition("@")
    local = local.partition("+")[0]
    if not at or not local or not domain:
        return None, None, None, None
    if domain in DOTLESS_DOMAINS:
        local, domain = local.replace(".", ""), DOTLESS_DOMAINS[domain]
    letters = "".join(ch for ch in local if ch.isalpha())
    return f"{local}@{domain}", local, letters or None, domain


def _phone(raw: str | None) -> tuple[str | None, str | None]:
    text = (raw or "").strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        return None, None
    full = f"+{digits}" if text.startswith("+") else digits
    return full, digits[-7:] if len(digits) >= 7 else None


def _street(values: Mapping[str, str]) -> tuple[str, ...] | None:
    words = fold(f"{values.get('address_line1', '')} {values.get('address_line2', '')}").split()
    tokens = sorted({STREET_WORDS.get(word, word) for word in words})
    return tuple(tokens) or None


def _tokens(items: Sequence[str]) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    ids = sorted({item.strip() for item in items if item.strip()})
    namespaces = sorted({item.partition(":")[0] for item in ids})
    return (tuple(ids) or None), (tuple(namespaces) or None)


def _folded(raw: str | None) -> str | None:
    return fold(raw) or None if raw else None


def match_record(
    unique_id: str, values: Mapping[str, str], external_ids: Sequence[str] = ()
) -> MatchRecord:
    """The normalized record of a profile: ``values`` keyed by cdlm profile field (any may be
    missing), ``external_ids`` opaque ``namespace:digest`` tokens."""
    given, given_canonical, initial = _given(values.get("given_name"))
    family = _folded(values.get("family_name"))
    born, swapped, year_month, year = _birth(values.get("birth_date"))
    email, local, letters, domain = _email(values.get("email"))
    phone, last7 = _phone(values.get("phone"))
    postal = "".join(ch for ch in values.get("postal_code", "") if ch.isalnum()).upper()
    country = values.get("country", "").strip().upper()
    ids, namespaces = _tokens(external_ids)
    return MatchRecord(
        unique_id=unique_id,
        given_name=given,
        given_canonical=given_canonical,
        given_initial=initial,
        family_name=family,
        family_key=soundex(family) if family else None,
        birth_date=born,
        birth_swapped=swapped,
        birth_year_month=year_month,
        birth_year=year,
        email=email,
        email_local=local,
        email_letters=letters,
        email_domain=domain,
        phone=phone,
        phone_last7=last7,
        postal_code=postal or None,
        street_tokens=_street(values),
        city=_folded(values.get("city")),
        country=country or None,
        external_ids=ids,
        external_namespaces=namespaces,
    )

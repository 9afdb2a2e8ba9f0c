"""Hard conflicts: what says two records are two people however high their match score.

A pair with any conflict is never merged automatically (a steward may still merge it). Pure
functions of two :class:`~cdlm.matching.features.MatchRecord` s:

- ``EXTERNAL_ID_DIFFERS``: both carry an id of the same source system and none in common there
  (a system keeps one id per person);
- ``BIRTH_DATE_DIFFERS``: both have a birth date and they differ, unless one is the other with
  day and month exchanged (a typing slip, not another person);
- ``HOUSEHOLD``: they share the phone or the postal address (same postcode and street words)
  while their given names disagree: neither is equal to, a nickname of, or the initial of the
  other, nor given and family names exchanged; when they also share an email address, a
  spelling variant agrees too (identity's rule after an email match), and when a source
  system gives both the same id, names are not asked to agree (identity's rule after an
  external id match). People living together share a phone and an address, not a first
  name: a misspelt first name at the same address, without the same email or id, is left
  to a steward.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from cdlm.core.identifiers import IdentifierKind
from cdlm.identity.agreement import NAME_SIMILARITY, names_compatible
from cdlm.matching.features import MatchRecord


class Conflict(StrEnum):
    """Why a scored pair must not be merged automatically."""

    EXTERNAL_ID_DIFFERS = "external_id_differs"
    BIRTH_DATE_DIFFERS = "birth_date_differs"
    HOUSEHOLD = "household"


def _ids_by_namespace(record: MatchRecord) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for token in record.external_ids or ():
        found.setdefault(token.partition(":")[0], set()).add(token)
    return found


def external_ids_differ(left: MatchRecord, right: MatchRecord) -> bool:
    """Both have ids of one system and share none of them."""
    mine, theirs = _ids_by_namespace(left), _ids_by_namespace(right)
    return any(not mine[system] & theirs[system] for system in mine.keys() & theirs.keys())


def birth_dates_differ(left: MatchRecord, right: MatchRecord) -> bool:
    """Both born, on different days that are not each other with day and month exchanged."""
    if left.birth_date is None or right.birth_date is None:
        return False
    return left.birth_date != right.birth_date and left.birth_date != right.birth_swapped


def names_swapped(left: MatchRecord, right: MatchRecord) -> bool:
    """Each record's given name is the other's family name: one person, fields exchanged."""
    return (
        left.given_name is not None
        and left.given_name == right.family_name
        and left.family_name is not None
        and left.family_name == right.given_name
    )


def given_names_agree(left: MatchRecord, right: MatchRecord) -> bool | None:
    """Equal, nickname-equal, an initial of the other, or given and family names exchanged;
    with the same email also a spelling variant (None: a side has no given name).

    The closeness asked is identity's (:data:`cdlm.identity.agreement.NAME_SIMILARITY`): equal
    names after a shared phone, a Jaro-Winkler of at least 0.88 after a shared inbox.
    """
    if left.given_name is None or right.given_name is None:
        return None
    if left.given_canonical == right.given_canonical or names_swapped(left, right):
        return True
    shared = IdentifierKind.EMAIL if left.email and left.email == right.email else None
    threshold = NAME_SIMILARITY[shared] if shared else 1.0
    return names_compatible(
        {"given_name": left.given_name}, {"given_name": right.given_name}, threshold
    )


def same_address(left: MatchRecord, right: MatchRecord) -> bool:
    """Same postcode and the same street words (house number included)."""
    return (
        left.postal_code is not None
        and left.postal_code == right.postal_code
        and left.street_tokens is not None
        and left.street_tokens == right.street_tokens
    )


def shared_external_id(left: MatchRecord, right: MatchRecord) -> bool:
    """Both carry one id of a source system: that system's own key says they are one."""
    return bool(set(left.external_ids or ()) & set(right.external_ids or ()))


def household(left: MatchRecord, right: MatchRecord) -> bool:
    """A shared phone or address, and given names that disagree (unless a source system
    keys both records alike: identity takes an external id match without a name check)."""
    shares = (left.phone is not None and left.phone == right.phone) or same_address(left, right)
    return (
        shares and given_names_agree(left, right) is False and not shared_external_id(left, right)
    )


#: Each conflict and the rule that finds it.
RULES: tuple[tuple[Conflict, Callable[[MatchRecord, MatchRecord], bool]], ...] = (
    (Conflict.EXTERNAL_ID_DIFFERS, external_ids_differ),
    (Conflict.BIRTH_DATE_DIFFERS, birth_dates_differ),
    (Conflict.HOUSEHOLD, household),
)


def conflicts(left: MatchRecord, right: MatchRecord) -> frozenset[Conflict]:
    """Every hard conflict between two records (empty: nothing forbids merging them)."""
    return frozenset(conflict for conflict, found in RULES if found(left, right))

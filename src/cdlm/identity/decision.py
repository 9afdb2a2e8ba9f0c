"""The identity decision: which customer a record's identifiers point to, what to attach, and
who was passed over. A pure function of the identifiers, their current owners, how many each
candidate holds, and the values to compare (no I/O): :mod:`cdlm.identity.service` gathers those
and writes the outcome.

The strongest identifier that already belongs to a customer decides the match (external id,
then email, then phone), unless the record contradicts that customer
(:mod:`cdlm.identity.agreement`); identifiers beyond a kind's limit, or owned by another
customer, are not attached.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cdlm.core.errors import ErrorCode, FieldIssue
from cdlm.core.identifiers import LIMITS, PRIORITY, Identifier, IdentifierKind
from cdlm.identity.agreement import Contradiction, contradictions


@dataclass(frozen=True)
class PassedOver:
    """A customer who shares an identifier with the record but is taken for another person."""

    customer_id: uuid.UUID
    identifier: Identifier
    reasons: tuple[Contradiction, ...]


@dataclass
class Resolution:
    """Which customer the identifiers point to, what to attach, and who was passed over."""

    customer_id: uuid.UUID | None
    rule: str | None
    attach: list[Identifier] = field(default_factory=list)
    notes: list[FieldIssue] = field(default_factory=list)
    indexes: dict[Identifier, str] = field(default_factory=dict)
    passed_over: list[PassedOver] = field(default_factory=list)


def ordered(identifiers: Iterable[Identifier]) -> list[Identifier]:
    """Identifiers strongest first (external ids, emails, phones), each once."""
    rank = {kind: position for position, kind in enumerate(PRIORITY)}
    return sorted(set(identifiers), key=lambda i: (rank[i.kind], i.namespace, i.value))


def _limit_key(identifier: Identifier) -> tuple[IdentifierKind, str]:
    # External ids are limited per system; emails and phones per kind.
    return (identifier.kind, identifier.namespace)


def decide(
    identifiers: list[Identifier],
    owned: dict[Identifier, uuid.UUID],
    held: dict[uuid.UUID, Counter[tuple[IdentifierKind, str]]],
    paths: dict[Identifier, str],
    incoming: Mapping[str, str] | None = None,
    profiles: Mapping[uuid.UUID, Mapping[str, str]] | None = None,
) -> Resolution:
    """Which customer ``identifiers`` point to and what to attach (no I/O).

    ``owned`` maps identifiers to their current owners and ``held`` counts each candidate's
    identifiers; both must include what earlier records of the same batch attached.
    ``incoming`` holds the record's normalized profile values and ``profiles`` each candidate's
    current values, for the contradiction rules of :mod:`cdlm.identity.agreement`.
    """
    resolution = Resolution(customer_id=None, rule=None)
    record = incoming or {}
    counts: Counter[tuple[IdentifierKind, str]] = Counter()
    for identifier in identifiers:
        candidate = owned.get(identifier)
        if candidate is None or candidate in {p.customer_id for p in resolution.passed_over}:
            continue
        candidate_counts = held.get(candidate, Counter())
        reasons = _contradictions(identifier, identifiers, owned, candidate, candidate_counts)
        reasons += contradictions(
            identifier.kind,
            record,
            (profiles or {}).get(candidate, {}),
            brings_other_email=any(
                other.kind is IdentifierKind.EMAIL and owned.get(other) != candidate
                for other in identifiers
            )
            and candidate_counts[(IdentifierKind.EMAIL, "")] > 0,
        )
        if reasons:
            resolution.passed_over.append(PassedOver(candidate, identifier, tuple(reasons)))
            continue
        resolution.customer_id = candidate
        resolution.rule = identifier.label
        counts = Counter(candidate_counts)
        break
    for identifier in identifiers:
        owner = owned.get(identifier)
        path = paths.get(identifier, "input")
        if owner is not None:
            if owner != resolution.customer_id:
                passed = next((p for p in resolution.passed_over if p.customer_id == owner), None)
                resolution.notes.append(
                    FieldIssue(path, ErrorCode.IDENTITY_CONFLICT, _taken(passed))
                )
            continue
        key = _limit_key(identifier)
        if counts[key] >= LIMITS[identifier.kind]:
            resolution.notes.append(
                FieldIssue(
                    path,
                    ErrorCode.IDENTITY_LIMIT,
                    "The profile holds the most identifiers of this kind; not attached.",
                )
            )
            continue
        counts[key] += 1
        resolution.attach.append(identifier)
    return resolution


_READABLE = {
    Contradiction.NAME_DIFFERS: "the name differs",
    Contradiction.BIRTH_DATE_DIFFERS: "the birth date differs",
    Contradiction.EMAIL_DIFFERS: "the email differs",
    Contradiction.EXTERNAL_ID_DIFFERS: "the source system's id differs",
}


def _taken(passed_over: PassedOver | None) -> str:
    if passed_over is None:
        return "This identifier already belongs to another customer; not attached."
    why = ", ".join(_READABLE[r] for r in passed_over.reasons)
    return (
        f"Another customer has this identifier but {why}: kept as a separate profile, "
        "recorded for review; not attached."
    )


def _contradictions(
    identifier: Identifier,
    identifiers: list[Identifier],
    owned: dict[Identifier, uuid.UUID],
    candidate: uuid.UUID,
    candidate_counts: Counter[tuple[IdentifierKind, str]],
) -> list[Contradiction]:
    """A match on an email or phone is refused when it would give the profile a second
    external id from a system that already names it: that system says these are two people."""
    clash = identifier.kind is not IdentifierKind.EXTERNAL_ID and any(
        other.kind is IdentifierKind.EXTERNAL_ID
        and owned.get(other) != candidate
        and candidate_counts[_limit_key(other)] >= LIMITS[IdentifierKind.EXTERNAL_ID]
        for other in identifiers
    )
    return [Contradiction.EXTERNAL_ID_DIFFERS] if clash else []

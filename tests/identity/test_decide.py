"""The identity decision as a pure function: which customer a record belongs to, what it
attaches, and when a shared email or phone is not enough (no database)."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import FrozenInstanceError

import pytest
from rapidfuzz.distance import JaroWinkler

from cdlm.core.errors import ErrorCode
from cdlm.core.identifiers import LIMITS, Identifier, IdentifierKind
from cdlm.identity.agreement import (
    FUZZY_NAMES,
    Contradiction,
    contradictions,
    names_compatible,
)
from cdlm.identity.decision import PassedOver, decide, ordered

pytestmark = pytest.mark.pure

EMAIL = Identifier(IdentifierKind.EMAIL, "", "ada@example.com")
OTHER_EMAIL = Identifier(IdentifierKind.EMAIL, "", "charles@example.com")
PHONE = Identifier(IdentifierKind.PHONE, "", "+442079460958")
CRM_1 = Identifier(IdentifierKind.EXTERNAL_ID, "crm", "1")
CRM_2 = Identifier(IdentifierKind.EXTERNAL_ID, "crm", "2")
SHOP_9 = Identifier(IdentifierKind.EXTERNAL_ID, "shop", "9")
ADA = uuid.UUID(int=1)
BOB = uuid.UUID(int=2)
ADA_PROFILE = {"given_name": "Ada", "family_name": "Lovelace", "birth_date": "1815-12-10"}


def held(**counts: int) -> Counter[tuple[IdentifierKind, str]]:
    names = {"email": (IdentifierKind.EMAIL, ""), "phone": (IdentifierKind.PHONE, ""),
             "crm": (IdentifierKind.EXTERNAL_ID, "crm")}  # fmt: skip
    return Counter({names[k]: v for k, v in counts.items()})


def paths(*identifiers: Identifier) -> dict[Identifier, str]:
    return {i: f"input.{i.kind.value}.{i.value}" for i in identifiers}


# ------------------------------------------------------------------------- plain matching


def test_a_record_nobody_owns_creates_a_profile_with_everything_attached() -> None:
    identifiers = ordered([PHONE, EMAIL, CRM_1])
    found = decide(identifiers, {}, {}, paths(*identifiers))
    assert (found.customer_id, found.rule) == (None, None)
    assert found.attach == [CRM_1, EMAIL, PHONE]
    assert found.notes == []
    assert found.passed_over == []


def test_the_strongest_owned_identifier_decides() -> None:
    identifiers = ordered([PHONE, EMAIL, CRM_1])
    owned = {PHONE: BOB, EMAIL: ADA}
    found = decide(identifiers, owned, {ADA: held(email=1), BOB: held(phone=1)}, paths(PHONE))
    assert (found.customer_id, found.rule) == (ADA, "email")
    assert found.attach == [CRM_1]
    (note,) = found.notes
    assert note.code is ErrorCode.IDENTITY_CONFLICT
    assert note.field == "input.phone.+442079460958"
    assert note.message == "This identifier already belongs to another customer; not attached."


def test_an_external_id_match_is_labelled_with_its_system() -> None:
    found = decide([CRM_1], {CRM_1: ADA}, {ADA: held(crm=1)}, {})
    assert (found.customer_id, found.rule) == (ADA, "external_id:crm")
    assert found.attach == []


def test_ordered_puts_external_ids_then_emails_then_phones_and_drops_repeats() -> None:
    assert ordered([PHONE, EMAIL, SHOP_9, PHONE, CRM_1]) == [CRM_1, SHOP_9, EMAIL, PHONE]


# ------------------------------------------------------------------- limits in one record


def test_two_external_ids_of_one_system_in_one_record_attach_only_one() -> None:
    identifiers = ordered([CRM_2, CRM_1, SHOP_9])
    found = decide(identifiers, {}, {}, paths(*identifiers))
    assert found.attach == [CRM_1, SHOP_9]
    (note,) = found.notes
    assert (note.code, note.field) == (ErrorCode.IDENTITY_LIMIT, "input.external_id.2")


def test_a_profile_at_its_email_limit_takes_no_sixth_email() -> None:
    identifiers = [EMAIL, OTHER_EMAIL]
    found = decide(
        identifiers,
        {EMAIL: ADA},
        {ADA: held(email=LIMITS[IdentifierKind.EMAIL])},
        paths(*identifiers),
    )
    assert found.customer_id == ADA
    assert found.attach == []
    assert [n.code for n in found.notes] == [ErrorCode.IDENTITY_LIMIT]


def test_a_profile_one_below_its_limit_takes_one_more() -> None:
    found = decide(
        [EMAIL, OTHER_EMAIL],
        {EMAIL: ADA},
        {ADA: held(email=LIMITS[IdentifierKind.EMAIL] - 1)},
        {},
    )
    assert found.attach == [OTHER_EMAIL]
    assert found.notes == []


def test_six_new_emails_of_one_profile_stop_at_five() -> None:
    emails = [Identifier(IdentifierKind.EMAIL, "", f"e{n}@example.com") for n in range(6)]
    found = decide(emails, {}, {}, paths(*emails))
    assert found.attach == emails[:5]
    assert [(n.code, n.field) for n in found.notes] == [
        (ErrorCode.IDENTITY_LIMIT, "input.email.e5@example.com")
    ]


# ---------------------------------------------------------------- another id of one system


def test_an_email_match_never_gives_a_profile_a_second_id_of_one_system() -> None:
    found = decide(
        ordered([CRM_2, EMAIL]),
        {EMAIL: ADA},
        {ADA: held(email=1, crm=1)},
        paths(CRM_2, EMAIL),
        {"given_name": "Ada"},
        {ADA: {"given_name": "Ada"}},
    )
    assert found.customer_id is None
    (passed,) = found.passed_over
    assert (passed.customer_id, passed.identifier) == (ADA, EMAIL)
    assert passed.reasons == (Contradiction.EXTERNAL_ID_DIFFERS,)
    assert found.attach == [CRM_2]


def test_an_email_match_with_an_id_of_a_new_system_stands() -> None:
    found = decide(ordered([SHOP_9, EMAIL]), {EMAIL: ADA}, {ADA: held(email=1, crm=1)}, {})
    assert found.customer_id == ADA
    assert found.attach == [SHOP_9]


# ---------------------------------------------------------------- shared emails and phones


def test_a_shared_phone_with_a_different_name_and_email_makes_a_new_profile() -> None:
    identifiers = ordered([OTHER_EMAIL, PHONE])
    found = decide(
        identifiers,
        {PHONE: ADA},
        {ADA: held(email=1, phone=1)},
        paths(*identifiers),
        {"given_name": "Charles", "family_name": "Babbage"},
        {ADA: ADA_PROFILE},
    )
    assert found.customer_id is None
    (passed,) = found.passed_over
    assert passed.reasons == (Contradiction.NAME_DIFFERS, Contradiction.EMAIL_DIFFERS)
    assert found.attach == [OTHER_EMAIL]
    (note,) = found.notes
    assert note.code is ErrorCode.IDENTITY_CONFLICT
    assert note.message == (
        "Another customer has this identifier but the name differs, the email differs: kept as "
        "a separate profile, recorded for review; not attached."
    )


def test_a_household_sharing_a_phone_stays_two_people() -> None:
    found = decide(
        [PHONE],
        {PHONE: ADA},
        {ADA: held(phone=1)},
        {},
        {"given_name": "Erica", "family_name": "Lovelace"},
        {ADA: {"given_name": "Eric", "family_name": "Lovelace"}},
    )
    assert found.customer_id is None
    assert found.passed_over[0].reasons == (Contradiction.NAME_DIFFERS,)


def test_a_phone_match_with_the_same_name_and_a_new_email_stands() -> None:
    found = decide(
        ordered([OTHER_EMAIL, PHONE]),
        {PHONE: ADA},
        {ADA: held(email=1, phone=1)},
        {},
        {"given_name": "ada", "family_name": "LOVELACE"},
        {ADA: ADA_PROFILE},
    )
    assert (found.customer_id, found.rule) == (ADA, "phone")
    assert found.attach == [OTHER_EMAIL]


def test_a_phone_match_with_a_new_email_and_no_name_to_compare_is_kept_apart() -> None:
    found = decide(
        ordered([OTHER_EMAIL, PHONE]), {PHONE: ADA}, {ADA: held(email=1, phone=1)}, {}, {}, {}
    )
    assert found.customer_id is None
    assert found.passed_over[0].reasons == (Contradiction.EMAIL_DIFFERS,)


def test_a_phone_match_with_a_new_email_and_only_the_family_name_is_kept_apart() -> None:
    # A household: the same phone and family name, another inbox, no given name to compare.
    found = decide(
        ordered([OTHER_EMAIL, PHONE]),
        {PHONE: ADA},
        {ADA: held(email=1, phone=1)},
        {},
        {"family_name": "Lovelace"},
        {ADA: ADA_PROFILE},
    )
    assert found.customer_id is None
    assert found.passed_over[0].reasons == (Contradiction.EMAIL_DIFFERS,)


def test_a_phone_match_bringing_the_first_email_of_a_profile_stands() -> None:
    found = decide(ordered([OTHER_EMAIL, PHONE]), {PHONE: ADA}, {ADA: held(phone=1)}, {}, {}, {})
    assert found.customer_id == ADA


def test_a_phone_match_with_nothing_else_to_compare_stands() -> None:
    found = decide([PHONE], {PHONE: ADA}, {ADA: held(phone=1)}, {}, {}, {ADA: ADA_PROFILE})
    assert found.customer_id == ADA


def test_a_shared_email_of_a_clearly_different_person_makes_a_new_profile() -> None:
    found = decide(
        [EMAIL],
        {EMAIL: ADA},
        {ADA: held(email=1)},
        {},
        {"given_name": "Charles", "family_name": "Babbage"},
        {ADA: ADA_PROFILE},
    )
    assert found.customer_id is None
    assert found.passed_over[0].reasons == (Contradiction.NAME_DIFFERS,)


def test_a_different_birth_date_contradicts_an_email_match() -> None:
    found = decide(
        [EMAIL],
        {EMAIL: ADA},
        {ADA: held(email=1)},
        {},
        {"given_name": "Ada", "birth_date": "1816-12-10"},
        {ADA: ADA_PROFILE},
    )
    assert found.passed_over[0].reasons == (Contradiction.BIRTH_DATE_DIFFERS,)


def test_a_contradicted_candidate_is_passed_over_for_the_next_identifier() -> None:
    identifiers = ordered([EMAIL, PHONE])
    found = decide(
        identifiers,
        {EMAIL: ADA, PHONE: BOB},
        {ADA: held(email=1), BOB: held(phone=1)},
        paths(*identifiers),
        {"given_name": "Bob", "family_name": "Babbage"},
        {ADA: ADA_PROFILE, BOB: {"given_name": "Bob", "family_name": "Babbage"}},
    )
    assert (found.customer_id, found.rule) == (BOB, "phone")
    assert [p.customer_id for p in found.passed_over] == [ADA]


def test_an_external_id_match_is_never_contradicted_by_names() -> None:
    found = decide(
        [CRM_1],
        {CRM_1: ADA},
        {ADA: held(crm=1)},
        {},
        {"given_name": "Charles", "birth_date": "1791-12-26"},
        {ADA: ADA_PROFILE},
    )
    assert found.customer_id == ADA


# ---------------------------------------------------------------------------- name rules


@pytest.mark.parametrize(
    ("incoming", "known", "kind", "expected"),
    [
        ({"given_name": "Ada"}, {"given_name": "ADA"}, IdentifierKind.PHONE, True),
        ({"given_name": "A."}, {"given_name": "Ada"}, IdentifierKind.PHONE, True),
        ({"given_name": "Zoë"}, {"given_name": "Zoe"}, IdentifierKind.PHONE, True),
        ({"given_name": "Eric"}, {"given_name": "Erica"}, IdentifierKind.PHONE, False),
        ({"given_name": "Grace"}, {"given_name": "Gracie"}, IdentifierKind.PHONE, False),
        ({"given_name": "Grace"}, {"given_name": "Gracie"}, IdentifierKind.EMAIL, True),
        ({"given_name": "Jane"}, {"given_name": "John"}, IdentifierKind.EMAIL, False),
        ({"family_name": "Smyth"}, {"family_name": "Smith"}, IdentifierKind.EMAIL, True),
        ({"family_name": "Smyth"}, {"family_name": "Smith"}, IdentifierKind.PHONE, False),
        ({"family_name": "García"}, {"family_name": "García-López"}, IdentifierKind.PHONE, True),
        ({"family_name": "O'Brien"}, {"family_name": "obrien"}, IdentifierKind.PHONE, True),
        ({"family_name": "Lovelace"}, {"family_name": "Byron"}, IdentifierKind.EMAIL, False),
        ({"given_name": "Ada"}, {"family_name": "Lovelace"}, IdentifierKind.PHONE, None),
        ({}, ADA_PROFILE, IdentifierKind.PHONE, None),
        ({"given_name": "---"}, {"given_name": "Ada"}, IdentifierKind.PHONE, True),
    ],
)
def test_names_compatible(
    incoming: dict[str, str], known: dict[str, str], kind: IdentifierKind, expected: bool | None
) -> None:
    threshold = FUZZY_NAMES if kind is IdentifierKind.EMAIL else 1.0
    assert names_compatible(incoming, known, threshold) is expected


def test_the_fuzzy_threshold_is_inclusive() -> None:
    # Jaro-Winkler("martha", "marhta") is 0.9611...; a threshold just above refuses it.
    assert names_compatible({"given_name": "Martha"}, {"given_name": "Marhta"}, 0.9611) is True
    assert names_compatible({"given_name": "Martha"}, {"given_name": "Marhta"}, 0.9612) is False


def test_contradictions_list_every_reason_in_order() -> None:
    found = contradictions(
        IdentifierKind.PHONE,
        {"given_name": "Charles", "birth_date": "1791-12-26"},
        ADA_PROFILE,
        brings_other_email=True,
    )
    assert found == [
        Contradiction.NAME_DIFFERS,
        Contradiction.BIRTH_DATE_DIFFERS,
        Contradiction.EMAIL_DIFFERS,
    ]


def test_an_email_match_is_not_contradicted_by_another_email() -> None:
    assert contradictions(IdentifierKind.EMAIL, {}, ADA_PROFILE, brings_other_email=True) == []


def test_the_same_birth_date_is_no_contradiction() -> None:
    same = {"birth_date": "1815-12-10"}
    assert contradictions(IdentifierKind.EMAIL, same, ADA_PROFILE, brings_other_email=False) == []


# ------------------------------------------------------------- exact boundaries and values


def fresh(customer_id: uuid.UUID) -> uuid.UUID:
    """An equal id that is another object, as ids read from different rows are."""
    return uuid.UUID(str(customer_id))


def test_identifiers_of_one_customer_from_different_rows_are_one_owner() -> None:
    found = decide(
        ordered([EMAIL, PHONE]),
        {EMAIL: fresh(ADA), PHONE: fresh(ADA)},
        {ADA: held(email=1, phone=1)},
        {},
    )
    assert found.customer_id == ADA
    assert found.notes == []
    assert found.attach == []


def test_a_new_id_of_another_system_is_not_taken_for_another_email() -> None:
    # The record's other identifiers are an id from a new system and the matched phone.
    found = decide(
        ordered([SHOP_9, PHONE]), {PHONE: ADA}, {ADA: held(email=1, phone=1)}, {}, {}, {}
    )
    assert (found.customer_id, found.rule) == (ADA, "phone")
    assert found.attach == [SHOP_9]


def test_a_new_phone_is_not_taken_for_another_id_of_one_system() -> None:
    found = decide(
        ordered([EMAIL, Identifier(IdentifierKind.PHONE, "", "+15550100")]),
        {EMAIL: ADA},
        {ADA: held(email=1, phone=1, crm=1)},
        {},
    )
    assert found.customer_id == ADA


def test_a_phone_match_is_refused_a_second_id_of_one_system_too() -> None:
    found = decide(ordered([CRM_2, PHONE]), {PHONE: ADA}, {ADA: held(phone=1, crm=1)}, {}, {}, {})
    assert found.customer_id is None
    assert found.passed_over[0].reasons == (Contradiction.EXTERNAL_ID_DIFFERS,)


def test_a_profile_already_over_a_limit_takes_no_more() -> None:
    # Older data can hold more than today's limits allow: nothing more is attached.
    over = LIMITS[IdentifierKind.EMAIL] + 1
    found = decide([EMAIL, OTHER_EMAIL], {EMAIL: ADA}, {ADA: held(email=over)}, {})
    assert found.attach == []
    assert [n.code for n in found.notes] == [ErrorCode.IDENTITY_LIMIT]
    clash = decide(ordered([CRM_2, EMAIL]), {EMAIL: ADA}, {ADA: held(email=1, crm=2)}, {})
    assert clash.customer_id is None


def test_each_note_gives_the_reasons_of_its_own_customer() -> None:
    identifiers = ordered([EMAIL, PHONE])
    found = decide(
        identifiers,
        {EMAIL: fresh(BOB), PHONE: fresh(ADA)},
        {ADA: held(phone=1), BOB: held(email=1)},
        paths(*identifiers),
        {"given_name": "Carl", "birth_date": "1900-01-01"},
        {BOB: {"given_name": "Bob"}, ADA: {"birth_date": "1815-12-10"}},
    )
    assert found.customer_id is None
    messages = {n.field: n.message for n in found.notes}
    assert "but the name differs:" in messages[paths(EMAIL)[EMAIL]]
    assert "but the birth date differs:" in messages[paths(PHONE)[PHONE]]


def test_values_of_the_decision_cannot_change() -> None:
    passed = PassedOver(ADA, EMAIL, (Contradiction.NAME_DIFFERS,))
    with pytest.raises(FrozenInstanceError):
        passed.customer_id = BOB  # type: ignore[misc]


def test_a_threshold_is_reached_exactly_at_the_similarity() -> None:
    exact = JaroWinkler.similarity("martha", "marhta")
    assert names_compatible({"given_name": "Martha"}, {"given_name": "Marhta"}, exact) is True


def test_without_a_threshold_names_must_be_equal() -> None:
    assert names_compatible({"given_name": "Grace"}, {"given_name": "Gracie"}) is False
    assert names_compatible({"given_name": "Grace"}, {"given_name": "GRACE"}) is True


def test_a_family_name_without_letters_compares_as_no_name() -> None:
    assert names_compatible({"family_name": "--"}, {"family_name": "Lovelace"}) is True
    assert names_compatible({"family_name": "Byron"}, {"family_name": "..."}) is True


def test_a_birth_date_equal_in_value_is_the_same_birth_date() -> None:
    born = "".join(["1815", "-12-10"])  # not the same string object as the profile's
    assert contradictions(IdentifierKind.EMAIL, {"birth_date": born}, ADA_PROFILE,
                          brings_other_email=False) == []  # fmt: skip


def test_a_note_names_the_reasons_of_its_owner_not_of_an_earlier_one() -> None:
    # Passed over in id order (Ada, then Bob): Bob's note must not take Ada's reasons.
    identifiers = ordered([EMAIL, PHONE])
    found = decide(
        identifiers,
        {EMAIL: fresh(ADA), PHONE: fresh(BOB)},
        {ADA: held(email=1), BOB: held(phone=1)},
        paths(*identifiers),
        {"given_name": "Carl", "birth_date": "1900-01-01"},
        {ADA: {"given_name": "Ada"}, BOB: {"birth_date": "1815-12-10"}},
    )
    messages = {n.field: n.message for n in found.notes}
    assert "but the name differs:" in messages[paths(EMAIL)[EMAIL]]
    assert "but the birth date differs:" in messages[paths(PHONE)[PHONE]]


def test_every_identifier_of_a_passed_over_customer_says_why() -> None:
    identifiers = ordered([EMAIL, PHONE])
    found = decide(
        identifiers,
        {EMAIL: fresh(ADA), PHONE: fresh(ADA)},
        {ADA: held(email=1, phone=1)},
        paths(*identifiers),
        {"given_name": "Carl"},
        {ADA: {"given_name": "Ada"}},
    )
    assert [p.customer_id for p in found.passed_over] == [ADA]
    assert all("but the name differs:" in n.message for n in found.notes)
    assert len(found.notes) == 2

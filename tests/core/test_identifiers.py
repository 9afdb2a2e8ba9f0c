"""Identifier normalization and the placeholder values that never match."""

from __future__ import annotations

import pytest

from cdlm.core.identifiers import (
    Identifier,
    IdentifierKind,
    InvalidIdentifier,
    normalize_email,
    normalize_external_id,
    normalize_phone,
)


def test_normalized_forms() -> None:
    assert normalize_email(" A.B@Example.com ") == Identifier(
        IdentifierKind.EMAIL, "", "a.b@example.com"
    )
    assert normalize_phone("+44 20 7946 0958", None).value == "+442079460958"
    assert normalize_phone("020 7946 0958", "GB").value == "+442079460958"
    external = normalize_external_id(" Salesforce:0035g00000AbC ")
    assert (external.namespace, external.value, external.label) == (
        "salesforce",
        "0035g00000AbC",
        "external_id:salesforce",
    )


@pytest.mark.parametrize(
    "raw",
    ["null", "N/A", "anonymous", "test@test.com", "noreply@shop.example", "no-reply@x.example"],
)
def test_placeholder_emails_are_blocked(raw: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        normalize_email(raw)
    assert caught.value.code == "BLOCKED_IDENTIFIER"


@pytest.mark.parametrize("raw", ["000000", "0-0-0", "-1", "null", "111111", "undefined"])
def test_placeholder_external_ids_are_blocked(raw: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        normalize_external_id(f"crm:{raw}")
    assert caught.value.code == "BLOCKED_IDENTIFIER"


@pytest.mark.parametrize("raw", ["crm", "crm:", ":123", "CRM System:1", "crm:" + "x" * 129])
def test_malformed_external_ids(raw: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        normalize_external_id(raw)
    assert caught.value.code in ("INVALID_FORMAT", "TOO_LONG")


@pytest.mark.parametrize("raw", ["0000000000", "+44 0000 000000", "12", "phone"])
def test_placeholder_or_invalid_phones(raw: str) -> None:
    with pytest.raises(InvalidIdentifier):
        normalize_phone(raw, "GB")

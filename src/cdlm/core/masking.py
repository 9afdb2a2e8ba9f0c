"""Masked renderings of personal values for roles that may not see them in clear.

A masked value keeps just enough to recognise a record (first letter, email domain, phone
country code and last two digits) and nothing that identifies the person by itself.
"""

from __future__ import annotations

MASK = "*"


def mask_email(value: str) -> str:
    """``jane.doe@example.com`` → ``j***@example.com``."""
    local, at, domain = value.rpartition("@")
    if not at:
        return mask_text(value)
    return f"{local[:1]}***@{domain}" if local else f"***@{domain}"


def mask_phone(value: str) -> str:
    """``+447700900121`` → ``+44********21`` (E.164 country code and last two digits kept)."""
    digits = [c for c in value if c.isdigit()]
    if len(digits) < 6:
        return MASK * len(digits) if digits else ""
    country = 2 if value.startswith("+") else 0
    kept_head = "".join(digits[:country])
    hidden = len(digits) - country - 2
    return ("+" if value.startswith("+") else "") + kept_head + MASK * hidden + "".join(digits[-2:])


def mask_name(value: str) -> str:
    """``Jane Doe`` → ``J*** D***``."""
    return " ".join(f"{part[:1]}***" for part in value.split()) or ""


def mask_text(value: str) -> str:
    """Any other personal text → ``***`` (its length is not revealed)."""
    return "***" if value else ""

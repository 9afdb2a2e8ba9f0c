"""Checks of decoded JSON values: text that PostgreSQL (and so cdlm) cannot store, nesting
deeper than anything recursive (encoders, digests) could walk, control characters in names
and labels, and the staff text rule."""

from __future__ import annotations

from typing import Any

from cdlm.core.errors import ErrorCode, ValidationFailed

#: Longest staff text (a reason, a note) cdlm keeps.
MAX_STAFF_TEXT = 500
#: Unicode bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069):
#: they reorder how the text around them shows, so that it reads other than it is stored
#: ("Trojan Source", CVE-2021-42574).
BIDI_CONTROLS = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))


def text_problem(value: object) -> str | None:
    """Why a decoded JSON value cannot be stored as text, or None when it can.

    PostgreSQL text holds neither NUL nor lone UTF-16 surrogates (which JSON escapes can
    produce). The walk is iterative, so deeply nested input cannot exhaust the stack.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "Text may not contain NUL characters."
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "Text must be valid Unicode (no lone surrogates)."
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


def has_control_characters(text: str) -> bool:
    """True when ``text`` holds NUL or another control character (C0, DEL, C1) or a
    bidirectional override or isolate (:data:`BIDI_CONTROLS`): never valid in a name or label
    cdlm keeps."""
    return any(ch < " " or "\x7f" <= ch < "\xa0" or ch in BIDI_CONTROLS for ch in text)


def nesting_depth(value: Any) -> int:
    """How deeply objects and lists nest in a decoded JSON value (a scalar is 0), found
    without recursion so that no depth can exhaust the stack."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth + 1)
            pending.extend((child, depth + 1) for child in item)
    return deepest


def staff_text(value: str | None, field: str, *, required: bool) -> str | None:
    """A reason or note staff wrote, trimmed: required where a rule wants one, at most
    :data:`MAX_STAFF_TEXT` characters, storable; None when absent and not required."""
    text = value.strip() if value is not None else None
    if not text:
        if required:
            raise ValidationFailed("Give a reason.", field=field, code=ErrorCode.REQUIRED)
        return None
    problem = text_problem(text)
    if problem is not None:
        raise ValidationFailed(problem, field=field)
    if any(ch in BIDI_CONTROLS for ch in text):
        raise ValidationFailed(
            "Text may not contain bidirectional override or isolate characters.", field=field
        )
    if len(text) > MAX_STAFF_TEXT:
        raise ValidationFailed(
            f"At most {MAX_STAFF_TEXT} characters.", field=field, code=ErrorCode.TOO_LONG
        )
    return text

"""Checks of text that PostgreSQL (and so cdlm) cannot store."""

from __future__ import annotations


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

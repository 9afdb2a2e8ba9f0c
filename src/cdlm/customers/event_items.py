"""The item (product or content) id of an event, read from its properties at ingestion.

Properties are sealed under the customer's key, so analysis cannot read them without opening
every customer's events. The item id is the one property recommendations need, and an item id
(a SKU, an article id) names a thing, not a person: it is copied into the clear ``events.item_id``
column as the event is stored (on the data map, erased with the event, in the access export).
The keys it is read from are configured (``CDLM_RECOMMENDATION_ITEM_KEYS``, first present wins).
An id holding an email address (``pii@example.com``, ``user:pii@example.com``) names a person:
it is refused, with a message that does not repeat it, so that no address reaches the clear
column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from cdlm.core.errors import ErrorCode, FieldIssue

#: Longest item id kept (the column's width).
MAX_ITEM_ID = 128
#: An email address anywhere in an id: a local part, ``@``, and a domain of dot-separated
#: labels ending with a top-level domain of letters (or an internationalized ``xn--`` one).
EMAIL_LIKE = re.compile(
    r"[^\s@<>()\[\],;:\"]+@(?:[^\W_]|-)+(?:\.(?:[^\W_]|-)+)*\.(?:[^\W\d_]{2,}|xn--[a-z0-9-]+)",
    re.IGNORECASE,
)


def item_id_of(
    properties: Mapping[str, Any] | None, keys: Sequence[str], field: str
) -> tuple[str | None, FieldIssue | None]:
    """The item id the first of ``keys`` present in ``properties`` gives (a string of 1 to
    ``MAX_ITEM_ID`` characters, or a whole number), or the problem with it on ``field``.
    (None, None): the event names no item."""
    if not properties:
        return None, None
    for key in keys:
        value = properties.get(key)
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value), None
        if not isinstance(value, str):
            return None, FieldIssue(
                field,
                ErrorCode.INVALID_FORMAT,
                f"The item id ({key}) is a string or a whole number.",
            )
        text = value.strip()
        if not text or not text.isprintable():
            return None, FieldIssue(
                field,
                ErrorCode.INVALID_FORMAT,
                f"The item id ({key}) is printable text of at least one character.",
            )
        if len(text) > MAX_ITEM_ID:
            return None, FieldIssue(
                field,
                ErrorCode.TOO_LONG,
                f"The item id ({key}) has at most {MAX_ITEM_ID} characters.",
            )
        if EMAIL_LIKE.search(text):
            return None, FieldIssue(
                field,
                ErrorCode.INVALID_FORMAT,
                f"The item id ({key}) holds an email address: an item id names a product or "
                "an article, not a person.",
            )
        return text, None
    return None, None

"""What a sealed value was sealed for: the purpose bound into its associated data.

A value opens only with its owner's key *and* the purpose it was sealed for, so a profile
cannot be passed off as an event's properties. Every sealing and opening names one of these.
"""

from __future__ import annotations

import uuid

PROFILE = "profile"
IDENTITY = "identity"
EVENT_PROPERTIES = "event-properties"
CONSENT_EVIDENCE = "consent-evidence"
MERGE_REASON = "merge-reason"
UNMERGE_REASON = "unmerge-reason"


def invalid_value(field: str) -> str:
    """A refused value of profile field ``field``."""
    return f"invalid:{field}"


def source_record(record_id: uuid.UUID) -> str:
    """What source record ``record_id`` sent."""
    return f"source:{record_id}"


def archived(category: str) -> str:
    """Rows of retention category ``category`` kept in an archive."""
    return f"archive:{category}"


def absorbed_key(customer_id: uuid.UUID) -> str:
    """The data key of ``customer_id``, kept under the key of the profile it was merged into."""
    return f"absorbed-key:{customer_id}"

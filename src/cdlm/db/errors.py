"""Errors raised while reaching or preparing the database."""

from __future__ import annotations


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or used; the message is safe to print (no password)."""

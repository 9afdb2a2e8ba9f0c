"""Replays of ingestion and request-creating mutations return the first result."""

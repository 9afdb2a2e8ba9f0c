"""Governance: the data map and the records of processing, generated from the live setup."""

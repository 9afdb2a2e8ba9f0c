"""Consent: a purposes catalog with versioned notices, an append-only hash-chained ledger of
decisions, and the one check every use of customer data asks."""

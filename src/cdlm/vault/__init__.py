"""Envelope encryption of personal data: per-customer data keys, blind indexes, key providers."""

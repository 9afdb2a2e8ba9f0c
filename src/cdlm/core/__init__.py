"""Shared, domain-free building blocks: the clock, errors, locks, hash chains,
principals and roles, personal-data kinds and masking, identifiers, vocabularies and
jurisdictions. Imports nothing else of cdlm."""

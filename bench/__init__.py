"""Benchmarks: each prints numbers measured on a real PostgreSQL (``make bench``)."""

"""Feedback sentiment rolled up per period and channel (scored at ingestion:
:mod:`cdlm.customers.feedback`)."""

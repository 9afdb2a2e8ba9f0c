"""Retention of customer data: legal holds that stop disposal."""

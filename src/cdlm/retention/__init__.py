"""Retention of customer data: policies, the sweep that disposes of what is past its period
(skipping what legal holds keep), archives; placing and releasing legal holds."""

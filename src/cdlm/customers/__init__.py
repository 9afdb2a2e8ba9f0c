"""Customers: acquisition from sources, the encrypted 360 profile, events and rectification."""

"""The installation itself: its identity and health."""

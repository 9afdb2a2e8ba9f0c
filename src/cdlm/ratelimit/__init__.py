"""Fixed-window attempt counters shared by every process (kept in PostgreSQL)."""

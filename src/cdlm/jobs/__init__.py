"""Scheduled work: one entry per job, run by the CLI, by Lambda schedules and by ``cdlm worker``.

Each job is safe to run twice at once (it holds a lock or works under row locks).
"""

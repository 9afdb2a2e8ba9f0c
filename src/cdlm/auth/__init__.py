"""Who is calling: staff users, API keys and sessions (principals, roles and who sees which
personal data in clear are in :mod:`cdlm.core`)."""

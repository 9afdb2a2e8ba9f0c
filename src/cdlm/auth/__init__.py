"""Who is calling: staff users, API keys, roles, sessions and masking policy."""

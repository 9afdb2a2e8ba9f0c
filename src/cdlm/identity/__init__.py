"""Identity resolution: one profile per person, from the identifiers sources send."""

"""Customer analytics: derived attributes, enrichment, scores and segments."""

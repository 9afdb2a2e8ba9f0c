"""Data quality: validation and normalization of profile values, scores and reports."""

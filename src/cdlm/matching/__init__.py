"""Probabilistic matching, the review queue, merge and unmerge."""

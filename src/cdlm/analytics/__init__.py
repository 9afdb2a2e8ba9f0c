"""Customer analytics: enrichment, RFM scores, lifetime value and churn risk, segments.

Heavy numerical libraries (scipy) are imported only by the modules that fit models, which only
jobs and commands import: never the API request path.
"""

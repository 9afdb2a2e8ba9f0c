"""Customer analytics: RFM scores, lifetime value and churn risk, segments.

Heavy numerical libraries (scipy) are imported only by the modules that fit models, which only
jobs and commands import: never the API request path. (Enrichment of profile attributes is part
of quality: :mod:`cdlm.quality.enrich`.)
"""

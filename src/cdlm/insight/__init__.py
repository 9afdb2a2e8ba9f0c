"""Insight: how customer data moves over time (the dashboard's time series, the quality
snapshots the daily analytics run keeps) and the offline HTML report (``cdlm report``)."""

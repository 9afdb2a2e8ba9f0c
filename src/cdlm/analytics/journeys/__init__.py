"""Journeys and funnels: how customers move through event types, computed in SQL.

:mod:`.sql` builds the statements (one per funnel, per top-paths answer and per page of
journeys), :mod:`.service` checks queries and shapes the answers, :mod:`.api` is the GraphQL
surface (``funnel``, ``topPaths`` and ``Customer.journey``).
"""

"""Personalization: an item-to-item model built by the daily analytics run, recommendations
and next best actions read from it, answered only where the personalization purpose permits.

:mod:`.model` (numpy/scipy) is imported only by the analytics run; the request path uses
:mod:`.service`, :mod:`.rules` and :mod:`.api`, which are SQL and plain Python.
"""

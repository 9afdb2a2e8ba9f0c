"""Segments: saved rules over what cdlm keeps in clear, evaluated in SQL on PostgreSQL.

:mod:`.definition` holds the rule as data, :mod:`.sql` compiles it to one parameterised
statement, :mod:`.service` saves segments and reads their size and members (consent applied
through the consent service's one check), :mod:`.api` is the GraphQL surface.
"""

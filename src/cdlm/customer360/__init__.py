"""The customer 360 read model: one person's data, decrypted for one request.

Both the GraphQL customer types and the access/portability export read personal data through
:mod:`cdlm.customer360.reader`; nothing else opens a profile for reading.
"""

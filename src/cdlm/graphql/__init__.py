"""The GraphQL kit every domain's API uses: permissions, errors, pagination, masking, scalars,
extensions and the shared enums. Imports no domain; the schema and the request
context are in :mod:`cdlm.api`."""

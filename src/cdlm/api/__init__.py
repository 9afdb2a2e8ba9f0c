"""The schema root and the HTTP edge: the schema that merges every domain's Query and
Mutation, the per-request context, the middleware and the refusals sent before GraphQL
runs."""

"""The GraphQL layer: schema assembly, request context, permissions, errors, pagination."""

"""Database access: Tortoise ORM on asyncpg, PostgreSQL only."""

"""Raw reads of the whole database, for checks that no personal value is stored in clear."""

from __future__ import annotations

from typing import Any


async def every_stored_value(connection: Any) -> str:
    """Every value of every table as text (bytes read as latin-1), one per line."""
    tables = await connection.execute_query_dict(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
        "AND table_type = 'BASE TABLE'"
    )
    dump = []
    for row in tables:
        name = row["table_name"]
        rows = await connection.execute_query_dict(f'SELECT * FROM "{name}"')
        for record in rows:
            for value in record.values():
                if isinstance(value, bytes | bytearray | memoryview):
                    dump.append(bytes(value).decode("latin-1"))
                else:
                    dump.append(str(value))
    return "\n".join(dump)

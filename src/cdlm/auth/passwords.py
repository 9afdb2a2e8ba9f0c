"""Password and secret hashing with argon2id (argon2-cffi)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from cdlm.errors import ErrorCode, FieldIssue

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

    def __post_init__(self) -> None:
        self._hasher = PasswordHasher(
            time_cost=self.time_cost,
            memory_cost=self.memory_cost_kib,
            parallelism=self.parallelism,
            type=Type.ID,
        )

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
        if self._dummy_hash is None:
            self._dummy_hash = self.hash(secrets.token_urlsafe(16))
        self.verify(self._dummy_hash, secret)


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

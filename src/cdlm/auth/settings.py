"""Authentication settings derived once from :class:`cdlm.config.Settings`."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cdlm.auth.passwords import SecretHasher
from cdlm.config import ConfigError, Settings

TOKEN_SECRET_FILE = "token.secret"  # noqa: S105 (a file name, not a secret)


@dataclass(frozen=True)
class AuthSettings:
    """Keys and costs used to authenticate callers."""

    token_secret: bytes
    access_token_ttl: timedelta
    hasher: SecretHasher

    def keyed_digest(self, purpose: str, value: str) -> str:
        """HMAC-SHA256 of ``value`` under a key derived for ``purpose`` (not reversible)."""
        key = hmac.new(self.token_secret, purpose.encode(), hashlib.sha256).digest()
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def _local_secret(data_dir: Path) -> bytes:
    """The secret in ``data_dir``, created (mode 0600) on first use."""
    path = data_dir / TOKEN_SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="utf-8").strip().encode()


def auth_settings(settings: Settings) -> AuthSettings:
    """Authentication settings; the token secret comes from the environment or the data dir."""
    if settings.token_secret is not None:
        secret = settings.token_secret.encode()
    else:
        try:
            secret = _local_secret(settings.data_dir)
        except OSError as error:
            raise ConfigError(
                "CDLM_TOKEN_SECRET", f"is unset and {settings.data_dir} is not writable ({error})"
            ) from None
    return AuthSettings(
        token_secret=secret,
        access_token_ttl=timedelta(seconds=settings.access_token_ttl),
        hasher=SecretHasher(
            time_cost=settings.password_hash_time_cost,
            memory_cost_kib=settings.password_hash_memory_kib,
        ),
    )

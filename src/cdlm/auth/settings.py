"""Authentication settings derived once from :class:`cdlm.config.Settings`."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cdlm.auth.passwords import SecretHasher
from cdlm.config import ConfigError, Settings
from cdlm.core.private_files import create_once
from cdlm.core.roles import Role

TOKEN_SECRET_FILE = "token.secret"  # noqa: S105 (a file name, not a secret)
MIN_SECRET_LENGTH = 32  # characters, as CDLM_TOKEN_SECRET must have


@dataclass(frozen=True)
class AuthSettings:
    """Keys and costs used to authenticate callers."""

    token_secret: bytes
    access_token_ttl: timedelta
    hasher: SecretHasher
    #: Roles whose staff users need current privacy training to access personal data.
    require_training: frozenset[Role] = frozenset()

    def keyed_digest(self, purpose: str, value: str) -> str:
        """HMAC-SHA256 of ``value`` under a key derived for ``purpose`` (not reversible)."""
        key = hmac.new(self.token_secret, purpose.encode(), hashlib.sha256).digest()
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def _local_secret(data_dir: Path) -> bytes:
    """The secret in ``data_dir``, created (mode 0600) on first use.

    An existing file is used as it is, whatever its permissions (as the master key file is):
    only the file's content is checked, and one of fewer than :data:`MIN_SECRET_LENGTH`
    characters is a configuration error, never a signing key.
    """
    path = data_dir / TOKEN_SECRET_FILE
    if not path.exists():
        create_once(path, secrets.token_urlsafe(48))
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError("CDLM_TOKEN_SECRET", f"is unset and {path} is not text") from None
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            "CDLM_TOKEN_SECRET",
            f"is unset and {path} holds fewer than {MIN_SECRET_LENGTH} characters",
        )
    return secret.encode()


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
        require_training=settings.require_training,
    )

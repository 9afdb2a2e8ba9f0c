"""The ledger key (``CDLM_LEDGER_KEY``), or, where it is unset outside production, a key file
created once in the data directory (as the token secret is)."""

from __future__ import annotations

import secrets

from cdlm.config import ConfigError, Settings, parse_ledger_keys
from cdlm.core import chain
from cdlm.core.private_files import create_once

LEDGER_KEY_FILE = "ledger.key"


def keyring_from(settings: Settings) -> chain.Keyring:
    """The ledger keys of the installation: the setting, else the local key file (made on
    first use, mode 0600; its content is read as ``CDLM_LEDGER_KEY`` would be)."""
    if settings.ledger_keys is not None:
        return settings.ledger_keys
    path = settings.data_dir / LEDGER_KEY_FILE
    try:
        if not path.exists():
            create_once(path, secrets.token_urlsafe(48))
        raw = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(
            "CDLM_LEDGER_KEY", f"is unset and {path} cannot be read ({type(error).__name__})"
        ) from None
    try:
        return parse_ledger_keys(raw)
    except ValueError as error:
        raise ConfigError("CDLM_LEDGER_KEY", f"is unset and {path}: {error}") from None


def install(settings: Settings) -> chain.Keyring:
    """Load the ledger keys and make them the process's (see :func:`cdlm.core.chain.keyring`)."""
    keys = keyring_from(settings)
    chain.use_keyring(keys)
    return keys

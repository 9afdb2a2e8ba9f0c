"""Settings kept in AWS Secrets Manager, read at run time (:data:`cdlm.config.SECRET_SETTINGS`).

On AWS the environment names secrets (``CDLM_TOKEN_SECRET_ARN``, ``CDLM_DATABASE_SECRET_ARN``
...) instead of holding their values. :func:`resolve` reads them on first need through AWS
Lambda Powertools' parameters utility, which caches each value for ``CDLM_SECRETS_TTL``
seconds, and returns the settings with the values in. Database logins stay live: a new
connection takes the cached user name and password, read again once the TTL has passed, and an
authentication failure reads them again at once (the secret was rotated), so rotation never
needs a deployment.

boto3 and Powertools are imported here, on first need, never when the API handler starts.
A missing or malformed secret raises :class:`~cdlm.config.ConfigError` naming the variable and
the secret, never a value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from cdlm.config import SECRET_SETTINGS, ConfigError, DatabaseTarget, Settings, load_settings

#: Errors of Secrets Manager worth naming as they are (anything else is named by its code).
_MEANINGS = {
    "ResourceNotFoundException": "does not exist",
    "AccessDeniedException": "may not be read by this function (AccessDenied)",
    "DecryptionFailure": "cannot be decrypted (its KMS key refused)",
    "InvalidRequestException": "cannot be read now (deleted or pending deletion)",
}


class SecretStore:
    """Secrets Manager behind Powertools' cache: each value is read again after ``max_age``
    seconds, or at once when ``refresh`` says it was found stale."""

    def __init__(self, max_age: int, client: Any = None) -> None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        self.max_age = max_age
        self._provider = SecretsProvider(boto3_client=client)

    def text(self, variable: str, secret_id: str, *, refresh: bool = False) -> str:
        """The secret's string (``variable`` names it, for messages)."""
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            value = self._provider.get(secret_id, max_age=self.max_age, force_fetch=refresh)
        except GetParameterError as error:
            raise ConfigError(variable, f"the secret {secret_id} {_meaning(error)}") from None
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(variable, f"the secret {secret_id} holds no text")
        return value

    def login(self, variable: str, secret_id: str, *, refresh: bool = False) -> tuple[str, str]:
        """The user name and password of a database secret (JSON, as RDS writes it)."""
        text = self.text(variable, secret_id, refresh=refresh)
        try:
            document = json.loads(text)
        except ValueError:
            raise ConfigError(variable, f"the secret {secret_id} is not JSON") from None
        if not isinstance(document, dict):
            raise ConfigError(variable, f"the secret {secret_id} is not a JSON object")
        missing = [
            key for key in ("username", "password") if not isinstance(document.get(key), str)
        ]
        if missing or not document["username"] or not document["password"]:
            absent = ", ".join(missing) or "username, password"
            raise ConfigError(variable, f"the secret {secret_id} has no {absent}")
        return document["username"], document["password"]


def _meaning(error: BaseException) -> str:
    cause = error.__cause__ or error.__context__
    response = getattr(cause, "response", {})
    code = response.get("Error", {}).get("Code")
    if response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
        code = "AccessDeniedException"  # however the service spells it
    if code is None:
        return f"could not be read ({type(cause or error).__name__})"
    return _MEANINGS.get(code, f"could not be read ({code})")


class DatabaseLogin:
    """The live login of a database secret: ``login(refresh)`` gives the user name and password
    (cached; ``refresh=True`` after an authentication failure reads the secret again)."""

    def __init__(self, store: SecretStore, variable: str, secret_id: str) -> None:
        self.store = store
        self.variable = variable
        self.secret_id = secret_id

    def __call__(self, refresh: bool = False) -> tuple[str, str]:
        return self.store.login(self.variable, self.secret_id, refresh=refresh)


def resolve(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    *,
    client: Any = None,
) -> Settings:
    """``settings`` with every secret they name read (no-op when they name none). ``environ``:
    the settings' environment (the process's by default); ``client``: a Secrets Manager
    client (default: one from the environment's AWS configuration)."""
    if not settings.secret_ids:
        return settings
    store = SecretStore(settings.secrets_ttl, client)
    wanted = [s for s in SECRET_SETTINGS if s.variable in settings.secret_ids]

    def read(index: int) -> str | tuple[str, str]:
        secret = wanted[index]
        secret_id = settings.secret_ids[secret.variable]
        if secret.login:
            return store.login(secret.secret_variable, secret_id)
        return store.text(secret.secret_variable, secret_id)

    # Each read is a round trip: read them at once (the client is thread-safe).
    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        values = list(pool.map(read, range(len(wanted))))
    texts = {s.variable: v for s, v in zip(wanted, values, strict=True) if isinstance(v, str)}
    resolved = load_settings(environ, secrets=texts)
    changes: dict[str, DatabaseTarget] = {}
    app_role = resolved.database_app_role
    for secret, value in zip(wanted, values, strict=True):
        if not isinstance(value, tuple) or secret.target is None:
            continue
        target = getattr(resolved, secret.target)
        if target is None:
            continue
        user = value[0]
        if secret.app_role and user != app_role:
            raise ConfigError(
                secret.secret_variable,
                f"the secret's user is {user}, not the app role {app_role} "
                "(CDLM_DATABASE_APP_ROLE)",
            )
        if not secret.app_role and user == app_role:
            raise ConfigError(
                secret.secret_variable, "the secret's user is the app role, not the owner"
            )
        login = DatabaseLogin(store, secret.secret_variable, settings.secret_ids[secret.variable])
        user, password = login()  # cached: read a moment ago
        changes[secret.target] = replace(target, user=user, password=password, login=login)
    primary, replica = changes.get("database"), resolved.database_read
    if primary is not None and replica is not None:  # the same role, so the same login
        changes["database_read"] = replace(
            replica, user=primary.user, password=primary.password, login=primary.login
        )
    return replace(resolved, **changes, secret_ids={})  # type: ignore[arg-type]

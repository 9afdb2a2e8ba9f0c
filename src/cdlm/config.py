"""Settings read from environment variables (12-factor).

This is the only module that reads ``os.environ``. Every value is validated when the settings are
loaded, and a bad value raises :class:`ConfigError` naming the variable, so the process can refuse
to start with one clear line instead of failing later with a traceback.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Final, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from cdlm.core.chain import KEY_ID_PATTERN, Keyring
from cdlm.core.jurisdictions import ClockRule, Jurisdiction, parse_rules
from cdlm.core.roles import Role

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class Environment(StrEnum):
    """Where the service runs; decides safe defaults."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
NOTIFIERS = ("log", "aws")


@dataclass(frozen=True)
class DatabaseTarget:
    """Where PostgreSQL is, parsed from a ``postgresql://`` URL.

    ``host`` may be a directory, meaning a Unix socket (``?host=/run/postgresql``).
    """

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    database: str
    ssl: str | None = None
    #: Where the user name and password come from when they rotate (a secret): called with
    #: ``refresh=True`` to read them again after an authentication failure. None: ``user`` and
    #: ``password`` are the credentials.
    login: Callable[[bool], tuple[str, str]] | None = field(default=None, repr=False, compare=False)

    @property
    def safe_description(self) -> str:
        """Where the database is, without the password (safe for logs and messages)."""
        return f"{self.user}@{self.host}:{self.port}/{self.database}"

    def with_database(self, database: str) -> DatabaseTarget:
        """The same server, another database."""
        return replace(self, database=database)


@dataclass(frozen=True)
class SecretSetting:
    """A setting whose value may be kept in AWS Secrets Manager: ``secret_variable`` then
    names the secret (ARN or name) instead of ``variable`` holding the value.

    A database login secret is JSON with ``username`` and ``password`` (as RDS writes them)
    for the database ``variable`` names without credentials: ``target`` is the
    :class:`Settings` field of that database, ``app_role`` whether the secret's user must be
    the app role (True) or must not be (False)."""

    variable: str
    secret_variable: str
    target: str | None = None
    app_role: bool = True

    @property
    def login(self) -> bool:
        """True for a database login secret."""
        return self.target is not None


#: Settings read from AWS Secrets Manager at run time when their secret is named (one line
#: each; :mod:`cdlm.aws_secrets` reads them on first need and caches them).
SECRET_SETTINGS: Final = (
    SecretSetting("CDLM_TOKEN_SECRET", "CDLM_TOKEN_SECRET_ARN"),
    SecretSetting("CDLM_LEDGER_KEY", "CDLM_LEDGER_KEY_ARN"),
    SecretSetting("DATABASE_URL", "CDLM_DATABASE_SECRET_ARN", target="database"),
    SecretSetting(
        "CDLM_DATABASE_OWNER_URL",
        "CDLM_DATABASE_OWNER_SECRET_ARN",
        target="database_owner",
        app_role=False,
    ),
)


def parse_database_url(url: str, variable: str = "DATABASE_URL") -> DatabaseTarget:
    """Parse ``postgresql://user:password@host:port/database?sslmode=require``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(variable, f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError(variable, "must start with postgresql:// (cdlm runs on PostgreSQL only)")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    host = query.pop("host", None) or parts.hostname or ""
    if not host:
        raise ConfigError(variable, "names no host (add @host or ?host=/socket/dir)")
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ConfigError(variable, "names no database (add /<database> after the host)")
    ssl = query.pop("sslmode", None) or query.pop("ssl", None)
    if ssl is not None and ssl not in (
        "disable",
        "allow",
        "prefer",
        "require",
        "verify-ca",
        "verify-full",
    ):
        raise ConfigError(variable, f"has an unknown sslmode {ssl!r}")
    if query:
        unknown = ", ".join(sorted(query))
        raise ConfigError(variable, f"has unsupported parameters: {unknown}")
    return DatabaseTarget(
        host=unquote(host),
        port=port or 5432,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        database=database,
        ssl=ssl,
    )


@dataclass(frozen=True)
class MatchSettings:
    """Probabilistic matching: decision thresholds (match probabilities) and run limits."""

    review_above: float = 0.80
    auto_merge_above: float | None = 0.90  # None: automatic merging is off
    budget_seconds: int | None = None
    after_import: int = 1000  # an import touching this many profiles starts a run (0: never)


#: Same shapes as stored event types and ISO 4217 codes (checked again by the analytics rules).
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
#: Event types scored for sentiment at ingestion (``cdlm.customers.feedback``).
FEEDBACK_TYPES = frozenset({"review", "survey_answer", "support_message", "social_mention"})


@dataclass(frozen=True)
class BulkImportSettings:
    """Bulk import from S3: objects land under ``incoming/`` of ``bucket``; an unfinished import
    continues through ``queue_url`` (SQS); larger objects than ``max_bytes`` are refused."""

    bucket: str
    queue_url: str
    max_bytes: int = 5 * 1024**3
    batch_size: int = 250


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_QUEUE_URL = re.compile(r"^https://[a-z0-9.-]+(:[0-9]+)?/[0-9]{12}/[A-Za-z0-9_-]{1,80}(\.fifo)?$")


def _bucket(raw: str) -> str:
    if not _BUCKET.match(raw.strip()):
        raise ValueError("is not an S3 bucket name")
    return raw.strip()


def _queue_url(raw: str) -> str:
    if not _QUEUE_URL.match(raw.strip()):
        raise ValueError(
            "is not an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)"
        )
    return raw.strip()


def _bulk_import(env: _Reader) -> BulkImportSettings | None:
    bucket = env.get("CDLM_IMPORT_BUCKET", _bucket, None)
    queue_url = env.get("CDLM_IMPORT_QUEUE_URL", _queue_url, None)
    if bucket is None:
        if queue_url is not None:
            raise ConfigError("CDLM_IMPORT_BUCKET", "is required with CDLM_IMPORT_QUEUE_URL")
        return None
    if queue_url is None:
        raise ConfigError("CDLM_IMPORT_QUEUE_URL", "is required with CDLM_IMPORT_BUCKET")
    return BulkImportSettings(
        bucket=bucket,
        queue_url=queue_url,
        max_bytes=env.get("CDLM_IMPORT_MAX_BYTES", _int_in(1, 50 * 1024**3), 5 * 1024**3),
        batch_size=env.get("CDLM_IMPORT_BATCH_SIZE", _int_in(1, 5000), 250),
    )


@dataclass(frozen=True)
class AnalyticsSettings:
    """Analytics runs: which events are purchases, the reporting currency and its rates, and
    how many repeat buyers a lifetime-value fit needs."""

    purchase_types: frozenset[str] = frozenset({"purchase"})
    currency: str = "EUR"
    #: Units of the reporting currency per unit of each other currency.
    rates: Mapping[str, Decimal] = field(default_factory=dict)
    min_repeat_buyers: int = 20


#: Property keys an event's item (product or content) id is read from, first present wins.
DEFAULT_ITEM_KEYS: tuple[str, ...] = ("itemId", "productId", "sku", "contentId")
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PURPOSE_CODE = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")
_PROPERTY_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class RecommendationSettings:
    """Personalization: the consent purpose it rests on, where item ids are in event
    properties, which events are views, and the shape of the item-to-item model."""

    purpose: str = "personalization"
    item_keys: tuple[str, ...] = DEFAULT_ITEM_KEYS
    view_types: frozenset[str] = frozenset({"view"})
    #: Neighbours kept per item.
    neighbours: int = 20
    #: Customers who must share a pair of items before the pair is kept.
    min_customers: int = 2


@dataclass(frozen=True)
class Settings:
    """Validated runtime configuration. Build it with :func:`load_settings`."""

    environment: Environment
    database: DatabaseTarget | None
    data_dir: Path
    master_key_file: Path
    kms_key_id: str | None
    log_level: str
    graphiql: bool
    introspection: bool
    host: str
    port: int
    max_query_depth: int
    max_aliases: int
    max_tokens: int
    max_body_bytes: int
    db_pool_max: int
    db_connect_timeout: float
    token_secret: str | None = field(repr=False)
    access_token_ttl: int
    password_hash_time_cost: int
    password_hash_memory_kib: int
    source_trust: dict[str, int] = field(default_factory=dict)
    controller_name: str = "Data controller"
    controller_email: str | None = None
    policy_url: str | None = None
    jurisdiction: str = "EU"
    dsr_default_jurisdiction: Jurisdiction = Jurisdiction.GDPR
    dsr_clocks: dict[Jurisdiction, ClockRule] = field(default_factory=dict)
    dsr_due_soon_days: int = 7
    export_download_ttl: int = 86_400
    public_url: str = "http://127.0.0.1:8000"
    notifier: str = "log"
    notify_from: str | None = None
    archive_dir: Path = Path("archive")
    archive_bucket: str | None = None
    #: The erasure register: one file per erasure, outside the database (re-applied on restore).
    erasure_register_dir: Path = Path("erasure-register")
    #: The keys of the audit and consent chains (``CDLM_LEDGER_KEY``); None: the local key file.
    ledger_keys: Keyring | None = field(default=None, repr=False)
    #: Local write-once directory of the ledgers' checkpoints.
    checkpoint_dir: Path = Path("checkpoints")
    #: S3 bucket with Object Lock for checkpoints and the erasure register (AWS).
    ledger_bucket: str | None = None
    #: Days each object written there is locked (compliance mode); None: the bucket's default.
    ledger_retention_days: int | None = None
    matching: MatchSettings = field(default_factory=lambda: MatchSettings())
    analytics: AnalyticsSettings = field(default_factory=lambda: AnalyticsSettings())
    #: Event types whose text is scored for sentiment and whose survey answers are kept.
    feedback_types: frozenset[str] = FEEDBACK_TYPES
    recommendations: RecommendationSettings = field(
        default_factory=lambda: RecommendationSettings()
    )
    #: Browser origins allowed to call ``/graphql`` across origins (CORS); empty: CORS off.
    cors_origins: tuple[str, ...] = ()
    #: Roles whose staff users read data subjects' personal data only with current privacy
    #: training; empty: no training is required.
    require_training: frozenset[Role] = frozenset()
    #: Profiles whose quality score is below this are stewardship tasks.
    stewardship_quality_below: float = 0.5
    #: The role the application connects as (created and granted by the migrations).
    database_app_role: str = "cdlm_app"
    #: Where ``cdlm migrate`` connects, as the tables' owner (``CDLM_DATABASE_OWNER_URL``).
    database_owner: DatabaseTarget | None = None
    #: A read replica for reads that may lag (lists, analytics, dashboards, reports), reached
    #: as the app role (``CDLM_DATABASE_READ_URL``); None: every read goes to the primary.
    database_read: DatabaseTarget | None = None
    #: S3 bulk import (``CDLM_IMPORT_*``); None when this installation does not use it.
    bulk_import: BulkImportSettings | None = None
    #: Secrets still to read (setting -> secret ARN or name; :mod:`cdlm.aws_secrets`).
    secret_ids: Mapping[str, str] = field(default_factory=dict)
    #: Seconds a secret read from AWS Secrets Manager is used before it is read again.
    secrets_ttl: int = 300

    def secret_pending(self, variable: str) -> bool:
        """True when ``variable``'s value is still to be read from its secret."""
        return variable in self.secret_ids

    @property
    def uses_embedded_database(self) -> bool:
        """True when no ``DATABASE_URL`` is set and cdlm runs its own PostgreSQL."""
        return self.database is None

    @property
    def embedded_pgdata(self) -> Path:
        """Data directory of the embedded PostgreSQL server."""
        return self.data_dir / "postgres"


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be one of true/false, 1/0, yes/no, on/off")


N = TypeVar("N", int, float)


def _number_in(kind: type[N], low: N, high: N) -> Callable[[str], N]:
    noun = "a whole number" if kind is int else "a number"

    def parse(raw: str) -> N:
        try:
            value = kind(raw.strip())
        except ValueError:
            raise ValueError(f"must be {noun}") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}")
        return value

    return parse


def _int_in(low: int, high: int) -> Callable[[str], int]:
    return _number_in(int, low, high)


def _float_in(low: float, high: float) -> Callable[[str], float]:
    return _number_in(float, low, high)


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip()
        upper = value.upper()
        for choice in choices:
            if choice.upper() == upper:
                return choice
        raise ValueError(f"must be one of {', '.join(choices)}")

    return parse


def _trust_table(raw: str) -> dict[str, int]:
    table: dict[str, int] = {}
    for part in raw.split(","):
        name, separator, level = part.strip().partition("=")
        if not separator or not name.strip():
            raise ValueError("must read kind=level,kind=level (e.g. crm=90,web_form=40)")
        try:
            value = int(level)
        except ValueError:
            raise ValueError(f"trust of {name.strip()} must be a whole number") from None
        if not 0 <= value <= 1000:
            raise ValueError("trust levels are between 0 and 1000")
        table[name.strip().lower()] = value
    return table


def _probability_or_off(raw: str) -> float | None:
    if raw.strip().lower() in ("off", "none", "false", "0"):
        return None
    return _float_in(0.5, 1.0)(raw)


def _public_url(raw: str) -> str:
    url = raw.strip().rstrip("/")
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        raise ValueError("is not an http(s) URL")
    return url


_ORIGIN = re.compile(
    r"(?P<scheme>https?)://"
    r"(?P<host>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*"
    r"|\[[0-9a-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(raw: str) -> str:
    """One origin exactly as a browser sends it in ``Origin``: ``scheme://host[:port]``."""
    origin = raw.strip()
    shown = repr(origin)
    if "*" in origin:
        raise ValueError(f"{shown}: wildcards are not allowed, list each origin")
    scheme, separator, rest = origin.partition("://")
    if not separator or scheme.lower() not in _DEFAULT_PORTS:
        raise ValueError(f"{shown} is not an origin (https://host or http://host:port)")
    if rest.endswith("/"):
        raise ValueError(f"{shown}: an origin ends without a slash")
    if any(mark in rest for mark in "/?#@"):
        raise ValueError(f"{shown}: an origin has no path, query, fragment or user name")
    if origin != origin.lower():
        raise ValueError(f"{shown}: write it in lower case, as browsers send it")
    matched = _ORIGIN.fullmatch(origin)
    if matched is None:
        raise ValueError(f"{shown} is not an origin (https://host or http://host:port)")
    port = matched["port"]
    if port is not None and not 1 <= int(port) <= 65535:
        raise ValueError(f"{shown}: the port must be between 1 and 65535")
    if port is not None and int(port) == _DEFAULT_PORTS[matched["scheme"]]:
        raise ValueError(f"{shown}: leave out the default port, as browsers do")
    return origin


def _origins(raw: str) -> tuple[str, ...]:
    origins: list[str] = []
    for part in raw.split(","):
        if part.strip() and (origin := _origin(part)) not in origins:
            origins.append(origin)
    return tuple(origins)


def _path(raw: str) -> Path:
    if not raw.strip():
        raise ValueError("must not be empty")
    return Path(raw.strip()).expanduser()


def _default_data_dir() -> Path:
    import platformdirs  # only when CDLM_DATA_DIR is unset (it is set on Lambda)

    return Path(platformdirs.user_data_dir("cdlm"))


class _Reader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, variable: str, parse: Callable[[str], T], default: T) -> T:
        raw = self._environ.get(variable)
        if raw is None or raw == "":
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            raise ConfigError(variable, f"{exc} (got {_shown(raw)})") from None

    def raw(self, variable: str) -> str | None:
        value = self._environ.get(variable)
        return value if value else None


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:37] + "...")


def _secret_ids(env: _Reader) -> dict[str, str]:
    ids: dict[str, str] = {}
    for secret in SECRET_SETTINGS:
        secret_id = env.raw(secret.secret_variable)
        if secret_id is None:
            continue
        if not _SECRET_ID.fullmatch(secret_id):
            raise ConfigError(secret.secret_variable, "is not a secret ARN or name")
        if not secret.login and env.raw(secret.variable) is not None:
            raise ConfigError(
                secret.secret_variable, f"names a secret for {secret.variable}, which is set too"
            )
        ids[secret.variable] = secret_id
    return ids


#: A Secrets Manager ARN, or a secret name (letters, digits and /_+=.@-).
_SECRET_ID = re.compile(
    r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+|[\w/+=.@-]{1,512}"
)


def load_settings(
    environ: Mapping[str, str] | None = None, *, secrets: Mapping[str, str] | None = None
) -> Settings:
    """Read and validate settings from ``environ`` (the process environment by default).

    ``secrets``: values read from the secrets the settings name (:data:`SECRET_SETTINGS`),
    used as if they were in ``environ``; a secret named but not given is left in
    :attr:`Settings.secret_ids`, to be read on first need."""
    source = os.environ if environ is None else environ
    env = _Reader({**source, **secrets} if secrets else source)
    secret_ids = {k: v for k, v in _secret_ids(_Reader(source)).items() if k not in (secrets or {})}
    environment = env.get(
        "CDLM_ENV",
        lambda raw: Environment(_one_of(tuple(e.value for e in Environment))(raw)),
        Environment.DEVELOPMENT,
    )
    database_url = env.raw("DATABASE_URL")
    database = parse_database_url(database_url) if database_url else None
    if database is None and environment is Environment.PRODUCTION:
        raise ConfigError("DATABASE_URL", "is required when CDLM_ENV=production")
    if "DATABASE_URL" in secret_ids and database is None:
        raise ConfigError("CDLM_DATABASE_SECRET_ARN", "needs DATABASE_URL (host and database)")
    if "DATABASE_URL" in secret_ids and database is not None and database.password:
        raise ConfigError("DATABASE_URL", "holds a password: CDLM_DATABASE_SECRET_ARN has it")
    owner_url = env.raw("CDLM_DATABASE_OWNER_URL")
    owner = parse_database_url(owner_url, "CDLM_DATABASE_OWNER_URL") if owner_url else None
    if owner is None and database is not None and "CDLM_DATABASE_OWNER_URL" in secret_ids:
        owner = replace(database, user="", password="", login=None)  # the owner's secret: later
    if "CDLM_DATABASE_OWNER_URL" in secret_ids and database is None:
        raise ConfigError("CDLM_DATABASE_OWNER_SECRET_ARN", "needs DATABASE_URL (the host)")
    if owner is not None and database is None:
        raise ConfigError("CDLM_DATABASE_OWNER_URL", "needs DATABASE_URL (the app role's URL)")
    app_role = env.raw("CDLM_DATABASE_APP_ROLE") or "cdlm_app"
    if not _ROLE_NAME.match(app_role):
        raise ConfigError(
            "CDLM_DATABASE_APP_ROLE", "must be a lower-case PostgreSQL role name (a-z, 0-9, _)"
        )
    if owner is not None and owner.user == app_role:
        raise ConfigError("CDLM_DATABASE_OWNER_URL", "must connect as the owner, not the app role")
    if owner is not None and database is not None and owner.database != database.database:
        raise ConfigError("CDLM_DATABASE_OWNER_URL", "must name the database DATABASE_URL names")
    read_url = env.raw("CDLM_DATABASE_READ_URL")
    read = parse_database_url(read_url, "CDLM_DATABASE_READ_URL") if read_url else None
    if read is not None and database is None:
        raise ConfigError("CDLM_DATABASE_READ_URL", "needs DATABASE_URL (the primary)")
    if read is not None and read.password and "DATABASE_URL" in secret_ids:
        raise ConfigError(
            "CDLM_DATABASE_READ_URL", "holds a password: CDLM_DATABASE_SECRET_ARN has it"
        )
    if read is not None and database is not None and read.user != database.user:
        raise ConfigError("CDLM_DATABASE_READ_URL", "must connect as DATABASE_URL's role")
    if read is not None and database is not None and read.database != database.database:
        raise ConfigError("CDLM_DATABASE_READ_URL", "must name the database DATABASE_URL names")
    token_secret = env.raw("CDLM_TOKEN_SECRET")
    if token_secret is not None and len(token_secret) < 32:
        raise ConfigError("CDLM_TOKEN_SECRET", "must have at least 32 characters")
    if (
        token_secret is None
        and environment is Environment.PRODUCTION
        and "CDLM_TOKEN_SECRET" not in secret_ids
    ):
        raise ConfigError(
            "CDLM_TOKEN_SECRET", "is required when CDLM_ENV=production (or CDLM_TOKEN_SECRET_ARN)"
        )
    raw_ledger_key = env.raw("CDLM_LEDGER_KEY")
    try:  # a secret: the message never repeats it
        ledger_keys = parse_ledger_keys(raw_ledger_key) if raw_ledger_key else None
    except ValueError as exc:
        raise ConfigError("CDLM_LEDGER_KEY", str(exc)) from None
    if (
        ledger_keys is None
        and environment is Environment.PRODUCTION
        and "CDLM_LEDGER_KEY" not in secret_ids
    ):
        raise ConfigError(
            "CDLM_LEDGER_KEY", "is required when CDLM_ENV=production (or CDLM_LEDGER_KEY_ARN)"
        )
    data_dir = env.get("CDLM_DATA_DIR", _path, None) or _default_data_dir()
    explorer_default = environment is not Environment.PRODUCTION
    production = environment is Environment.PRODUCTION
    notifier = env.get("CDLM_NOTIFIER", _one_of(NOTIFIERS), "aws" if production else "log")
    if notifier == "log" and production:
        raise ConfigError(
            "CDLM_NOTIFIER", "log writes verification codes and links to the log; use aws"
        )
    notify_from = env.raw("CDLM_NOTIFY_FROM")
    if notifier == "aws" and not notify_from:
        raise ConfigError("CDLM_NOTIFY_FROM", "is required with CDLM_NOTIFIER=aws")
    return Settings(
        environment=environment,
        database=database,
        data_dir=data_dir,
        master_key_file=env.get("CDLM_MASTER_KEY_FILE", _path, data_dir / "master.key"),
        kms_key_id=env.raw("CDLM_KMS_KEY_ID"),
        log_level=env.get("CDLM_LOG_LEVEL", _one_of(LOG_LEVELS), "INFO"),
        graphiql=env.get("CDLM_GRAPHIQL", _parse_bool, explorer_default),
        introspection=env.get("CDLM_INTROSPECTION", _parse_bool, explorer_default),
        host=env.get("CDLM_HOST", str.strip, "127.0.0.1"),
        port=env.get("CDLM_PORT", _int_in(1, 65535), 8000),
        max_query_depth=env.get("CDLM_MAX_QUERY_DEPTH", _int_in(2, 100), 12),
        max_aliases=env.get("CDLM_MAX_ALIASES", _int_in(1, 1000), 30),
        max_tokens=env.get("CDLM_MAX_TOKENS", _int_in(50, 100_000), 5000),
        max_body_bytes=env.get("CDLM_MAX_BODY_BYTES", _int_in(16_384, 104_857_600), 1_048_576),
        db_pool_max=env.get("CDLM_DB_POOL_MAX", _int_in(1, 200), 10),
        db_connect_timeout=env.get("CDLM_DB_CONNECT_TIMEOUT", _float_in(0.5, 120), 5.0),
        token_secret=token_secret,
        access_token_ttl=env.get("CDLM_ACCESS_TOKEN_TTL", _int_in(60, 86_400), 900),
        password_hash_time_cost=env.get("CDLM_PASSWORD_HASH_TIME_COST", _int_in(1, 10), 3),
        password_hash_memory_kib=env.get(
            "CDLM_PASSWORD_HASH_MEMORY_KIB", _int_in(1024, 1_048_576), 65536
        ),
        source_trust=env.get("CDLM_SOURCE_TRUST", _trust_table, {}),
        controller_name=env.raw("CDLM_CONTROLLER_NAME") or "Data controller",
        controller_email=env.raw("CDLM_CONTROLLER_EMAIL"),
        policy_url=env.raw("CDLM_POLICY_URL"),
        jurisdiction=env.raw("CDLM_JURISDICTION") or "EU",
        dsr_default_jurisdiction=env.get(
            "CDLM_DSR_DEFAULT_JURISDICTION",
            lambda raw: Jurisdiction(_one_of(tuple(j.value for j in Jurisdiction))(raw)),
            Jurisdiction.GDPR,
        ),
        dsr_clocks=env.get("CDLM_DSR_CLOCKS", parse_rules, {}),
        dsr_due_soon_days=env.get("CDLM_DSR_DUE_SOON_DAYS", _int_in(1, 60), 7),
        export_download_ttl=env.get("CDLM_EXPORT_DOWNLOAD_TTL", _int_in(300, 604_800), 86_400),
        public_url=env.get(
            "CDLM_PUBLIC_URL",
            _public_url,
            f"http://{env.get('CDLM_HOST', str.strip, '127.0.0.1')}:"
            f"{env.get('CDLM_PORT', _int_in(1, 65535), 8000)}",
        ),
        notifier=notifier,
        notify_from=notify_from,
        archive_dir=env.get("CDLM_ARCHIVE_DIR", _path, data_dir / "archive"),
        archive_bucket=env.raw("CDLM_ARCHIVE_BUCKET"),
        erasure_register_dir=env.get(
            "CDLM_ERASURE_REGISTER_DIR", _path, data_dir / "erasure-register"
        ),
        ledger_keys=ledger_keys,
        checkpoint_dir=env.get("CDLM_CHECKPOINT_DIR", _path, data_dir / "checkpoints"),
        ledger_bucket=env.get("CDLM_LEDGER_BUCKET", _bucket_name, None),
        ledger_retention_days=env.get("CDLM_LEDGER_RETENTION_DAYS", _int_in(1, 36_500), None),
        matching=_matching(env),
        analytics=_analytics(env),
        feedback_types=env.get("CDLM_FEEDBACK_EVENT_TYPES", _event_types, FEEDBACK_TYPES),
        recommendations=_recommendations(env),
        cors_origins=env.get("CDLM_CORS_ORIGINS", _origins, ()),
        require_training=env.get("CDLM_REQUIRE_TRAINING", _roles_or_all, frozenset()),
        stewardship_quality_below=env.get(
            "CDLM_STEWARDSHIP_QUALITY_BELOW", _float_in(0.0, 1.0), 0.5
        ),
        database_app_role=app_role,
        database_owner=owner,
        database_read=read,
        bulk_import=_bulk_import(env),
        secret_ids=secret_ids,
        secrets_ttl=env.get("CDLM_SECRETS_TTL", _int_in(0, 86_400), 300),
    )


MIN_LEDGER_KEY_LENGTH = 32
_KEY_ID = re.compile(KEY_ID_PATTERN)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def ledger_key_id(secret: str) -> str:
    """The id of a ledger key given without one: a digest of it (reveals nothing of it)."""
    return "k" + hashlib.sha256(b"cdlm-ledger-key-id\x00" + secret.encode()).hexdigest()[:12]


def parse_ledger_keys(raw: str) -> Keyring:
    """``CDLM_LEDGER_KEY``: one secret, or ``id:secret`` pairs separated by commas, the first
    being the current key (the others verify older entries). Secrets have at least
    :data:`MIN_LEDGER_KEY_LENGTH` characters."""
    keys: dict[str, bytes] = {}
    order: list[str] = []
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not parts:
        raise ValueError("must hold a secret, or id:secret pairs separated by commas")
    for part in parts:
        key_id, separator, secret = part.partition(":")
        if not separator:
            if len(parts) > 1:
                raise ValueError("give each key an id (id:secret) when there are several")
            key_id, secret = ledger_key_id(part), part
        elif not _KEY_ID.fullmatch(key_id):
            raise ValueError("key ids are lower case letters, digits, _ and - (at most 32)")
        if len(secret) < MIN_LEDGER_KEY_LENGTH:
            raise ValueError(f"each secret must have at least {MIN_LEDGER_KEY_LENGTH} characters")
        if key_id in keys:
            raise ValueError(f"the key id {key_id} is given twice")
        keys[key_id] = secret.encode()
        order.append(key_id)
    return Keyring(order[0], keys)


def _bucket_name(raw: str) -> str:
    name = raw.strip()
    if not _BUCKET.fullmatch(name):
        raise ValueError("is not an S3 bucket name")
    return name


def _roles_or_all(raw: str) -> frozenset[Role]:
    names = [part.strip().lower() for part in raw.split(",") if part.strip()]
    if names == ["all"]:
        return frozenset(Role)
    unknown = sorted(set(names) - {role.value for role in Role})
    if unknown or not names:
        raise ValueError(
            f"must be all or roles separated by commas ({', '.join(r.value for r in Role)})"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
        )
    return frozenset(Role(name) for name in names)


def _matching(env: _Reader) -> MatchSettings:
    review = env.get("CDLM_MATCH_REVIEW_ABOVE", _float_in(0.5, 1.0), 0.80)
    auto_default: float | None = 0.90
    auto = env.get("CDLM_MATCH_AUTO_MERGE_ABOVE", _probability_or_off, auto_default)
    if auto is not None and auto < review:
        raise ConfigError(
            "CDLM_MATCH_AUTO_MERGE_ABOVE",
            f"must be at least CDLM_MATCH_REVIEW_ABOVE ({review:g}), or off",
        )
    budget: int | None = env.get("CDLM_MATCH_BUDGET_SECONDS", _int_in(10, 86_400), None)
    return MatchSettings(
        review_above=review,
        auto_merge_above=auto,
        budget_seconds=budget,
        after_import=env.get("CDLM_MATCH_AFTER_IMPORT", _int_in(0, 10_000_000), 1000),
    )


def _event_types(raw: str) -> frozenset[str]:
    types = frozenset(part.strip() for part in raw.split(",") if part.strip())
    if not types:
        raise ValueError("must name at least one event type")
    bad = sorted(t for t in types if not _EVENT_TYPE.match(t))
    if bad:
        raise ValueError(
            f"{', '.join(repr(t) for t in bad)}: event types are lower case letters, digits "
            "and _ . : - (at most 64)"
        )
    return types


def _currency(raw: str) -> str:
    code = raw.strip()
    if not _CURRENCY.match(code):
        raise ValueError("must be an ISO 4217 code in capitals, e.g. EUR")
    return code


def _rates(raw: str) -> dict[str, Decimal]:
    rates: dict[str, Decimal] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        currency, equals, number = part.partition("=")
        currency = currency.strip()
        if not equals or not _CURRENCY.match(currency):
            raise ValueError(f"{part!r} is not CURRENCY=RATE (e.g. USD=0.92,GBP=1.17)")
        try:
            rate = Decimal(number.strip())
        except InvalidOperation:
            raise ValueError(f"the rate of {currency} is not a number") from None
        if not rate.is_finite() or rate <= 0:
            raise ValueError(f"the rate of {currency} must be a positive number")
        if currency in rates:
            raise ValueError(f"{currency} is given twice")
        rates[currency] = rate
    return rates


def _analytics(env: _Reader) -> AnalyticsSettings:
    currency = env.get("CDLM_ANALYTICS_CURRENCY", _currency, "EUR")
    no_rates: dict[str, Decimal] = {}
    rates = env.get("CDLM_ANALYTICS_RATES", _rates, no_rates)
    if rates.get(currency, Decimal(1)) != 1:
        raise ConfigError(
            "CDLM_ANALYTICS_RATES",
            f"the reporting currency {currency} (CDLM_ANALYTICS_CURRENCY) has rate 1",
        )
    return AnalyticsSettings(
        purchase_types=env.get(
            "CDLM_ANALYTICS_PURCHASE_TYPES", _event_types, frozenset({"purchase"})
        ),
        currency=currency,
        rates=rates,
        min_repeat_buyers=env.get("CDLM_ANALYTICS_MIN_REPEAT_BUYERS", _int_in(2, 10_000_000), 20),
    )


def _purpose_code(raw: str) -> str:
    code = raw.strip()
    if not _PURPOSE_CODE.match(code):
        raise ValueError("must be a purpose code: lower case letters, digits and _ . - (2 to 64)")
    return code


def _property_keys(raw: str) -> tuple[str, ...]:
    keys = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not keys:
        raise ValueError("must name at least one property key")
    bad = [key for key in keys if not _PROPERTY_KEY.match(key)]
    if bad:
        raise ValueError(
            f"{', '.join(repr(k) for k in bad)}: property keys are letters, digits, _ and - "
            "(at most 64, not starting with a digit or -)"
        )
    return keys


def _recommendations(env: _Reader) -> RecommendationSettings:
    views = env.get("CDLM_RECOMMENDATION_VIEW_TYPES", _event_types, frozenset({"view"}))
    purchases = env.get("CDLM_ANALYTICS_PURCHASE_TYPES", _event_types, frozenset({"purchase"}))
    both = sorted(views & purchases)
    if both:
        raise ConfigError(
            "CDLM_RECOMMENDATION_VIEW_TYPES",
            f"{', '.join(both)} is also a purchase type (CDLM_ANALYTICS_PURCHASE_TYPES)",
        )
    return RecommendationSettings(
        purpose=env.get("CDLM_PERSONALIZATION_PURPOSE", _purpose_code, "personalization"),
        item_keys=env.get("CDLM_RECOMMENDATION_ITEM_KEYS", _property_keys, DEFAULT_ITEM_KEYS),
        view_types=views,
        neighbours=env.get("CDLM_RECOMMENDATION_NEIGHBOURS", _int_in(1, 200), 20),
        min_customers=env.get("CDLM_RECOMMENDATION_MIN_CUSTOMERS", _int_in(1, 1000), 2),
    )

"""Settings: defaults, parsing and one clear message per bad value."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from cdlm.config import ConfigError, Environment, load_settings, parse_database_url


def test_defaults_for_development(tmp_path: Path) -> None:
    settings = load_settings({"CDLM_DATA_DIR": str(tmp_path)})
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.uses_embedded_database
    assert settings.embedded_pgdata == tmp_path / "postgres"
    assert settings.master_key_file == tmp_path / "master.key"
    assert settings.graphiql
    assert settings.introspection
    assert (settings.host, settings.port, settings.log_level) == ("127.0.0.1", 8000, "INFO")


def test_production_turns_explorer_off_and_needs_a_database() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"CDLM_ENV": "production"})
    assert str(caught.value) == "DATABASE_URL: is required when CDLM_ENV=production"
    with pytest.raises(ConfigError) as missing_secret:
        load_settings({"CDLM_ENV": "production", "DATABASE_URL": "postgresql://a@db/cdlm"})
    assert missing_secret.value.variable == "CDLM_TOKEN_SECRET"
    settings = load_settings(
        {
            "CDLM_ENV": "production",
            "DATABASE_URL": "postgresql://app:pw@db.internal:5432/cdlm",
            "CDLM_TOKEN_SECRET": "s" * 40,
            "CDLM_LEDGER_KEY": "l" * 40,
            "CDLM_NOTIFY_FROM": "privacy@example.com",
        }
    )
    assert not settings.graphiql
    assert not settings.introspection
    assert settings.notifier == "aws"


def test_explorer_switches_override_the_default() -> None:
    settings = load_settings({"CDLM_GRAPHIQL": "off", "CDLM_INTROSPECTION": "0"})
    assert not settings.graphiql
    assert not settings.introspection


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CDLM_PORT", "eighty", "CDLM_PORT: must be a whole number (got 'eighty')"),
        ("CDLM_PORT", "70000", "CDLM_PORT: must be between 1 and 65535 (got '70000')"),
        ("CDLM_ENV", "staging", "CDLM_ENV: must be one of development, test, production"),
        ("CDLM_LOG_LEVEL", "LOUD", "CDLM_LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR"),
        ("CDLM_GRAPHIQL", "maybe", "CDLM_GRAPHIQL: must be one of true/false"),
        ("CDLM_DB_CONNECT_TIMEOUT", "-1", "CDLM_DB_CONNECT_TIMEOUT: must be between 0.5 and 120"),
        ("CDLM_MAX_QUERY_DEPTH", "1", "CDLM_MAX_QUERY_DEPTH: must be between 2 and 100"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL: must start with postgresql://"),
        ("DATABASE_URL", "postgresql://db.internal", "DATABASE_URL: names no database"),
        ("DATABASE_URL", "postgresql:///cdlm", "DATABASE_URL: names no host"),
        ("DATABASE_URL", "postgresql://h:99999/db", "DATABASE_URL: is not a valid URL"),
        ("DATABASE_URL", "postgresql://h/db?sslmode=sometimes", "DATABASE_URL: has an unknown"),
        ("DATABASE_URL", "postgresql://h/db?pool=3", "DATABASE_URL: has unsupported parameters"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: value})
    assert str(caught.value).startswith(message)
    assert caught.value.variable == variable
    assert "\n" not in str(caught.value)


def test_database_url_password_is_never_shown() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"DATABASE_URL": "postgresql://app:s3cret@db/cdlm?pool=1"})
    assert "s3cret" not in str(caught.value)
    target = parse_database_url("postgresql://app:s3cret@db.internal:6543/cdlm?sslmode=require")
    assert "s3cret" not in repr(target)
    assert target.safe_description == "app@db.internal:6543/cdlm"
    assert (target.port, target.ssl, target.password) == (6543, "require", "s3cret")


def test_unix_socket_urls() -> None:
    target = parse_database_url("postgresql://postgres@/cdlm?host=/run/postgresql")
    assert (target.host, target.port, target.database) == ("/run/postgresql", 5432, "cdlm")


def test_percent_encoded_credentials() -> None:
    target = parse_database_url("postgresql://app%40corp:p%2Fw@db/my%20db")
    assert (target.user, target.password, target.database) == ("app@corp", "p/w", "my db")


def test_token_secret_must_be_long_and_is_not_shown() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"CDLM_TOKEN_SECRET": "tooshort"})
    assert str(caught.value) == "CDLM_TOKEN_SECRET: must have at least 32 characters"
    settings = load_settings({"CDLM_TOKEN_SECRET": "k" * 40})
    assert "k" * 40 not in repr(settings)


def test_source_trust_table() -> None:
    assert load_settings({"CDLM_SOURCE_TRUST": "crm=90, Web_Form=40"}).source_trust == {
        "crm": 90,
        "web_form": 40,
    }
    for bad in ("crm", "crm=high", "crm=5000"):
        with pytest.raises(ConfigError) as caught:
            load_settings({"CDLM_SOURCE_TRUST": bad})
        assert caught.value.variable == "CDLM_SOURCE_TRUST"


def test_match_thresholds_default_turn_off_and_refuse_a_top_below_review() -> None:
    assert load_settings({}).matching.review_above == 0.80
    assert load_settings({}).matching.auto_merge_above == 0.90
    off = load_settings({"CDLM_MATCH_AUTO_MERGE_ABOVE": "off"}).matching
    assert off.auto_merge_above is None
    both = {"CDLM_MATCH_REVIEW_ABOVE": "0.85", "CDLM_MATCH_AUTO_MERGE_ABOVE": "0.97"}
    assert load_settings(both).matching.auto_merge_above == 0.97
    with pytest.raises(ConfigError) as below:
        load_settings({"CDLM_MATCH_REVIEW_ABOVE": "0.9", "CDLM_MATCH_AUTO_MERGE_ABOVE": "0.85"})
    assert below.value.variable == "CDLM_MATCH_AUTO_MERGE_ABOVE"
    with pytest.raises(ConfigError) as odd:
        load_settings({"CDLM_MATCH_REVIEW_ABOVE": "likely"})
    assert odd.value.variable == "CDLM_MATCH_REVIEW_ABOVE"
    assert load_settings({"CDLM_MATCH_AFTER_IMPORT": "0"}).matching.after_import == 0


def test_analytics_settings_default_and_parse() -> None:
    default = load_settings({}).analytics
    assert default.purchase_types == {"purchase"}
    assert (default.currency, dict(default.rates), default.min_repeat_buyers) == ("EUR", {}, 20)
    given = load_settings(
        {
            "CDLM_ANALYTICS_PURCHASE_TYPES": "purchase, order_completed",
            "CDLM_ANALYTICS_CURRENCY": "EUR",
            "CDLM_ANALYTICS_RATES": "USD=0.92,GBP=1.17",
            "CDLM_ANALYTICS_MIN_REPEAT_BUYERS": "50",
        }
    ).analytics
    assert given.purchase_types == {"purchase", "order_completed"}
    assert dict(given.rates) == {"USD": Decimal("0.92"), "GBP": Decimal("1.17")}
    assert given.min_repeat_buyers == 50


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CDLM_ANALYTICS_PURCHASE_TYPES", "Purchase", "event types are lower case"),
        ("CDLM_ANALYTICS_PURCHASE_TYPES", " , ", "at least one event type"),
        ("CDLM_ANALYTICS_CURRENCY", "euro", "ISO 4217"),
        ("CDLM_ANALYTICS_RATES", "USD:0.92", "is not CURRENCY=RATE"),
        ("CDLM_ANALYTICS_RATES", "USD=abc", "rate of USD is not a number"),
        ("CDLM_ANALYTICS_RATES", "USD=-1", "positive"),
        ("CDLM_ANALYTICS_RATES", "EUR=0.5", "has rate 1"),
        ("CDLM_ANALYTICS_MIN_REPEAT_BUYERS", "1", "between 2"),
    ],
)
def test_bad_analytics_settings_name_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: value})
    assert caught.value.variable == variable
    assert message in str(caught.value)


def test_database_roles_default_and_parse() -> None:
    plain = load_settings({"DATABASE_URL": "postgresql://cdlm_app:pw@db/cdlm"})
    assert plain.database_app_role == "cdlm_app"
    assert plain.database_owner is None
    both = load_settings(
        {
            "DATABASE_URL": "postgresql://crm_app:pw@db/cdlm",
            "CDLM_DATABASE_APP_ROLE": "crm_app",
            "CDLM_DATABASE_OWNER_URL": "postgresql://cdlm_owner:other@db/cdlm?sslmode=require",
        }
    )
    assert both.database_app_role == "crm_app"
    assert both.database_owner is not None
    assert both.database_owner.user == "cdlm_owner"
    assert both.database_owner.password == "other"
    assert both.database_owner.ssl == "require"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"CDLM_DATABASE_APP_ROLE": "App-Role"},
            "CDLM_DATABASE_APP_ROLE: must be a lower-case PostgreSQL role name (a-z, 0-9, _)",
        ),
        (
            {"CDLM_DATABASE_OWNER_URL": "postgresql://owner:pw@db/cdlm"},
            "CDLM_DATABASE_OWNER_URL: needs DATABASE_URL (the app role's URL)",
        ),
        (
            {
                "DATABASE_URL": "postgresql://cdlm_app:pw@db/cdlm",
                "CDLM_DATABASE_OWNER_URL": "postgresql://cdlm_app:pw@db/cdlm",
            },
            "CDLM_DATABASE_OWNER_URL: must connect as the owner, not the app role",
        ),
        (
            {
                "DATABASE_URL": "postgresql://cdlm_app:pw@db/cdlm",
                "CDLM_DATABASE_OWNER_URL": "postgresql://owner:pw@db/other",
            },
            "CDLM_DATABASE_OWNER_URL: must name the database DATABASE_URL names",
        ),
        (
            {
                "DATABASE_URL": "postgresql://cdlm_app:pw@db/cdlm",
                "CDLM_DATABASE_OWNER_URL": "mysql://owner:s3cret@db/cdlm",
            },
            "CDLM_DATABASE_OWNER_URL: must start with postgresql:// (cdlm runs on PostgreSQL only)",
        ),
    ],
)
def test_bad_database_roles_are_one_line(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert str(caught.value) == message
    assert "s3cret" not in str(caught.value)

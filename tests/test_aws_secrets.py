"""Settings read from AWS Secrets Manager (moto): what the environment names, what is read,
when it is read again, and one clear line for every way a secret can be wrong."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.authorization import ActionAuthenticatorMixin

from cdlm.aws_secrets import resolve
from cdlm.config import SECRET_SETTINGS, ConfigError, load_settings

pytestmark = pytest.mark.pure

TOKEN = "token-from-secrets-manager-" + "t" * 32
APP_LOGIN = {"username": "cdlm_app", "password": "app-password-1", "engine": "postgres"}
OWNER_LOGIN = {"username": "cdlm", "password": "owner-password-1"}


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(variable, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="eu-west-1")


def _secret(client: Any, name: str, value: str | dict[str, Any]) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    arn: str = client.create_secret(Name=name, SecretString=text)["ARN"]
    return arn


def _environ(**names: str) -> dict[str, str]:
    ledger = {} if "CDLM_LEDGER_KEY_ARN" in names else {"CDLM_LEDGER_KEY": "ledger-key-" + "l" * 32}
    return {
        "CDLM_ENV": "production",
        "DATABASE_URL": "postgresql://proxy.example:5432/cdlm?sslmode=require",
        "CDLM_NOTIFY_FROM": "privacy@example.com",
        "CDLM_DATA_DIR": "/tmp/cdlm-secrets-test",
        **ledger,
        **names,
    }


def test_the_environment_names_secrets_and_the_settings_wait_for_them(client: Any) -> None:
    token = _secret(client, "/cdlm/test/token-secret", TOKEN)
    app = _secret(client, "/cdlm/test/database-app", APP_LOGIN)
    environ = _environ(CDLM_TOKEN_SECRET_ARN=token, CDLM_DATABASE_SECRET_ARN=app)
    pending = load_settings(environ)
    assert pending.secret_ids == {"CDLM_TOKEN_SECRET": token, "DATABASE_URL": app}
    assert pending.token_secret is None
    assert pending.database is not None
    assert pending.database.password == ""

    resolved = resolve(pending, environ, client=client)
    assert resolved.secret_ids == {}
    assert resolved.token_secret == TOKEN
    database = resolved.database
    assert database is not None
    assert (database.user, database.password) == ("cdlm_app", "app-password-1")
    assert (database.host, database.port, database.database, database.ssl) == (
        "proxy.example",
        5432,
        "cdlm",
        "require",
    )
    assert database.login is not None
    assert database.login(False) == ("cdlm_app", "app-password-1")
    assert "app-password-1" not in repr(resolved)


def test_the_owner_connects_from_its_own_secret_on_the_same_host(client: Any) -> None:
    app = _secret(client, "/cdlm/test/database-app", APP_LOGIN)
    owner = _secret(client, "/cdlm/test/database-owner", OWNER_LOGIN)
    environ = _environ(
        CDLM_TOKEN_SECRET=TOKEN, CDLM_DATABASE_SECRET_ARN=app, CDLM_DATABASE_OWNER_SECRET_ARN=owner
    )
    resolved = resolve(load_settings(environ), environ, client=client)
    assert resolved.database_owner is not None
    assert resolved.database is not None
    assert resolved.database_owner.user == "cdlm"
    assert resolved.database_owner.password == "owner-password-1"
    assert resolved.database_owner.host == resolved.database.host == "proxy.example"
    assert resolved.database.user == "cdlm_app"


def test_the_read_replica_logs_in_with_the_app_role_secret(client: Any) -> None:
    app = _secret(client, "/cdlm/test/database-app", APP_LOGIN)
    environ = _environ(
        CDLM_TOKEN_SECRET=TOKEN,
        CDLM_DATABASE_SECRET_ARN=app,
        CDLM_DATABASE_READ_URL="postgresql://replica.example:5432/cdlm?sslmode=require",
    )
    resolved = resolve(load_settings(environ), environ, client=client)
    replica = resolved.database_read
    assert replica is not None
    assert (replica.host, replica.user, replica.password) == (
        "replica.example",
        "cdlm_app",
        "app-password-1",
    )
    assert replica.login is not None
    client.put_secret_value(SecretId=app, SecretString=json.dumps({**APP_LOGIN, "password": "p4"}))
    assert replica.login(True) == ("cdlm_app", "p4")  # rotation reaches the replica too


def test_a_read_replica_url_with_a_password_is_refused_beside_the_secret(client: Any) -> None:
    app = _secret(client, "/cdlm/test/database-app", APP_LOGIN)
    environ = _environ(
        CDLM_TOKEN_SECRET=TOKEN,
        CDLM_DATABASE_SECRET_ARN=app,
        CDLM_DATABASE_READ_URL="postgresql://cdlm_app:hunter2-pw@replica.example:5432/cdlm",
    )
    with pytest.raises(ConfigError) as refused:
        load_settings(environ)
    assert str(refused.value) == (
        "CDLM_DATABASE_READ_URL: holds a password: CDLM_DATABASE_SECRET_ARN has it"
    )
    assert "hunter2" not in str(refused.value)


def test_the_ledger_key_comes_from_its_secret(client: Any) -> None:
    # One line of the table: CDLM_LEDGER_KEY is read from the secret as from the variable.
    (ledger,) = [s for s in SECRET_SETTINGS if s.variable == "CDLM_LEDGER_KEY"]
    arn = _secret(client, "/cdlm/test/ledger-key", "k1:" + "k" * 48 + ",k0:" + "o" * 40)
    environ = _environ(CDLM_TOKEN_SECRET=TOKEN, **{ledger.secret_variable: arn})
    pending = load_settings(environ)
    assert pending.secret_ids == {"CDLM_LEDGER_KEY": arn}
    assert pending.ledger_keys is None
    resolved = resolve(pending, environ, client=client)
    assert resolved.ledger_keys is not None
    assert resolved.ledger_keys.current == "k1"
    assert dict(resolved.ledger_keys.keys) == {"k1": b"k" * 48, "k0": b"o" * 40}


def test_a_malformed_ledger_key_is_named_without_its_value(client: Any) -> None:
    arn = _secret(client, "/cdlm/test/ledger-key", "k1:too-short-secret")
    message = _refusal(client, _environ(CDLM_TOKEN_SECRET=TOKEN, CDLM_LEDGER_KEY_ARN=arn))
    assert message.startswith("CDLM_LEDGER_KEY: ")
    assert "too-short-secret" not in message


def test_a_changed_secret_is_read_again_once_the_ttl_has_passed(client: Any) -> None:
    app = _secret(client, "/cdlm/test/database-app", APP_LOGIN)
    environ = _environ(CDLM_TOKEN_SECRET=TOKEN, CDLM_DATABASE_SECRET_ARN=app, CDLM_SECRETS_TTL="1")
    resolved = resolve(load_settings(environ), environ, client=client)
    assert resolved.database is not None
    assert resolved.database.login is not None
    login = resolved.database.login
    client.put_secret_value(SecretId=app, SecretString=json.dumps({**APP_LOGIN, "password": "p2"}))
    assert login(False) == ("cdlm_app", "app-password-1")  # cached within the TTL
    time.sleep(1.1)
    assert login(False) == ("cdlm_app", "p2")


def test_a_refresh_reads_the_secret_again_at_once(client: Any) -> None:
    app = _secret(client, "/cdlm/test/database-app", APP_LOGIN)
    environ = _environ(CDLM_TOKEN_SECRET=TOKEN, CDLM_DATABASE_SECRET_ARN=app)
    resolved = resolve(load_settings(environ), environ, client=client)
    assert resolved.database is not None
    assert resolved.database.login is not None
    client.put_secret_value(SecretId=app, SecretString=json.dumps({**APP_LOGIN, "password": "p3"}))
    assert resolved.database.login(False)[1] == "app-password-1"  # TTL 300 s by default
    assert resolved.database.login(True)[1] == "p3"
    assert resolved.database.login(False)[1] == "p3"


def _refusal(client: Any, environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        resolve(load_settings(environ), environ, client=client)
    return str(caught.value)


def test_a_secret_that_does_not_exist_is_named(client: Any) -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:/cdlm/test/gone-AbCdEf"
    message = _refusal(client, _environ(CDLM_TOKEN_SECRET_ARN=arn))
    assert message == f"CDLM_TOKEN_SECRET_ARN: the secret {arn} does not exist"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("not json at all", "is not JSON"),
        ('["cdlm_app", "pw"]', "is not a JSON object"),
        ({"username": "cdlm_app"}, "has no password"),
        ({"password": "secret-value-9"}, "has no username"),
        ({"username": "cdlm_app", "password": ""}, "has no username, password"),
    ],
)
def test_a_malformed_database_secret_is_named_without_its_value(
    client: Any, value: str | dict[str, Any], problem: str
) -> None:
    arn = _secret(client, "/cdlm/test/database-app", value)
    message = _refusal(client, _environ(CDLM_TOKEN_SECRET=TOKEN, CDLM_DATABASE_SECRET_ARN=arn))
    assert message == f"CDLM_DATABASE_SECRET_ARN: the secret {arn} {problem}"
    assert "secret-value-9" not in message
    assert "\n" not in message


def test_the_app_secret_must_log_in_as_the_app_role(client: Any) -> None:
    arn = _secret(client, "/cdlm/test/database-master", OWNER_LOGIN)
    message = _refusal(client, _environ(CDLM_TOKEN_SECRET=TOKEN, CDLM_DATABASE_SECRET_ARN=arn))
    assert message == (
        "CDLM_DATABASE_SECRET_ARN: the secret's user is cdlm, not the app role cdlm_app "
        "(CDLM_DATABASE_APP_ROLE)"
    )


def test_the_owner_secret_must_not_be_the_app_role(client: Any) -> None:
    arn = _secret(client, "/cdlm/test/database-owner", APP_LOGIN)
    environ = _environ(CDLM_TOKEN_SECRET=TOKEN, CDLM_DATABASE_OWNER_SECRET_ARN=arn)
    message = _refusal(client, environ)
    assert message == (
        "CDLM_DATABASE_OWNER_SECRET_ARN: the secret's user is the app role, not the owner"
    )


def test_a_token_secret_too_short_is_refused_as_the_setting(client: Any) -> None:
    arn = _secret(client, "/cdlm/test/token-secret", "short")
    message = _refusal(client, _environ(CDLM_TOKEN_SECRET_ARN=arn))
    assert message == "CDLM_TOKEN_SECRET: must have at least 32 characters"


def test_an_empty_secret_is_refused(client: Any) -> None:
    arn = client.create_secret(Name="/cdlm/test/binary", SecretBinary=b"\x00\x01")["ARN"]
    message = _refusal(client, _environ(CDLM_TOKEN_SECRET_ARN=arn))
    assert message == f"CDLM_TOKEN_SECRET_ARN: the secret {arn} holds no text"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"CDLM_TOKEN_SECRET_ARN": "arn:aws:s3:::not-a-secret bucket"},
            "CDLM_TOKEN_SECRET_ARN: is not a secret ARN or name",
        ),
        (
            {"CDLM_TOKEN_SECRET": TOKEN, "CDLM_TOKEN_SECRET_ARN": "/cdlm/test/token-secret"},
            "CDLM_TOKEN_SECRET_ARN: names a secret for CDLM_TOKEN_SECRET, which is set too",
        ),
        (
            {
                "CDLM_TOKEN_SECRET": TOKEN,
                "CDLM_DATABASE_SECRET_ARN": "/cdlm/test/db",
                "DATABASE_URL": "postgresql://cdlm_app:pw@proxy:5432/cdlm",
            },
            "DATABASE_URL: holds a password: CDLM_DATABASE_SECRET_ARN has it",
        ),
        (
            {
                "CDLM_TOKEN_SECRET": TOKEN,
                "CDLM_DATABASE_OWNER_SECRET_ARN": "/cdlm/test/owner",
                "DATABASE_URL": "",
            },
            "DATABASE_URL: is required when CDLM_ENV=production",
        ),
    ],
)
def test_the_environment_naming_secrets_is_checked_before_any_is_read(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_environ(**environ))
    assert str(caught.value) == message


def test_production_needs_the_token_secret_or_its_secret() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_environ())
    assert str(caught.value) == (
        "CDLM_TOKEN_SECRET: is required when CDLM_ENV=production (or CDLM_TOKEN_SECRET_ARN)"
    )


def test_a_secret_this_function_may_not_read_is_named(client: Any) -> None:
    # IAM policies are enforced after the set-up's four calls.
    ActionAuthenticatorMixin.set_initial_no_auth_action_count(4)(_denied)(client)


def _denied(client: Any) -> None:
    arn = _secret(client, "/cdlm/test/token-secret", TOKEN)
    iam = boto3.client("iam", region_name="eu-west-1")
    iam.create_user(UserName="cdlm-function")
    iam.put_user_policy(
        UserName="cdlm-function",
        PolicyName="other-secrets-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "secretsmanager:GetSecretValue",
                        "Resource": "arn:aws:secretsmanager:*:*:secret:/cdlm/other/*",
                    }
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName="cdlm-function")["AccessKey"]
    restricted = boto3.client(
        "secretsmanager",
        region_name="eu-west-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    message = _refusal(restricted, _environ(CDLM_TOKEN_SECRET_ARN=arn))
    assert message == (
        f"CDLM_TOKEN_SECRET_ARN: the secret {arn} may not be read by this function (AccessDenied)"
    )
    assert TOKEN not in message

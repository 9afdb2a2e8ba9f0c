"""Notifiers: which one the settings choose, and delivery through SES and SNS (moto)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends

from cdlm.api.middleware import logged_path
from cdlm.config import ConfigError, load_settings
from cdlm.dsr.notifier import AwsNotifier, LogNotifier, Message, notifier_from

REGION = "eu-west-1"


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any]]:
    with mock_aws():
        ses = boto3.client("ses", region_name=REGION)
        ses.verify_email_identity(EmailAddress="privacy@example.com")
        yield ses, boto3.client("sns", region_name=REGION)


async def test_email_goes_through_ses_and_text_messages_through_sns(
    aws: tuple[Any, Any],
) -> None:
    ses, sns = aws
    notifier = AwsNotifier("privacy@example.com", ses=ses, sns=sns)
    await notifier.send(Message("email", "ada@example.com", "verification_code", "Code 123456"))
    await notifier.send(Message("sms", "+447911123987", "verification_code", "Code 654321"))
    [sent] = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
    assert sent.destinations["ToAddresses"] == ["ada@example.com"]
    assert sent.subject == "Your verification code"
    assert sent.body == "Code 123456"
    texts = list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())
    assert texts == [("+447911123987", "Code 654321")]


async def test_a_failed_send_raises_so_the_outbox_retries(aws: tuple[Any, Any]) -> None:
    ses, sns = aws
    notifier = AwsNotifier("unverified@example.com", ses=ses, sns=sns)
    with pytest.raises(Exception, match="not verified"):
        await notifier.send(Message("email", "ada@example.com", "request_completed", "Done"))


def test_settings_choose_the_notifier() -> None:
    assert isinstance(notifier_from(load_settings({})), LogNotifier)
    with mock_aws():
        os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
        chosen = notifier_from(
            load_settings({"CDLM_NOTIFIER": "aws", "CDLM_NOTIFY_FROM": "privacy@example.com"})
        )
    assert isinstance(chosen, AwsNotifier)
    with pytest.raises(ConfigError) as missing:
        load_settings({"CDLM_NOTIFIER": "aws"})
    assert missing.value.variable == "CDLM_NOTIFY_FROM"
    production = {
        "CDLM_ENV": "production",
        "DATABASE_URL": "postgresql://a:b@db/cdlm",
        "CDLM_TOKEN_SECRET": "s" * 40,
        "CDLM_LEDGER_KEY": "l" * 40,
    }
    with pytest.raises(ConfigError) as refused:
        load_settings({**production, "CDLM_NOTIFIER": "log"})
    assert "log" in str(refused.value)


def test_download_tokens_stay_out_of_the_access_log() -> None:
    assert logged_path("/exports/cdlm_dl_0123456789abcdef_secret") == "/exports/<redacted>"
    assert logged_path("/graphql") == "/graphql"

"""The write-once store on S3 with Object Lock (moto): checkpoints under ``checkpoints/`` and
the erasure register under ``erasures/`` of the ledger bucket."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdlm.config import Settings
from cdlm.core import chain
from cdlm.core.chain import ChainProblem
from cdlm.core.identifiers import IdentifierKind
from cdlm.core.writeonce import S3ObjectLockStore, StoreError
from cdlm.erasures import register
from cdlm.erasures.register import ErasureRecord, StoreRegister
from cdlm.jobs import ledger_checkpoint
from cdlm.ledgers import verify as ledgers
from cdlm.ledgers.checkpoints import name_of, store_from
from tests.ledgers.support import audit_entries

BUCKET = "cdlm-ledger-test"
REGION = "eu-west-1"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto S3 with a bucket that has Object Lock on and a default retention."""
    for variable, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(variable, value)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(
            Bucket=BUCKET,
            CreateBucketConfiguration={"LocationConstraint": REGION},
            ObjectLockEnabledForBucket=True,
        )
        client.put_object_lock_configuration(
            Bucket=BUCKET,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 30}},
            },
        )
        yield client


def _plain_bucket(client: Any, name: str) -> None:
    client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})


@pytest.mark.pure
def test_an_object_is_written_once_locked_and_read_as_first_written(s3: Any) -> None:
    store = S3ObjectLockStore(BUCKET, "checkpoints/", client=s3)
    assert store.put("audit/1.json", b"first") is True
    assert store.put("audit/1.json", b"second") is False
    head = s3.head_object(Bucket=BUCKET, Key="checkpoints/audit/1.json")
    assert head["ObjectLockMode"] == "COMPLIANCE"  # the bucket's default retention
    assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC)
    # Someone allowed to write the bucket puts another version over it, then a delete marker:
    # the locked first version is what is read, and the name is still listed.
    s3.put_object(Bucket=BUCKET, Key="checkpoints/audit/1.json", Body=b"forged")
    assert store.get("audit/1.json") == b"first"
    s3.delete_object(Bucket=BUCKET, Key="checkpoints/audit/1.json")
    assert store.get("audit/1.json") == b"first"
    assert store.put("audit/2.json", b"two")
    s3.put_object(Bucket=BUCKET, Key="erasures/x.json", Body=b"other prefix")
    assert store.names() == ["audit/1.json", "audit/2.json"]
    assert store.names("audit/2") == ["audit/2.json"]
    assert store.get("audit/3.json") is None
    assert store.location == f"s3://{BUCKET}/checkpoints/"


@pytest.mark.pure
def test_a_retention_per_object_is_set_when_configured(s3: Any) -> None:
    store = S3ObjectLockStore(BUCKET, "checkpoints/", retention_days=400, client=s3)
    assert store.put("audit/1.json", b"x")
    head = s3.head_object(Bucket=BUCKET, Key="checkpoints/audit/1.json")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    days = (head["ObjectLockRetainUntilDate"] - datetime.now(UTC)).days
    assert 398 <= days <= 400


@pytest.mark.pure
def test_a_bucket_where_objects_would_not_be_locked_is_refused(s3: Any) -> None:
    _plain_bucket(s3, "no-lock")
    with pytest.raises(StoreError, match="no-lock failed"):
        S3ObjectLockStore("no-lock", "checkpoints/", client=s3).put("a.json", b"x")
    s3.create_bucket(
        Bucket="lock-no-default",
        CreateBucketConfiguration={"LocationConstraint": REGION},
        ObjectLockEnabledForBucket=True,
    )
    with pytest.raises(StoreError, match="no default retention"):
        S3ObjectLockStore("lock-no-default", "checkpoints/", client=s3).put("a.json", b"x")
    per_object = S3ObjectLockStore("lock-no-default", "c/", retention_days=1, client=s3)
    assert per_object.put("a.json", b"x")
    with pytest.raises(StoreError, match="missing-bucket"):
        S3ObjectLockStore("missing-bucket", "c/", retention_days=1, client=s3).put("a", b"x")


def test_the_erasure_register_on_s3(s3: Any, settings: Settings) -> None:
    mine = replace(settings, ledger_bucket=BUCKET)
    chosen = register.register_from(mine)
    assert isinstance(chosen, StoreRegister)
    assert chosen.store.location == f"s3://{BUCKET}/erasures/"
    moment = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    record = ErasureRecord(
        uuid.uuid4(), moment, "erasure", identifiers=((IdentifierKind.EMAIL, "ab" * 32),)
    )
    assert chosen.append(record) is True
    assert chosen.append(record) is False
    assert chosen.since(None) == [record]
    assert chosen.since(datetime(2026, 6, 1, tzinfo=UTC)) == []
    assert s3.head_object(Bucket=BUCKET, Key=f"erasures/{record.name}")["ObjectLockMode"] == (
        "COMPLIANCE"
    )


async def test_a_failed_s3_write_is_retried_by_the_next_flush(s3: Any, settings: Settings) -> None:
    await register.note(
        uuid.uuid4(), "crypto_shred", identifiers=[(IdentifierKind.EMAIL, "cd" * 32)]
    )
    unusable = register.register_from(replace(settings, ledger_bucket="missing-bucket"))
    assert await register.flush(unusable) == 0  # StoreError is an OSError: kept for later
    usable = register.register_from(replace(settings, ledger_bucket=BUCKET))
    assert await register.flush(usable) == 1
    assert len(usable.since(None)) == 1


async def test_the_checkpoint_job_on_s3(s3: Any, settings: Settings, tmp_path: Path) -> None:
    mine = replace(settings, ledger_bucket=BUCKET, checkpoint_dir=tmp_path / "unused")
    entries = await audit_entries(3)
    reports = await ledger_checkpoint.run(mine)
    assert reports is not None
    assert reports[0].written is not None
    key = "checkpoints/" + name_of("audit", entries[-1].sequence)
    assert s3.head_object(Bucket=BUCKET, Key=key)["ObjectLockMode"] == "COMPLIANCE"
    assert not (tmp_path / "unused").exists()
    # Deleting it (a delete marker: the locked version cannot go) hides nothing.
    s3.delete_object(Bucket=BUCKET, Key=key)
    store = store_from(mine, chain.keyring())
    assert (await ledgers.verify(ledgers.AUDIT, store)).checkpoint is not None
    await audit_entries(1, start=3)
    again = await ledgers.verify(ledgers.AUDIT, store)
    assert (again.ok, again.entries_checked) == (True, 1)
    # A checkpoint the database recorded but the bucket never got (another bucket) is missing.
    s3.create_bucket(
        Bucket="empty-lock",
        CreateBucketConfiguration={"LocationConstraint": REGION},
        ObjectLockEnabledForBucket=True,
    )
    elsewhere = store_from(replace(mine, ledger_bucket="empty-lock"), chain.keyring())
    missing = await ledgers.verify(ledgers.AUDIT, elsewhere)
    assert (missing.problem, missing.first_broken_sequence) == (
        ChainProblem.CHECKPOINT_MISSING,
        entries[-1].sequence,
    )

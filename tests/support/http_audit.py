"""The ``graphql-http`` server audit (GraphQL over HTTP), run with node against a served app.

``tests/http_audit/`` pins the npm packages (``package.json`` and ``package-lock.json``) and
holds the script. They are installed with ``npm ci`` into the user's cache directory (never into
the source tree), once per lock file. CI installs Node.js and npm (``.ci/run``) and sets
``CDLM_REQUIRE_NODE``: there the audit must run; elsewhere it is skipped without them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import platformdirs

AUDIT_DIR = Path(__file__).resolve().parents[1] / "http_audit"
PINNED = ("package.json", "package-lock.json")
NODE = shutil.which("node")
NPM = shutil.which("npm")


def installed() -> Path:
    """A directory with the pinned packages installed and the audit script beside them."""
    assert NODE is not None, "the audit needs node on the PATH"
    assert NPM is not None, "the audit needs npm on the PATH"
    pinned = b"".join((AUDIT_DIR / name).read_bytes() for name in PINNED)
    key = hashlib.sha256(pinned).hexdigest()[:16]
    target = Path(platformdirs.user_cache_dir("cdlm")) / "http-audit" / key
    if not (target / "node_modules" / "graphql-http" / "package.json").is_file():
        building = target.with_name(f"{key}.{os.getpid()}")
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        for name in PINNED:
            shutil.copyfile(AUDIT_DIR / name, building / name)
        subprocess.run(
            [NPM, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=building,
            check=True,
            timeout=600,
        )
        try:
            building.rename(target)
        except OSError:  # another run got there first
            shutil.rmtree(building, ignore_errors=True)
    shutil.copyfile(AUDIT_DIR / "audit.mjs", target / "audit.mjs")
    return target


def run_audit(url: str) -> tuple[dict[str, int], list[str], int]:
    """The audit of the GraphQL endpoint ``url``: the counts per status (ok, notice, warn,
    error), one line per result, and the script's exit status."""
    assert NODE is not None
    directory = installed()
    finished = subprocess.run(
        [NODE, str(directory / "audit.mjs"), url],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = finished.stdout.strip().splitlines()
    if not lines or not lines[-1].startswith("{"):
        raise RuntimeError(f"the audit did not finish:\n{finished.stdout}\n{finished.stderr}")
    counts: dict[str, int] = json.loads(lines[-1])
    return counts, lines[:-1], finished.returncode

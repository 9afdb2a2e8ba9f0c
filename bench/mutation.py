"""Mutation testing of the pure rule modules: ``make mutation`` (``python -m bench.mutation``).

Each rule module is mutated by cosmic-ray (comparisons flipped, numbers moved by one, boolean
operators swapped, ...) and its own pure tests are run against every mutant; a mutant the tests
still pass "survives". Prints, per module and in all, the share of mutants killed, and lists every
survivor: those a human has judged equivalent (the mutant behaves exactly like the original, so
no test can tell them apart) with the reason recorded in ``bench/mutation_equivalents.toml``,
and any other survivor as a gap in the tests. Exits non-zero below ``TARGET`` or with an
unexplained survivor. Mutants inside type annotations (never evaluated, as every module has
``from __future__ import annotations``) are counted apart and left out of the share.

The modules are mutated in private copies of ``src`` and ``tests`` (never in the working tree),
one copy per module, so that modules run in parallel and nothing else ever sees a mutant. The
tests run without PostgreSQL (``-m pure``, no conftest).
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.90
EQUIVALENTS = Path(__file__).with_name("mutation_equivalents.toml")


@dataclass(frozen=True)
class Target:
    """A rule module and the pure tests that pin it."""

    module: str
    tests: tuple[str, ...]


TARGETS = (
    Target("src/cdlm/dsr/workflow.py", ("tests/dsr/test_workflow_law.py",)),
    Target("src/cdlm/dsr/deadlines.py", ("tests/dsr/test_deadlines.py",)),
    Target("src/cdlm/core/jurisdictions.py", ("tests/dsr/test_deadlines.py",)),
    Target(
        "src/cdlm/quality/score.py",
        ("tests/quality/test_score_rules.py", "tests/quality/test_boundaries.py"),
    ),
    Target(
        "src/cdlm/quality/validate.py",
        ("tests/quality/test_boundaries.py", "tests/quality/test_score_rules.py"),
    ),
    Target("src/cdlm/identity/decision.py", ("tests/identity/test_decide.py",)),
    Target("src/cdlm/identity/agreement.py", ("tests/identity/test_decide.py",)),
    Target("src/cdlm/core/chain.py", ("tests/core/test_chain.py",)),
)


@dataclass(frozen=True)
class Survivor:
    """A mutant the tests did not kill: the line before and after the mutation."""

    module: str
    operator: str
    before: str
    after: str


@dataclass
class Outcome:
    """What happened to one module's mutants."""

    target: Target
    killed: int = 0
    survivors: list[Survivor] = field(default_factory=list)
    skipped: int = 0
    in_annotations: int = 0  # never evaluated: left out of the count

    @property
    def total(self) -> int:
        return self.killed + len(self.survivors)


def _changed_lines(diff: str) -> tuple[str, str]:
    removed = [line[1:].strip() for line in diff.splitlines() if line.startswith("-")]
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+")]
    removed = [line for line in removed if not line.startswith("--")]
    added = [line for line in added if not line.startswith("++")]
    return " / ".join(removed), " / ".join(added)


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions of every annotation of a module (lines 1-based, as cosmic-ray)."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        found: list[ast.expr | None] = []
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.append(node.returns)
        elif isinstance(node, ast.arg | ast.AnnAssign):
            found.append(node.annotation)
        for annotation in found:
            if annotation is not None and annotation.end_lineno is not None:
                spans.append(
                    (
                        (annotation.lineno, annotation.col_offset),
                        (annotation.end_lineno, annotation.end_col_offset or 0),
                    )
                )
    return spans


def _inside(
    start: tuple[int, int], end: tuple[int, int], spans: list[tuple[tuple[int, int], ...]]
) -> bool:
    return any(low <= start and end <= high for low, high in spans)


def _workspace() -> Path:
    copy = Path(tempfile.mkdtemp(prefix="cdlm-mutation-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for part in ("src", "tests"):
        shutil.copytree(ROOT / part, copy / part, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def run_target(target: Target, timeout: float) -> Outcome:
    """Mutate ``target.module`` in a private copy and run its tests against every mutant."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    copy = _workspace()
    try:
        tests = " ".join(target.tests)
        command = (
            f"{sys.executable} -m pytest -x -q -p no:cacheprovider --noconftest -m pure {tests}"
        )
        config = copy / "cosmic-ray.toml"
        config.write_text(
            "[cosmic-ray]\n"
            f'module-path = "{copy / target.module}"\n'
            f"timeout = {timeout}\n"
            "excluded-modules = []\n"
            f"test-command = {command!r}\n"
            "[cosmic-ray.distributor]\n"
            'name = "local"\n'
        )
        session = copy / "session.sqlite"
        environment = {**os.environ, "PYTHONPATH": str(copy / "src"), "PYTHONHASHSEED": "0"}
        tools = Path(sys.executable).parent
        for step in (
            [tools / "cosmic-ray", "init", config, session],
            [tools / "cr-filter-pragma", session],
            [tools / "cosmic-ray", "exec", config, session],
        ):
            subprocess.run(
                [str(part) for part in step],
                cwd=copy,
                env=environment,
                check=True,
                capture_output=True,
            )
        outcome = Outcome(target)
        spans = annotation_spans((ROOT / target.module).read_text(encoding="utf-8"))
        with use_db(str(session), WorkDB.Mode.open) as db:
            for item, result in db.completed_work_items:
                mutation = item.mutations[0]
                if result.worker_outcome is WorkerOutcome.SKIPPED:
                    outcome.skipped += 1
                elif _inside(tuple(mutation.start_pos), tuple(mutation.end_pos), spans):
                    # Annotations are never evaluated (from __future__ import annotations):
                    # such a mutant changes no behaviour and is not counted.
                    outcome.in_annotations += 1
                elif result.test_outcome is TestOutcome.SURVIVED:
                    before, after = _changed_lines(result.diff or "")
                    outcome.survivors.append(
                        Survivor(target.module, mutation.operator_name, before, after)
                    )
                else:
                    outcome.killed += 1
        return outcome
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def equivalents() -> dict[tuple[str, str, str], str]:
    """The survivors judged equivalent: (module, line before, line after) → reason."""
    data = tomllib.loads(EQUIVALENTS.read_text(encoding="utf-8"))
    return {(e["module"], e["before"], e["after"]): e["reason"] for e in data.get("equivalent", [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", help="only these modules (repeatable)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per mutant")
    args = parser.parse_args(argv)
    targets = [t for t in TARGETS if not args.module or t.module in args.module]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        outcomes = list(pool.map(lambda t: run_target(t, args.timeout), targets))
    known = equivalents()
    killed = total = 0
    unexplained: list[Survivor] = []
    print(
        f"{'module':<36} {'killed':>7} {'mutants':>8} {'share':>7} {'equivalent':>11} "
        f"{'annotations':>12}"
    )
    for outcome in outcomes:
        reasons = {s: known.get((s.module, s.before, s.after)) for s in outcome.survivors}
        explained = [s for s in outcome.survivors if reasons[s]]
        unexplained += [s for s in outcome.survivors if not reasons[s]]
        share = outcome.killed / outcome.total if outcome.total else 1.0
        killed += outcome.killed
        total += outcome.total
        print(
            f"{outcome.target.module:<36} {outcome.killed:>7} {outcome.total:>8} {share:>7.1%} "
            f"{len(explained):>11} {outcome.in_annotations:>12}"
        )
        for survivor in explained:
            print(f"    equivalent: {survivor.before!r} -> {survivor.after!r}: {reasons[survivor]}")
    share = killed / total if total else 1.0
    print(f"{'all':<36} {killed:>7} {total:>8} {share:>7.1%}")
    for survivor in unexplained:
        print(
            f"SURVIVED {survivor.module} [{survivor.operator}]: "
            f"{survivor.before!r} -> {survivor.after!r}"
        )
    if unexplained or share < TARGET:
        print(f"target: {TARGET:.0%} killed and every survivor explained")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

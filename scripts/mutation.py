#!/usr/bin/env python3
"""Mutation testing of the pure modules: each module against its own fast unit tests, one at a time.

    python scripts/mutation.py                      # every module in MODULES
    python scripts/mutation.py engine/tasks/window.py     # some of them
    python scripts/mutation.py --changed            # those a change touches (vs origin/main or main; see --base)
    python scripts/mutation.py --list               # the table, nothing run

For each module mutmut (pinned in the `dev` extra) runs in a scratch directory, .mutation/<module>/, holding
links to the packages and tests and a pyproject.toml that is ours plus a [tool.mutmut] section naming that one
module and its tests. A module's score is the share of its mutants that some test kills (a timeout or crash
counts as killed) among those not listed as equivalent; mutants no test runs count against it. Survivors are
printed with their diff, marked "equivalent" when the module's first test file lists them in EQUIVALENT_MUTANTS
as (function, mutated line, reason). The table at the end has a row per module; the exit status is 1 when a
module scores below the threshold.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import os
import re
import resource
import runpy
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / ".mutation"
# The installed names are dcopilot.engine, dcopilot.lsp and dcopilot.copilot (pyproject's package-dir). Each scratch
# directory gets a dcopilot/ folder (no __init__.py: a namespace) holding copies of the three (mutmut's walk does
# not follow links), which mutmut copies into mutants/dcopilot/; with mutants/ first on sys.path,
# `import dcopilot.engine...` finds the mutated copy before the editable install's finder (consulted only after
# the path) maps the name back to the repository. The embedded model's weights stay out: no unit test loads them.
NAMESPACE = "dcopilot"
PACKAGES = ("engine", "lsp", "copilot")
THRESHOLD = 95.0
# A mutant's tests are stopped (a timeout: killed) after this many times their unmutated time plus 1 s, instead of
# mutmut's 15: the unit tests are fast and deterministic, and a mutant that loops forever (a loop's exit test
# broken) cost a module up to 40 s of a worker each.
TIMEOUT_MULTIPLIER = 5.0


@dataclass(frozen=True)
class Target:
    tests: tuple[str, ...]  # the module's fast unit tests; the first one lists its equivalent mutants
    skip: tuple[str, ...] = ()  # regexes of lines whose whole statement is out of scope (not mutated)


# The one place that says which module is checked against which tests.
MODULES: dict[str, Target] = {
    "lsp/encoding.py": Target(("tests/lsp/test_encoding.py",)),
    "engine/tasks/postprocess.py": Target(("tests/infill/test_postprocess.py",)),
    "engine/tasks/window.py": Target(("tests/infill/test_window.py",)),
    "engine/tasks/textdiff.py": Target(("tests/infill/test_textdiff.py",)),
    "engine/tasks/layout.py": Target(("tests/infill/test_layout.py",)),
    "lsp/items.py": Target(("tests/lsp/test_items.py",)),
    # Only the pure parts: lsp/scheduler.py marks its asyncio orchestration `no mutate` (the protocol tests check
    # it against a real server); its logger's name only names log lines.
    "lsp/scheduler.py": Target(("tests/lsp/test_scheduler_units.py",), skip=(r"^log = ",)),
    "copilot/config.py": Target(("tests/cli/test_config_units.py", "tests/cli/test_cli_config.py")),
    "lsp/documents.py": Target(("tests/lsp/test_documents.py",)),
    "engine/tasks/context.py": Target(("tests/infill/test_context.py",)),
    "engine/tasks/retrieve.py": Target(("tests/infill/test_retrieve.py",)),
    # The fitted weights are data beside each checkpoint (score_fit.json); the score formula, the features, the fit
    # and its JSON form are all checked.
    "engine/tasks/calibrate.py": Target(("tests/infill/test_calibrate.py",)),
    "engine/tasks/syntax.py": Target(("tests/infill/test_syntax.py",)),
    "engine/tasks/refactor.py": Target(("tests/infill/test_refactor.py",)),
}

KILLED = {"killed", "timeout", "segfault", "caught by type check"}


@dataclass
class Result:
    module: str
    counts: dict[str, int] = field(default_factory=dict)
    survivors: list[tuple[str, str, str | None]] = field(default_factory=list)  # (name, diff, equivalence reason)
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # user + system time of mutmut and its test processes
    error: str = ""

    @property
    def total(self) -> int:
        return sum(n for status, n in self.counts.items() if status != "skipped")

    @property
    def killed(self) -> int:
        return sum(n for status, n in self.counts.items() if status in KILLED)

    @property
    def equivalent(self) -> int:
        return sum(1 for *_, reason in self.survivors if reason)

    @property
    def score(self) -> float:
        """Killed among the mutants that can be killed: listed equivalents are left out, as is usual."""
        live = self.total - self.equivalent
        return 100.0 * self.killed / live if live else 100.0


def changed_modules(base: str) -> list[str]:
    """Modules in MODULES whose source or tests differ from `base` (committed, staged or not)."""
    diff = subprocess.run(
        ["git", "diff", "--name-only", base], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    untracked = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    touched = set(diff) | set(untracked)
    return [m for m, t in MODULES.items() if m in touched or touched & set(t.tests)]


def default_base() -> str:
    for ref in ("origin/main", "main"):
        probe = subprocess.run(["git", "rev-parse", "--verify", "-q", ref], cwd=ROOT, capture_output=True)
        if probe.returncode == 0:
            return subprocess.run(
                ["git", "merge-base", "HEAD", ref], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout.strip()
    return "HEAD"


def equivalents(test_file: Path) -> list[tuple[str, str, str]]:
    """EQUIVALENT_MUTANTS of a test file: (function, mutated line, reason) triples."""
    # its folder on the path, as pytest puts it: a test file may import a helper module that sits next to it
    sys.path.insert(0, str(test_file.parent))
    try:
        return [tuple(e) for e in runpy.run_path(str(test_file)).get("EQUIVALENT_MUTANTS", [])]
    finally:
        sys.path.remove(str(test_file.parent))


def _toml_list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join('"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"' for s in items) + "]"


def scratch_dir(module: str) -> Path:
    return SCRATCH / module.replace("/", "_").removesuffix(".py")


def prepare(module: str, target: Target) -> Path:
    work = scratch_dir(module)
    shutil.rmtree(work, ignore_errors=True)  # a fresh run: no verdicts cached from other code or tests
    work.mkdir(parents=True)
    (work / NAMESPACE).mkdir()
    for name in PACKAGES:
        skip = shutil.ignore_patterns("__pycache__", "embedded")
        shutil.copytree(ROOT / name, work / NAMESPACE / name, ignore=skip)
    (work / "tests").symlink_to(ROOT / "tests")
    config = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    # hypothesis' `mutation` profile (tests/conftest.py): the tests' own examples, a failure not shrunk
    config += f"""
[tool.mutmut]
source_paths = {_toml_list([NAMESPACE])}
only_mutate = {_toml_list([f"{NAMESPACE}/{module}"])}
do_not_mutate_patterns = {_toml_list(target.skip)}
pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:randomly", "--hypothesis-profile=mutation"]
pytest_add_cli_args_test_selection = {_toml_list(target.tests)}
use_git_change_detection = false
timeout_multiplier = {TIMEOUT_MULTIPLIER}
"""
    (work / "pyproject.toml").write_text(config, encoding="utf-8")
    return work


def mutmut(work: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("mutmut")
    command = [str(exe) if exe.exists() else "mutmut", *args]
    env = os.environ | {"PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(command, cwd=work, capture_output=True, text=True, env=env)
    if check and out.returncode != 0:
        output = out.stdout[-4000:] + out.stderr[-4000:]
        raise RuntimeError(f"mutmut {' '.join(args)} failed ({out.returncode}):\n{output}")
    return out


def mutant_sources(path: Path) -> dict[str, str]:
    """Source of every function and method in mutmut's mutated copy of a module, by name (nested ones excluded)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    tree = ast.parse(text)
    nodes = [*tree.body, *(n for c in tree.body if isinstance(c, ast.ClassDef) for n in c.body)]
    return {
        node.name: "\n".join(lines[node.lineno - 1 : node.end_lineno])
        for node in nodes
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


def run_module(module: str, target: Target, workers: int, rerun: bool = True) -> Result:
    result = Result(module)
    start = time.monotonic()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = usage.ru_utime + usage.ru_stime
    try:
        if rerun:
            work = prepare(module, target)
            mutmut(work, "run", "--max-children", str(workers))
        else:
            work = scratch_dir(module)
        listing = mutmut(work, "results", "--all", "true").stdout
    except RuntimeError as exc:
        result.error = str(exc)
        result.seconds = time.monotonic() - start
        return result
    known = equivalents(ROOT / target.tests[0])
    sources = mutant_sources(work / "mutants" / NAMESPACE / module)
    for name, status in re.findall(r"^\s+(\S+): (.+)$", listing, flags=re.M):
        result.counts[status] = result.counts.get(status, 0) + 1
        if status not in KILLED and status != "skipped":
            # mutmut names a mutant <module>.x_<function>__mutmut_<n> or <module>.xǁ<Class>ǁ<method>__mutmut_<n>
            local = name.rsplit(".", 1)[-1]
            function = re.fullmatch(r"x(?:_|ǁ\w+ǁ)(\w+?)__mutmut_\d+", local)
            orig_name = re.sub(r"__mutmut_\d+$", "__mutmut_orig", local)
            mutant = sources.get(local, "").replace(local, orig_name, 1)
            diff = "\n".join(
                difflib.unified_diff(
                    sources.get(orig_name, "").splitlines(),
                    mutant.splitlines(),
                    f"{module} (original)",
                    f"{module} ({local})",
                    lineterm="",
                    n=2,
                )
            )
            added = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
            fname = function[1] if function else ""
            first_added = added[0] if added else ""
            reason = next((why for func, line, why in known if func == fname and line.strip() == first_added), None)
            result.survivors.append((f"{name} ({status})", diff, reason))
    result.seconds = time.monotonic() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    result.cpu_seconds = usage.ru_utime + usage.ru_stime - cpu0
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("modules", nargs="*", help="paths as in the table (default: all)")
    ap.add_argument("--changed", action="store_true", help="only modules whose source or tests changed vs --base")
    ap.add_argument("--base", help="git ref for --changed (default: merge-base with origin/main or main)")
    ap.add_argument("--workers", type=int, default=2, help="mutants tested in parallel (default 2)")
    ap.add_argument("--threshold", type=float, default=THRESHOLD, help=f"minimum score in %% (default {THRESHOLD})")
    ap.add_argument("--tests", nargs="+", help="run against these test files instead of the table's (one module)")
    ap.add_argument(
        "--last",
        action="store_true",
        help="report the last run's results again (after editing EQUIVALENT_MUTANTS), without running anything",
    )
    ap.add_argument("--list", action="store_true", help="print the module table and exit")
    ap.add_argument("--quiet", action="store_true", help="no survivor diffs, only the table")
    args = ap.parse_args(argv)

    if args.list:
        for module, target in MODULES.items():
            print(f"{module:24} {' '.join(target.tests)}")
        return 0
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        ap.error(f"not in the module table: {', '.join(unknown)} (see --list)")
    modules = args.modules or list(MODULES)
    if args.tests and len(modules) != 1:
        ap.error("--tests needs exactly one module")
    if args.changed:
        touched = changed_modules(args.base or default_base())
        modules = [m for m in modules if m in touched]
        if not modules:
            print("mutation: no module in the table changed")
            return 0

    results = []
    for module in modules:
        print(f"mutation: {module} ...", flush=True)
        target = MODULES[module]
        if args.tests:
            target = Target(tuple(args.tests), target.skip)
        r = run_module(module, target, args.workers, rerun=not args.last)
        results.append(r)
        if r.error:
            print(r.error)
        elif not args.quiet:
            for name, diff, reason in r.survivors:
                print(f"  survived: {name}" + (f"  [equivalent: {reason}]" if reason else ""))
                if not reason:
                    print("    " + "\n    ".join(diff.strip().splitlines()[3:]))

    print()
    print("| module | mutants | killed | survived | no tests | equivalent | score | time | CPU time |")
    print("|---|---|---|---|---|---|---|---|---|")
    failed = False
    for r in results:
        equivalent = r.equivalent
        ok = not r.error and r.score >= args.threshold
        failed |= not ok
        print(
            f"| `{r.module}` | {r.total} | {r.killed} | {r.counts.get('survived', 0)} | {r.counts.get('no tests', 0)} "
            f"| {equivalent} | {r.score:.1f}%{'' if ok else ' FAIL'} | {r.seconds:.0f} s | {r.cpu_seconds:.0f} s |"
        )
    print(f"mutation: {sum(r.seconds for r in results):.0f} s in all, {sum(r.cpu_seconds for r in results):.0f} s CPU")
    if failed:
        print(f"mutation: below the {args.threshold:g}% threshold (or failed to run)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

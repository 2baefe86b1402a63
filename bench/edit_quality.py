"""Held-out in-line edit quality: known refactorings with known results, through the server's edit path.

    python bench/edit_quality.py --out runs/edits                 # both splits; calibrate on one, report the other
    python bench/edit_quality.py --per-kind 2 --out runs/edits-s  # a quick look

Tasks (bench/heldout/edit_tasks.py) select a whole function of held-out code (bench/heldout/sources.json.gz, never
trained on) and ask for one refactoring with a known result: rename a local, add a parameter, add type hints,
fix an off-by-one. Each runs through `EngineService.edit`, the call `dcopilot serve` makes for a code action (the
document's text, the selection, the instruction, the settings from the config), with the edit gate open
(edit.min_score = -100) so that every task's score is seen. Per task: offered (edits came back), correct (the
selection became the known result, exactly or equal up to white space), breaks (the document parsed before and
not after, engine/tasks/syntax.py's parsers; the target is none).

The gate is then calibrated on the calibration split: the threshold that maximises correct minus wrong offered
edits (an edit that must be undone costs about what a right one saves), ties to the higher threshold. The test
split is reported once at that threshold, exactly as the server would answer with edit.min_score set to it.
Writes DIR/tasks.jsonl (one row per task) and DIR/summary.json, and prints the tables.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ROOT / "bench" / "heldout"
for p in (str(ROOT), str(HELDOUT)):
    if p not in sys.path:
        sys.path.insert(0, p)

from edit_tasks import EditTask, build  # noqa: E402
from systems import ready_service  # noqa: E402

OPEN_GATE = -100.0


@dataclass(frozen=True)
class Outcome:
    id: str
    language: str
    kind: str
    split: str
    offered: bool
    correct: bool
    breaks: bool
    score: float | None
    message: str
    seconds: float


def normalized(text: str) -> str:
    """Equal up to white space: runs collapse to one space, none around punctuation."""
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r" ?([^\w\s]) ?", r"\1", text)


def judge(task: EditTask, new_range: str | None) -> tuple[bool, bool]:
    """(correct, breaks) of the selection's new text (None: nothing offered)."""
    from dcopilot.engine.tasks.syntax import parses

    if new_range is None:
        return False, False
    after = task.document[: task.start] + new_range + task.document[task.end :]
    breaks = bool(parses(task.language, task.document)) and parses(task.language, after) is False
    return new_range == task.expected or normalized(new_range) == normalized(task.expected), breaks


def shown(outcomes: list[Outcome], threshold: float) -> list[Outcome]:
    """The tasks offered at `threshold`: the engine's gate is one comparison on the same score."""
    return [o for o in outcomes if o.offered and o.score is not None and o.score >= threshold]


def calibrate(outcomes: list[Outcome]) -> float:
    """The threshold maximising correct - wrong among offered edits; ties go to the higher threshold. Above every
    score (nothing offered) when no threshold earns more than offering nothing."""
    scores = sorted({o.score for o in outcomes if o.offered and o.score is not None})
    if not scores:
        return 0.0
    best_t, best_u = scores[-1] + 0.01, 0
    for t in scores:
        offered = shown(outcomes, t)
        utility = sum(o.correct for o in offered) - sum(not o.correct for o in offered)
        if utility > best_u or (utility == best_u and t > best_t):
            best_t, best_u = t, utility
    return best_t


def rates(outcomes: list[Outcome], threshold: float) -> dict:
    offered = shown(outcomes, threshold)
    n, k = len(outcomes), len(offered)
    return {
        "tasks": n,
        "offered": k,
        "offered_rate": k / n if n else 0.0,
        "correct": sum(o.correct for o in offered),
        "correct_rate": sum(o.correct for o in offered) / k if k else 0.0,
        "breaks": sum(o.breaks for o in offered),
        "breaks_rate": sum(o.breaks for o in offered) / k if k else 0.0,
    }


def table(outcomes: list[Outcome], threshold: float) -> str:
    rows = [
        "| language | kind | tasks | offered | correct of offered | breaks of offered |",
        "|---|---|---:|---:|---:|---:|",
    ]
    groups = [*sorted({(o.language, o.kind) for o in outcomes}), ("all", "all")]
    for lang, kind in groups:
        sel = [o for o in outcomes if lang == "all" or (o.language == lang and o.kind == kind)]
        r = rates(sel, threshold)
        rows.append(
            f"| {lang} | {kind} | {r['tasks']} | {r['offered']} ({r['offered_rate']:.0%}) | "
            f"{r['correct']} ({r['correct_rate']:.0%}) | {r['breaks']} ({r['breaks_rate']:.0%}) |"
        )
    return "\n".join(rows)


class Engine:
    """EngineService as `dcopilot serve` builds it from the config, on its real model worker thread."""

    def __init__(self, load_timeout: float = 900.0):
        from dcopilot.copilot.config import load_config

        self.service, self.status = ready_service(load_config(), load_timeout)
        self.loop = asyncio.new_event_loop()

    def describe(self) -> str:
        assert self.status is not None
        return f"{self.status.model} on {self.status.device} (in-process EngineService.edit)"

    def edit(self, task: EditTask):
        from dcopilot.lsp.service import EditRequest

        uri = f"file:///heldout/{task.id}"
        req = EditRequest(
            key=f"{uri}#edit",
            uri=uri,
            path=task.file.rsplit("/", 1)[-1],
            language_id=task.language,
            version=1,
            text=task.document,
            start=task.start,
            end=task.end,
            instruction=task.instruction,
        )
        return self.loop.run_until_complete(self.service.edit(req))

    def close(self) -> None:
        self.service.close()
        self.loop.close()


def run_task(engine: Engine, task: EditTask) -> Outcome:
    t0 = time.perf_counter()
    result = engine.edit(task)
    seconds = time.perf_counter() - t0
    new = None
    if result.edits:
        text = task.document
        for e in sorted(result.edits, key=lambda e: e.start, reverse=True):
            text = text[: e.start] + e.new_text + text[e.end :]
        new = text[task.start : len(text) - (len(task.document) - task.end)]
    correct, breaks = judge(task, new)
    return Outcome(
        task.id,
        task.language,
        task.kind,
        task.split,
        new is not None,
        correct,
        breaks,
        result.score,
        result.message,
        seconds,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="directory for tasks.jsonl and summary.json")
    ap.add_argument("--sources", type=Path, default=HELDOUT / "sources.json.gz")
    ap.add_argument("--per-kind", type=int, default=3, help="tasks per language, kind and split (at most)")
    ap.add_argument("--device", default="", help="cpu, cuda, ... (default: the config's)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()

    with gzip.open(args.sources, "rb") as f:
        sources = json.loads(f.read())
    tasks = build(sources, args.per_kind)
    # The gate open, so every task's score is seen; the threshold is applied afterwards, as the engine would.
    os.environ["DCOPILOT_EDIT_MIN_SCORE"] = str(OPEN_GATE)
    if args.device:
        os.environ["DCOPILOT_MODEL_DEVICE"] = args.device
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    engine = Engine()
    load_s = time.perf_counter() - started
    outcomes = []
    try:
        for i, task in enumerate(tasks, 1):
            outcomes.append(run_task(engine, task))
            if i % 20 == 0 or i == len(tasks):
                print(f"  {i}/{len(tasks)} tasks", file=sys.stderr, flush=True)
    finally:
        engine.close()

    import torch

    cal = [o for o in outcomes if o.split == "calibration"]
    test = [o for o in outcomes if o.split == "test"]
    threshold = calibrate(cal)
    summary = {
        "model": engine.describe(),
        "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
        f"{torch.get_num_threads()}",
        "load_s": round(load_s, 1),
        "seconds_per_task_p50": round(statistics.median(o.seconds for o in outcomes), 3),
        "tasks_per_kind": args.per_kind,
        "threshold": threshold,
        "calibration_open_gate": rates(cal, OPEN_GATE),
        "calibration_at_threshold": rates(cal, threshold),
        "test_open_gate": rates(test, OPEN_GATE),
        "test_at_threshold": rates(test, threshold),
        "refusals_open_gate": {
            m: sum(o.message == m for o in outcomes) for m in sorted({o.message for o in outcomes if not o.offered})
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "tasks.jsonl", "w") as f:
        for o in outcomes:
            f.write(json.dumps(asdict(o)) + "\n")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"\ncalibration split, gate open (edit.min_score {OPEN_GATE:g}):\n{table(cal, OPEN_GATE)}")
    print(f"\ntest split, gate open:\n{table(test, OPEN_GATE)}")
    print(f"\ntest split at the calibrated edit.min_score {threshold:.2f}:\n{table(test, threshold)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

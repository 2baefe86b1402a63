"""The gate's curve: useful, noise and coverage of the model's suggestions over a grid of `completion.min_score`.

    python bench/gate_curve.py runs/q-cal/predictions.jsonl            # after bench/quality.py --split calibration
    python bench/gate_curve.py runs/q-cal/predictions.jsonl --useful-rate 0.5  # the rule's bound

Reads the model's records (each carries the engine's score of the suggestion it showed) from a bench/quality.py
run made with the gate open (--min-score -100). For each threshold: coverage = shown / cases, useful and noise
rates among shown (ES >= 0.7, ES < 0.3), and the useful count. Rule for the default: the lowest threshold (the
one that shows most) at which at least --useful-rate of the suggestions shown are useful, the share a user who
sees one can count on (issue 14's target is half). Choose it on the calibration split only.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "heldout"))

from metrics import NOISE_ES, USEFUL_ES

USEFUL_RATE = 0.5  # the rule's bound: at least half of what is shown is useful
GRID = [-100.0, -8.0, -6.0, -5.0, -4.0, -3.5, -3.0, -2.5, -2.0, -1.75, -1.5, -1.25, -1.0, -0.75, -0.5, -0.25]


@dataclass(frozen=True)
class Point:
    threshold: float
    cases: int
    shown: int
    useful: int
    noise: int

    @property
    def coverage(self) -> float:
        return self.shown / self.cases if self.cases else 0.0

    @property
    def useful_rate(self) -> float:
        return self.useful / self.shown if self.shown else 0.0

    @property
    def noise_rate(self) -> float:
        return self.noise / self.shown if self.shown else 0.0


def curve(records: list[dict], grid: list[float]) -> list[Point]:
    """One point per threshold: a record is shown when it was shown with the gate open and its score passes."""
    points = []
    for t in grid:
        shown = [r for r in records if r["shown"] and r["score"] is not None and r["score"] >= t]
        useful = sum(r["es"] >= USEFUL_ES for r in shown)
        noise = sum(r["es"] < NOISE_ES for r in shown)
        points.append(Point(t, len(records), len(shown), useful, noise))
    return points


def choose(points: list[Point], useful_rate: float, min_shown: int) -> Point:
    """The lowest threshold whose useful rate (of shown) is at least `useful_rate`; when none reaches it, the one
    with the highest useful rate (ties: the lower threshold).

    A point showing fewer than `min_shown` suggestions is left out: its rates are too uncertain to rank.
    """
    ok = [p for p in points if p.shown >= min_shown]
    good = [p for p in ok if p.useful_rate >= useful_rate]
    if good:
        return min(good, key=lambda p: p.threshold)
    return min(ok, key=lambda p: (-round(p.useful_rate, 6), p.threshold))


def render(points: list[Point], chosen: Point | None = None) -> str:
    rows = [
        "| min_score | coverage | shown | useful (of shown) | noise (of shown) | useful count |",
        "|---|---|---|---|---|---|",
    ]
    for p in points:
        mark = " **(chosen)**" if chosen is not None and p.threshold == chosen.threshold else ""
        rows.append(
            f"| {p.threshold:g}{mark} | {p.coverage:.1%} | {p.shown}/{p.cases} | {p.useful_rate:.1%} | "
            f"{p.noise_rate:.1%} | {p.useful} |"
        )
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("predictions", type=Path, help="predictions.jsonl from bench/quality.py")
    ap.add_argument("--system", default="model")
    ap.add_argument("--useful-rate", type=float, default=USEFUL_RATE, help="useful share of shown to reach")
    ap.add_argument("--min-shown", type=int, default=20, help="ignore thresholds showing fewer suggestions")
    args = ap.parse_args()
    records = [r for r in map(json.loads, args.predictions.read_text().splitlines()) if r["system"] == args.system]
    if not records:
        print(f"gate_curve: no records of system {args.system!r} in {args.predictions}", file=sys.stderr)
        return 1
    points = curve(records, GRID)
    chosen = choose(points, args.useful_rate, args.min_shown)
    print(render(points, chosen))
    print(
        f"\nrule: the lowest threshold with >= {args.useful_rate:.0%} of shown useful, "
        f"among thresholds showing >= {args.min_shown} -> min_score {chosen.threshold:g}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

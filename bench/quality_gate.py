"""Promotion's second judge: a candidate must also suggest better than the shipped model, not only score lower loss.

    python bench/quality_gate.py --candidate runs/v2/checkpoint [--shipped engine/embedded] [--margin 0.002]

Held-out loss (dcopilot.engine.training.promote) and what users are shown can disagree: a 2,400-step anneal
lowered the loss while the edit similarity of its suggestions fell (bench/RESULTS.md, session 6). This runs
bench/quality.py on the calibration split for both checkpoints. The test split is never used, as it is measured
once per shipped model. Each model runs alone: no retrieval, no snippets, the gate open, one torch thread, so
that only the model differs. The candidate passes when its mean edit similarity of the first suggestion beats
the shipped model's by more than --margin. Exit status: 0 when it passes, 1 when it does not, 2 on an error. Both
models' figures, overall and per language, are printed and written to --out as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARGIN = 0.002  # about one case in 320 moving from useless to exact; below that a difference is noise
ALONE = ("--split", "calibration", "--min-score", "-100", "--no-retrieval", "--no-snippets", "--threads", "1")


def es_of(model_dir: Path, out: Path, limit: int | None) -> dict[str, float]:
    """Mean ES of the model's first suggestion per language ("all" for every case) on the calibration split."""
    cmd = [sys.executable, str(ROOT / "bench" / "quality.py"), *ALONE, "--model", str(model_dir), "--out", str(out)]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"bench/quality.py failed for {model_dir}:\n{proc.stderr[-2000:]}")
    table = json.loads((out / "summary.json").read_text())["tables"]["model"]
    return {key.split("/")[0]: row["es"] for key, row in table.items() if key.endswith("/all")}


def verdict(candidate: dict[str, float], shipped: dict[str, float], margin: float) -> bool:
    return candidate["all"] > shipped["all"] + margin


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--candidate", type=Path, required=True)
    ap.add_argument("--shipped", type=Path, default=ROOT / "engine" / "embedded")
    ap.add_argument("--margin", type=float, default=MARGIN, help="ES the candidate must gain, overall")
    ap.add_argument("--limit", type=int, help="at most N cases per language and kind (tests)")
    ap.add_argument("--out", type=Path, help="write both models' figures and the verdict here (JSON)")
    args = ap.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            figures = {
                name: es_of(path, Path(tmp) / name, args.limit)
                for name, path in (("candidate", args.candidate), ("shipped", args.shipped))
            }
    except (RuntimeError, OSError, KeyError, ValueError) as exc:
        print(f"quality_gate: {exc}", file=sys.stderr)
        return 2
    passed = verdict(figures["candidate"], figures["shipped"], args.margin)
    for lang in figures["shipped"]:
        print(f"{lang:12} shipped {figures['shipped'][lang]:.3f}  candidate {figures['candidate'].get(lang, 0.0):.3f}")
    outcome = "suggests better than" if passed else "does not suggest better than"
    print(f"quality_gate: the candidate {outcome} the shipped model (margin {args.margin})")
    if args.out is not None:
        args.out.write_text(json.dumps({**figures, "margin": args.margin, "passed": passed}, indent=1) + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

"""What the syntax evidence of the completion score costs a request: tree-sitter's error counts beside the whole.

    python bench/syntax_cost.py --limit 5 --threads 1    # 5 calibration cases per language and kind

Runs the engine over calibration cases as bench/calibrate_score.py does (the server's request, snippets,
retrieval) and times, per request, the calls to engine/tasks/syntax.py's `error_count` (the window with nothing
inserted, then once per candidate) beside the request's own time. Prints p50/p95/mean of both, their ratio, and
the parsed window's size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import calibrate_score


def pct(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=5, help="at most N cases per language and kind")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    from dcopilot.engine.tasks import infill, syntax

    counting = syntax.error_count
    run_infill = infill.run_infill
    spent: list[float] = []  # seconds in error_count during the current request
    chars: list[int] = []  # the window's size, from the first count of each request
    requests: list[tuple[float, float, int]] = []  # (request s, counting s, counts)

    def timed_count(language: str, text: str) -> int | None:
        t = time.perf_counter()
        try:
            return counting(language, text)
        finally:
            spent.append(time.perf_counter() - t)
            if len(spent) == 1:
                chars.append(len(text))

    def timed_infill(*a, **kw):
        spent.clear()
        result = run_infill(*a, **kw)
        requests.append((result.seconds, sum(spent), len(spent)))
        return result

    syntax.error_count = timed_count  # infill calls it through the module, so every count is timed
    infill.run_infill = timed_infill  # calibrate_score.collect imports it at call time
    calibrate_score.collect(args)
    total = [r[0] * 1000 for r in requests]
    cost = [r[1] * 1000 for r in requests]
    print(f"{len(requests)} requests, {statistics.mean(r[2] for r in requests):.1f} error counts each")
    print(f"window parsed: p50 {pct(chars, 0.5)} chars, max {max(chars)}")
    for name, xs in (("request", total), ("error counts", cost)):
        print(f"{name:>12}: p50 {pct(xs, 0.5):.2f} ms, p95 {pct(xs, 0.95):.2f} ms, mean {statistics.mean(xs):.2f} ms")
    print(f"error counts / request time: {sum(cost) / sum(total):.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

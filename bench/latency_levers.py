"""Latency levers side by side: the same typing session (bench/lsp_latency.py) against a fresh `dcopilot serve` per
variant, variants interleaved round by round so a change in machine load hits them all alike.

Each variant is a set of server settings (DCOPILOT_* environment variables, OMP_NUM_THREADS). The table gives
absolute figures and ratios to the first variant, with the load average around each session: on a shared machine
compare the ratios, not the milliseconds.

    python bench/latency_levers.py --keys 200                       # the levers alone, then together
    python bench/latency_levers.py --variants shipped,hyp1,debounce150 --rounds 2
    DET_STEP_MS=25 python bench/latency_levers.py --deterministic --variants shipped,debounce0,debounce40,debounce150
        # the debounce alone: a sleeping 100 ms "model" (tests/lsp/det_backend.py), so CPU load hardly matters
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lsp_latency as bench

# name -> (what it changes, server environment; None removes a variable). "shipped" pins the settings shipped
# before the per-device defaults (engine/tasks/requests.py DEVICE_DEFAULTS), so every other row changes one thing
# against it; "defaults" removes the pins: what the server does today.
PINNED = {
    "DCOPILOT_COMPLETION_HYPOTHESES": "3",
    "DCOPILOT_COMPLETION_MAX_TOKENS": "64",
    "DCOPILOT_COMPLETION_DEBOUNCE_MS": "75",
    "OMP_NUM_THREADS": "2",
}
UNPINNED: dict[str, str | None] = {k: None for k in PINNED}
VARIANTS: dict[str, tuple[str, dict[str, str | None]]] = {
    "shipped": ("before: hypotheses 3, max_tokens 64, debounce 75 ms, 2 torch threads", {}),
    "threads1": ("1 torch thread (the event loop and the client keep the other core)", {"OMP_NUM_THREADS": "1"}),
    "hyp2": ("2 length hypotheses", {"DCOPILOT_COMPLETION_HYPOTHESES": "2"}),
    "hyp1": ("1 length hypothesis", {"DCOPILOT_COMPLETION_HYPOTHESES": "1"}),
    "tok16": ("max_tokens 16 (canvas 25 slots instead of 64)", {"DCOPILOT_COMPLETION_MAX_TOKENS": "16"}),
    "debounce0": ("debounce 0 ms (every keystroke reaches the model)", {"DCOPILOT_COMPLETION_DEBOUNCE_MS": "0"}),
    "debounce40": ("debounce 40 ms (adapts within [40, 160])", {"DCOPILOT_COMPLETION_DEBOUNCE_MS": "40"}),
    "debounce150": ("debounce 150 ms (adapts within [150, 600])", {"DCOPILOT_COMPLETION_DEBOUNCE_MS": "150"}),
    "defaults": ("the defaults now: on a CPU 2 hypotheses, max_tokens 16, 1 torch thread; debounce 75 ms", UNPINNED),
    "defaults+debounce0": ("the defaults with debounce 0", UNPINNED | {"DCOPILOT_COMPLETION_DEBOUNCE_MS": "0"}),
}
DEFAULT_RUN = "shipped,threads1,hyp2,tok16,debounce0,defaults,defaults+debounce0"


def server_env(name: str) -> dict[str, str | None]:
    return PINNED | VARIANTS[name][1]


def row(name: str, runs: list[dict], base: dict | None) -> str:
    """One table row: medians over the variant's sessions, ratio to the base row's."""
    fig = [bench.figures(r) for r in runs]

    def med(key: str) -> float:
        vals = sorted(f[key] for f in fig if not math.isnan(f[key]))
        return vals[len(vals) // 2] if vals else float("nan")

    def ratio(key: str) -> str:
        return f" ({med(key) / base[key]:.2f}x)" if base and base.get(key) else ""

    model = sorted(r["stats"]["model"]["p50Ms"] or float("nan") for r in runs)[len(runs) // 2]
    loads = " ".join(f"{r['loadavg'][0]:.1f}-{r['loadavg'][3]:.1f}" for r in runs)
    model_ratio = f" ({model / base['model']:.2f}x)" if base else ""
    covered = sum(r["pauses_covered"] for r in runs)
    pauses = sum(r["pauses"] for r in runs)
    reuse = sum(r["prefix_reuse"]["reused_tokens"] for r in runs), sum(r["prefix_reuse"]["prompt_tokens"] for r in runs)
    return (
        f"| {name} | {med('latency_p50_ms'):.0f}{ratio('latency_p50_ms')} | {med('latency_p95_ms'):.0f}"
        f"{ratio('latency_p95_ms')} | {sum(len(r['answered']) for r in runs)} | {covered}/{pauses}"
        f" ({covered / pauses:.0%}) | {model:.0f}{model_ratio}"
        f" | {reuse[0] / reuse[1] if reuse[1] else float('nan'):.0%} | {loads} |"
    )


def main() -> None:
    ap = bench.parser()
    ap.description = __doc__
    ap.add_argument(
        "--variants",
        default=DEFAULT_RUN,
        help=f"comma-separated, first is the base of the ratios; known: {', '.join(VARIANTS)}",
    )
    ap.add_argument("--rounds", type=int, default=1, help="sessions per variant (interleaved)")
    ap.add_argument("--out", type=Path, help="write every session's figures as JSON here")
    args = ap.parse_args()
    names = [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for rnd in range(args.rounds):
        for name in names:
            r = asyncio.run(bench.session(args, min_score=bench.OPEN_GATE, env_extra=server_env(name)))
            runs[name].append(r)
            f = bench.figures(r)
            print(
                f"[round {rnd + 1}] {name}: p50 {f['latency_p50_ms']:.0f} ms,"
                f" pauses {r['pauses_covered']}/{r['pauses']},"
                f" load {r['loadavg'][0]:.2f}",
                file=sys.stderr,
            )
    cpu = f"{platform.machine()} {os.cpu_count()} CPUs, python {platform.python_version()}"
    print(f"{cpu}; {args.keys} keys of {Path(args.file).name}, seed {args.seed}, gate open, {args.rounds} round(s)")
    print()
    print(
        "| variant | keystroke -> answer p50 ms | p95 ms | answered | pauses > 300 ms with a suggestion |"
        " model p50 ms | prompt tokens reused | load avg (1 min) before-after |"
    )
    print("|---|---|---|---|---|---|---|---|")
    base_runs = runs[names[0]]
    base_fig = [bench.figures(r) for r in base_runs]
    base = {
        "latency_p50_ms": sorted(f["latency_p50_ms"] for f in base_fig)[len(base_fig) // 2],
        "latency_p95_ms": sorted(f["latency_p95_ms"] for f in base_fig)[len(base_fig) // 2],
        "model": sorted(r["stats"]["model"]["p50Ms"] or float("nan") for r in base_runs)[len(base_runs) // 2],
    }
    for name in names:
        print(row(name, runs[name], None if name == names[0] else base))
    print()
    for name in names:
        print(f"- {name}: {VARIANTS[name][0]}")
    if args.out:
        args.out.write_text(json.dumps({n: [bench.figures(r) for r in rs] for n, rs in runs.items()}, indent=2))


if __name__ == "__main__":
    main()

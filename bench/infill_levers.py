"""Where one completion's time goes, and the latency levers side by side, measured in-process as CPU time.

The server's wall-clock latency (bench/lsp_latency.py) on a shared machine mostly measures the other jobs. This bench
runs the engine path the server runs (dcopilot.engine.tasks.infill.run_infill with a prompt cache) on one torch thread
and reads the thread's CPU time, which other processes barely change, at the keystrokes of the same typing session
(lsp/scheduler.py typed after its first 40 lines). Every variant runs at every keystroke, variants interleaved, each
with its own prompt cache, so each sees the reuse it would see while typing.

    python bench/infill_levers.py                  # profile of one request, then every lever
    python bench/infill_levers.py --every 6 --keys 300

Prints (1) the profile: CPU ms per phase of a request with the shipped settings, and (2) per variant: median and p95
CPU ms per request, ratio to the shipped settings, denoiser steps, prompt tokens encoded (not reused), and how many
requests returned a suggestion with the gate open and with the shipped gate.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import torch  # noqa: E402
from dcopilot.engine.runtime import sampler  # noqa: E402
from dcopilot.engine.runtime.loader import load_model  # noqa: E402
from dcopilot.engine.runtime.prefix_cache import PrefixCache  # noqa: E402
from dcopilot.engine.tasks import infill  # noqa: E402
from dcopilot.engine.tasks import requests as defaults  # noqa: E402
from dcopilot.engine.tasks.requests import InfillRequest  # noqa: E402


def unflushed_distribution(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The sampler's distribution before probabilities under e^-87 were flushed to 0 (exp in its denormal range)."""
    logp = torch.log_softmax(z, dim=-1)
    logp.clamp_(min=torch.finfo(logp.dtype).min)
    probs = logp.exp()
    entropy = -(probs.unsqueeze(-2) @ logp.unsqueeze(-1)).reshape(z.shape[:-1])
    return probs, entropy


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    what: str
    request: dict = dataclasses.field(default_factory=dict)  # InfillRequest overrides
    generation: dict = dataclasses.field(default_factory=dict)  # GenerationConfig overrides
    prompt_cache: bool = True
    unflushed: bool = False
    shrink: bool = True  # stopped rows leave the batch (sampler.active_rows)


SHIPPED = {"hypotheses": 3, "max_tokens": 64}  # pinned, so the base row stays put when a default moves
VARIANTS = [
    Variant("shipped", "hypotheses 3, max_tokens 64, prompt cache, flushed exp, early stop as trained"),
    Variant("unflushed exp", "the sampler's exp over the whole vocabulary, denormals included", unflushed=True),
    Variant("no prompt cache", "every request encodes its whole prompt", prompt_cache=False),
    Variant("no early stop", "all max_denoising_steps steps", generation={"stability_threshold": None}),
    Variant("whole batch", "stopped rows stay in the batch until every row has stopped", shrink=False),
    Variant(
        "stable only",
        "stop when the argmax canvas is stable, whatever its entropy",
        generation={"confidence_threshold": 1e9},
    ),
    Variant("hyp2", "2 length hypotheses", request={"hypotheses": 2}),
    Variant("hyp1", "1 length hypothesis (free length)", request={"hypotheses": 1}),
    Variant("tok32", "max_tokens 32 (canvas 41 slots)", request={"max_tokens": 32}),
    Variant("tok16", "max_tokens 16 (canvas 25 slots)", request={"max_tokens": 16}),
    Variant("hyp2+tok16", "2 hypotheses, max_tokens 16", request={"hypotheses": 2, "max_tokens": 16}),
    Variant("hyp1+tok16", "1 hypothesis, max_tokens 16", request={"hypotheses": 1, "max_tokens": 16}),
    Variant(
        "hyp2+tok16 whole batch",
        "2 hypotheses, max_tokens 16, stopped rows stay in the batch",
        request={"hypotheses": 2, "max_tokens": 16},
        shrink=False,
    ),
]


@contextmanager
def patched(obj, name: str, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


class Phases:
    """CPU seconds spent inside wrapped functions, by phase name (nested calls count in their own phase only)."""

    def __init__(self):
        self.cpu: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._stack: list[list[float]] = []

    def wrap(self, phase: str, fn: Callable) -> Callable:
        def timed(*a, **k):
            self._stack.append([0.0])
            t = time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                spent = time.thread_time() - t
                inner = self._stack.pop()[0]
                self.cpu[phase] = self.cpu.get(phase, 0.0) + spent - inner
                self.calls[phase] = self.calls.get(phase, 0) + 1
                if self._stack:
                    self._stack[-1][0] += spent

        return timed


def typing_cuts(args) -> list[tuple[str, int]]:
    """(document, cursor) after each `every`-th keystroke of the lsp_latency typing session."""
    lines = Path(args.file).read_text(encoding="utf-8").splitlines(keepends=True)
    head, target = "".join(lines[: args.context_lines]), "".join(lines[args.context_lines :])[: args.keys]
    return [(head + target[:n] + "\n", len(head) + n) for n in range(1, len(target) + 1, args.every)]


def request(doc: str, cursor: int, v: Variant) -> InfillRequest:
    return InfillRequest(
        text=doc, cursor=cursor, language="python", path="lsp/scheduler.py", max_candidates=1, **(SHIPPED | v.request)
    )


def run(model, v: Variant, cache: PrefixCache | None, doc: str, cursor: int):
    """(cpu seconds, result, prompt tokens encoded) of one request under variant v."""
    gen = dataclasses.replace(model.generation, **v.generation) if v.generation else model.generation
    dist = unflushed_distribution if v.unflushed else sampler.distribution
    rows = sampler.active_rows if v.shrink else (lambda run, state: None)
    with (
        patched(model, "generation", gen),
        patched(sampler, "distribution", dist),
        patched(sampler, "active_rows", rows),
    ):
        t = time.thread_time()
        result = infill.run_infill(model, request(doc, cursor, v), encoder=cache.encode if cache else None)
        cpu = time.thread_time() - t
    encoded = cache.stats.last_encoded if cache else result.prompt_tokens
    return cpu, result, encoded


def profile(model, cuts, reps: int) -> list[str]:
    """CPU ms per phase of shipped-settings requests at the session's keystrokes, after a warm prompt cache."""
    ph = Phases()
    tok = model.tokenizer
    targets = [
        (infill, "window_for", "window and its tokenization"),
        (infill.lay, "build_prompt", "prompt ids"),
        (infill.lay, "pinned_tail", "prompt ids"),
        (model, "encode", "prompt encode (uncached tail)"),
        (model, "denoise", "denoiser forward (steps + scoring)"),
        (sampler, "sample_step", "sampler step (draw, accept, stop rule)"),
        (infill.pp, "finish", "post-processing"),
        (tok, "decode", "post-processing"),
    ]
    cache = PrefixCache(model)
    shipped = VARIANTS[0]
    run(model, shipped, cache, *cuts[0])
    total, n = 0.0, 0
    originals = [(obj, name, getattr(obj, name)) for obj, name, _ in targets]
    try:
        for obj, name, phase in targets:
            setattr(obj, name, ph.wrap(phase, getattr(obj, name)))
        for doc, cursor in cuts[1 : 1 + reps]:
            cpu, _, _ = run(model, shipped, cache, doc, cursor)
            total += cpu
            n += 1
    finally:
        for obj, name, fn in originals:
            setattr(obj, name, fn)
    lines = [f"profile: shipped settings, {n} requests at successive keystrokes, CPU ms per request", ""]
    lines += ["| phase | CPU ms | share |", "|---|---|---|"]
    accounted = 0.0
    for phase in dict.fromkeys(p for _, _, p in targets):
        ms = ph.cpu.get(phase, 0.0) * 1000 / n
        accounted += ms
        lines.append(f"| {phase} | {ms:.1f} | {ms / (total * 1000 / n):.0%} |")
    rest = total * 1000 / n - accounted
    lines.append(
        f"| everything else (canvases, noise, scoring arithmetic, glue) | {rest:.1f}"
        f" | {rest / (total * 1000 / n):.0%} |"
    )
    lines.append(f"| **total** | **{total * 1000 / n:.1f}** | |")
    return lines


def levers(model, cuts, names: list[str]) -> list[str]:
    chosen = [v for v in VARIANTS if v.name in names]
    caches = {v.name: PrefixCache(model) if v.prompt_cache else None for v in chosen}
    rows: dict[str, list[tuple[float, int, int, bool, bool]]] = {v.name: [] for v in chosen}
    for doc, cursor in cuts:
        for v in chosen:
            cpu, result, encoded = run(model, v, caches[v.name], doc, cursor)
            best = result.candidates[0] if result.candidates else None
            rows[v.name].append(
                (cpu, result.steps, encoded, best is not None, bool(best and best.score >= defaults.MIN_SCORE))
            )
    base = statistics.median(r[0] for r in rows[chosen[0].name])
    out = [
        f"levers: {len(cuts)} keystrokes, CPU ms per request (one torch thread), ratio to {chosen[0].name}",
        "",
        "| variant | median ms | p95 ms | ratio | steps (mean) | prompt tokens encoded (mean) | suggestion, gate open |"
        f" passes min_score {defaults.MIN_SCORE:g} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in chosen:
        r = rows[v.name]
        cpu = sorted(x[0] * 1000 for x in r)
        med = statistics.median(cpu)
        p95 = cpu[min(len(cpu) - 1, int(0.95 * len(cpu)))]
        out.append(
            f"| {v.name} | {med:.1f} | {p95:.1f} | {med / (base * 1000):.2f} | {statistics.mean(x[1] for x in r):.1f}"
            f" | {statistics.mean(x[2] for x in r):.0f} | {sum(x[3] for x in r)}/{len(r)}"
            f" | {sum(x[4] for x in r)}/{len(r)} |"
        )
    out.append("")
    out += [f"- {v.name}: {v.what}" for v in chosen]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", default=str(ROOT / "lsp" / "scheduler.py"))
    ap.add_argument("--context-lines", type=int, default=40)
    ap.add_argument("--keys", type=int, default=300, help="characters of the typing session")
    ap.add_argument("--every", type=int, default=12, help="measure at every N-th keystroke")
    ap.add_argument("--profile-reps", type=int, default=10)
    ap.add_argument("--variants", default=",".join(v.name for v in VARIANTS), help="comma-separated; first is the base")
    ap.add_argument("--model", default="", help="checkpoint dir (default: the embedded model)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model or None, device="cpu")
    cuts = typing_cuts(args)
    load = os.getloadavg()
    print(
        f"{platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__}"
        f" ({torch.backends.cpu.get_cpu_capability()}),"
        f" python {platform.python_version()}, 1 torch thread; model {model.path}"
    )
    print()
    print("\n".join(profile(model, cuts, args.profile_reps)))
    print()
    names = [n for n in args.variants.split(",") if n]
    print("\n".join(levers(model, cuts, names)))
    print()
    print(f"load average {load[0]:.2f} before, {os.getloadavg()[0]:.2f} after (CPU time, so ratios hold under load)")


if __name__ == "__main__":
    main()

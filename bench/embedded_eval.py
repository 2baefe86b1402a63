"""Held-out infill quality and CPU speed of the embedded model, against simple baselines.

    python bench/embedded_eval.py --model engine/embedded --n 100 --out runs/embedded_eval.json

Tasks: random cursors in the held-out files of the corpus manifest shipped with the weights (whole packages never
trained on), drawn with a fixed seed by the same span sampler as training:
- single-line: the rest of the current line from a random cursor;
- multi-line: 2-6 lines from a random cursor (inside a line or at its end).
Metrics: exact match and edit similarity (1 - Levenshtein / max length; 1.0 when both are empty).
Systems:
- empty: inserts nothing;
- copy-above: the block of lines just above the cursor line, as many lines as the true middle has (an oracle line
  count, generous to the baseline), from the cursor column on;
- bigram: greedy token bigram model (counts from the training split, same tokenizer) continuing the prefix, stopping
  at the end of the line (single-line) or after the true number of line breaks (multi-line), and after as many
  tokens as the true middle has (both oracles, generous to the baseline);
- model: the trained model through the engine's real sampler (dcopilot.engine.runtime.sampler.sample), one
  free-length canvas, prompt in the trained layout (default C), `--context` prompt tokens;
- model+infill (with --infill): the full dcopilot.engine.tasks.infill.complete pipeline (length hypotheses,
  post-processing).
Single-line predictions of every system are cut at the first line break.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dcopilot.copilot.evaluate import edit_similarity  # noqa: E402  (the metric `dcopilot eval` reports)
from dcopilot.engine.tasks.infill import SINGLE_LINE_TOKENS  # noqa: E402
from dcopilot.engine.tasks.layout import Layout, fim_ids, fim_specials, path_ids  # noqa: E402
from dcopilot.engine.training.corpus import load_texts  # noqa: E402
from dcopilot.engine.training.fim_data import sample_span  # noqa: E402


@dataclass(frozen=True)
class Task:
    kind: str  # "single" | "multi"
    path: str
    prefix: str
    middle: str
    suffix: str


def make_tasks(texts: dict[str, str], n: int, seed: int = 0) -> list[Task]:
    rng = random.Random(seed)
    paths = sorted(texts)
    weights = [len(texts[p]) for p in paths]
    tasks: list[Task] = []
    for kind, span_kind in (("single", "line"), ("multi", "multiline")):
        got = 0
        while got < n:
            path = rng.choices(paths, weights=weights)[0]
            text = texts[path]
            span = sample_span(text, rng, span_kind)
            if span is None:
                continue
            middle = text[span.start : span.end]
            if len(middle) > 400:  # keep middles inside what one canvas can hold
                continue
            tasks.append(Task(kind, path, text[: span.start], middle, text[span.end :]))
            got += 1
    return tasks


def first_line(s: str) -> str:
    return s.split("\n", 1)[0]


# ---------------------------------------------------------------------------------------------------------------
# baselines


def copy_above(task: Task) -> str:
    lines_before = task.prefix.split("\n")
    col = len(lines_before[-1])
    k = task.middle.count("\n") + 1
    above = lines_before[:-1][-k:]
    if not above:
        return ""
    block = "\n".join(above)
    return block[col:] if len(above[0]) >= col else block[len(above[0]) :]


class Bigram:
    def __init__(self, tok, texts: dict[str, str]):
        self.tok = tok
        V = tok.vocab_size
        ids = torch.tensor([i for p in sorted(texts) for i in tok.encode(texts[p])], dtype=torch.long)
        pairs = ids[:-1] * V + ids[1:]
        uniq, counts = torch.unique(pairs, return_counts=True)
        first, second = uniq // V, uniq % V
        # most frequent successor per token: sort by (first, count) and keep the last of each group
        order = torch.argsort(first * (counts.max() + 1) + counts)
        nxt = torch.full((V,), -1, dtype=torch.long)
        nxt[first[order]] = second[order]
        self.next = nxt.tolist()

    def complete(self, task: Task) -> str:
        # oracle length cap (the true middle's token count): greedy bigrams loop, so this is generous to them
        max_tokens = max(1, len(self.tok.encode(task.middle)))
        prefix_ids = self.tok.encode(task.prefix[-200:])
        cur = prefix_ids[-1] if prefix_ids else 0
        want_breaks = task.middle.count("\n") if task.kind == "multi" else 0
        out: list[int] = []
        for _ in range(max_tokens):
            cur = self.next[cur]
            if cur < 0:
                break
            out.append(cur)
            text = self.tok.decode(out)
            if text.count("\n") > want_breaks:
                break
        text = self.tok.decode(out)
        parts = text.split("\n")
        return "\n".join(parts[: want_breaks + 1])


# ---------------------------------------------------------------------------------------------------------------
# the model


class ModelRunner:
    def __init__(self, model, layout: str, context: int, suffix_share: float, overrides: dict, seed: int):
        from dcopilot.engine.runtime.config import GenerationConfig

        self.model = model
        self.tok = model.tokenizer
        self.ids = fim_specials(self.tok)
        self.layout = layout
        self.context = context
        self.suffix_share = suffix_share
        self.k = int(model.extra.get("pinned_suffix_tokens", 8))
        gen = model.generation
        if overrides:
            gen = GenerationConfig(**{**asdict(gen), **overrides})
        self.generation = gen
        self.seed = seed

    def prompt_and_canvas(self, task: Task) -> tuple[list[int], list[int], list[bool]]:
        tok, ids = self.tok, self.ids
        prefix = tok.encode(task.prefix[-self.context * 8 :])
        suffix = tok.encode(task.suffix[: self.context * 8])
        budget = self.context
        n_suf = min(len(suffix), round(budget * self.suffix_share)) if self.layout != "B" else 0
        n_pre = min(len(prefix), budget - n_suf)
        head = path_ids(tok, task.path)
        prompt = fim_ids(ids, Layout(self.layout), head, prefix[len(prefix) - n_pre :], suffix[:n_suf])
        tail = suffix[: self.k] if self.layout in ("B", "C") else []
        # the canvas dcopilot.engine.tasks.infill uses: one line gets SINGLE_LINE_TOKENS free slots, several lines
        # the whole canvas
        L = self.model.canvas_length
        if task.kind == "single":
            L = min(L, SINGLE_LINE_TOKENS + 1 + len(tail))
        g = torch.Generator().manual_seed(self.seed)
        canvas = torch.randint(0, self.model.config.vocab_size, (L,), generator=g).tolist()
        noise_id = self.generation.noise_token_id
        if noise_id is not None:  # absorbing-state noise: the sampler's initial canvas is all noise tokens
            canvas = [noise_id] * L
        canvas[L - len(tail) :] = tail if tail else canvas[L - len(tail) :]
        pinned = [False] * (L - len(tail)) + [True] * len(tail)
        return prompt, canvas, pinned

    @torch.no_grad()
    def complete(self, task: Task) -> tuple[str, int]:
        from dcopilot.engine.runtime.sampler import sample

        prompt, canvas, pinned = self.prompt_and_canvas(task)
        cache = self.model.encode(torch.tensor([prompt]))
        g = torch.Generator().manual_seed(self.seed)
        res = sample(
            self.model,
            cache,
            canvas_length=len(canvas),
            batch=1,
            seed_canvas=torch.tensor([canvas]),
            pinned=torch.tensor([pinned]),
            generation=self.generation,
            generator=g,
        )
        out = res.tokens[0].tolist()
        free = len(canvas) - sum(pinned)
        mid: list[int] = []
        for t in out[:free]:
            if t in (self.ids.eos, self.ids.pad):
                break
            mid.append(t)
        return self.tok.decode(mid, skip_special_tokens=True), res.stats.steps


def infill_complete(model, task: Task, layout: str, context: int) -> str:
    from dcopilot.engine.tasks.infill import InfillRequest, complete

    text = task.prefix + task.suffix
    req = InfillRequest(
        text=text,
        cursor=len(task.prefix),
        path=task.path,
        language="python",
        multiline="never" if task.kind == "single" else "always",
        layout=layout,
        context_tokens=context,
        max_tokens=model.canvas_length,
    )
    cands = complete(model, req)
    if not cands:
        return ""
    c = cands[0]
    done = text[: c.start] + c.text + text[c.end :]
    # score the text that ends up between the untouched prefix and the untouched suffix
    if done.startswith(task.prefix) and done.endswith(task.suffix):
        return done[len(task.prefix) : len(done) - len(task.suffix)]
    return c.text


# ---------------------------------------------------------------------------------------------------------------


def score(preds: list[str], tasks: list[Task]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for kind in ("single", "multi"):
        pairs = [(p, t) for p, t in zip(preds, tasks, strict=True) if t.kind == kind]
        if not pairs:
            continue
        out[kind] = {
            "n": len(pairs),
            "exact_match": sum(p == t.middle for p, t in pairs) / len(pairs),
            "edit_similarity": sum(edit_similarity(p, t.middle) for p, t in pairs) / len(pairs),
        }
    return out


def speed(model, runner: ModelRunner, tasks: list[Task], repeats: int) -> dict[str, float]:
    """Median seconds of one denoising step (batch 1, canvas_length, against a cached prompt) and of one full
    single-line completion (prompt encode + sampler loop)."""
    task = next(t for t in tasks if t.kind == "single")
    prompt, canvas, _ = runner.prompt_and_canvas(task)
    with torch.no_grad():
        cache = model.encode(torch.tensor([prompt]))
        c = torch.tensor([canvas])
        model.denoise(c, cache)
        step_times = []
        for _ in range(repeats):
            t = time.perf_counter()
            model.denoise(c, cache)
            step_times.append(time.perf_counter() - t)
        full_times, steps = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            _, n = runner.complete(task)
            full_times.append(time.perf_counter() - t)
            steps.append(n)
    return {
        "prompt_tokens": len(prompt),
        "canvas_length": len(canvas),
        "denoise_step_median_s": statistics.median(step_times),
        "completion_median_s": statistics.median(full_times),
        "completion_steps_median": statistics.median(steps),
        "repeats": repeats,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "engine" / "embedded")
    ap.add_argument("--manifest", type=Path, default=None, help="default: <model>/corpus_manifest.json")
    ap.add_argument("--n", type=int, default=100, help="tasks per kind (single, multi)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layout", default="C")
    ap.add_argument("--context", type=int, default=192, help="prompt tokens for prefix + suffix")
    ap.add_argument("--suffix-share", type=float, default=0.3)
    ap.add_argument("--steps", type=int, default=None, help="override max_denoising_steps")
    ap.add_argument("--entropy-bound", type=float, default=None, help="override the sampler's entropy bound")
    ap.add_argument("--canvas", type=int, default=None, help="override the model's canvas_length (multi-line canvas)")
    ap.add_argument("--confidence", type=float, default=None, help="override the early-stop confidence threshold")
    ap.add_argument("--t-min", type=float, default=None)
    ap.add_argument("--t-max", type=float, default=None)
    ap.add_argument("--model-only", action="store_true", help="skip the baselines (sampler tuning)")
    ap.add_argument(
        "--infill", action="store_true", help="also score the dcopilot.engine.tasks.infill.complete pipeline"
    )
    ap.add_argument("--speed-repeats", type=int, default=0, help="> 0: also time a denoising step / a completion")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    ap.add_argument("--out", type=Path, default=None, help="write results JSON here")
    ap.add_argument("--show", type=int, default=0, help="print this many example predictions")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from dcopilot.engine.runtime.loader import load_model

    manifest = json.loads((args.manifest or args.model / "corpus_manifest.json").read_text())
    heldout = load_texts(manifest, "heldout")
    tasks = make_tasks(heldout, args.n, args.seed)
    model = load_model(str(args.model), device="cpu", dtype=torch.float32)
    if args.canvas:
        model.canvas_length = args.canvas
    tok = model.tokenizer
    results: dict = {
        "tasks": {"single": args.n, "multi": args.n},
        "seed": args.seed,
        "layout": args.layout,
        "context": args.context,
        "threads": args.threads,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg_start": os.getloadavg(),
    }
    systems: dict[str, list[str]] = {}
    if not args.model_only:
        systems["empty"] = ["" for _ in tasks]
        systems["copy-above"] = [copy_above(t) for t in tasks]
        bigram = Bigram(tok, load_texts(manifest, "train"))
        systems["bigram"] = [bigram.complete(t) for t in tasks]
    overrides = {
        k: v
        for k, v in (
            ("max_denoising_steps", args.steps),
            ("entropy_bound", args.entropy_bound),
            ("t_min", args.t_min),
            ("t_max", args.t_max),
            ("confidence_threshold", args.confidence),
        )
        if v is not None
    }
    runner = ModelRunner(model, args.layout, args.context, args.suffix_share, overrides, args.seed)
    t0 = time.perf_counter()
    preds, steps = [], []
    for t in tasks:
        p, n = runner.complete(t)
        preds.append(p)
        steps.append(n)
    results["model_seconds_per_task"] = (time.perf_counter() - t0) / len(tasks)
    results["model_steps_mean"] = sum(steps) / len(steps)
    results["generation"] = asdict(runner.generation)
    systems["model"] = preds
    if args.infill:
        systems["model+infill"] = [infill_complete(model, t, args.layout, args.context) for t in tasks]
    for name, ps in systems.items():
        ps = [first_line(p) if t.kind == "single" else p for p, t in zip(ps, tasks, strict=True)]
        systems[name] = ps
    results["scores"] = {name: score(ps, tasks) for name, ps in systems.items()}
    if args.speed_repeats > 0:
        results["speed"] = speed(model, runner, tasks, args.speed_repeats)
    results["load_avg_end"] = os.getloadavg()
    shown = [j for kind in ("single", "multi") for j in [i for i, t in enumerate(tasks) if t.kind == kind][: args.show]]
    for j in shown:
        t = tasks[j]
        print(f"--- {t.kind} {t.path}\n  true : {t.middle!r}")
        for name, ps in systems.items():
            print(f"  {name:>12}: {ps[j]!r}")
    print(json.dumps(results["scores"], indent=1))
    if "speed" in results:
        print(json.dumps(results["speed"], indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

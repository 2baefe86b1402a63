"""CPU completion latency of candidate embedded-model sizes: which sizes meet the 300 ms keystroke-to-ghost budget.

    python bench/size_latency.py [--threads 2] [--repeats 7] [--steps 4,8] [--out runs/size_latency.json]

For each candidate shape (SIZES, one of them the shipped one) a random-weight checkpoint in the engine's layout is
written with the shipped tokenizer and loaded by the engine's loader; then the real single-line pipeline
(`dcopilot.engine.tasks.infill.complete`: prompt encode, the length hypotheses, the sampler, ranking) completes
cursors in held-out files with the server's default request settings. Random weights never reach the sampler's
entropy bound, so every completion runs exactly max_denoising_steps steps: the table gives the latency at a fixed
step count (the shipped model needs a median of 4 steps for one line; see its model card). The server adds its
own overhead on top (about 1-3 ms, bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from dcopilot.engine.runtime.loader import load_model  # noqa: E402
from dcopilot.engine.runtime.model import DiffusionGemma, init_weights  # noqa: E402
from dcopilot.engine.tasks.infill import InfillRequest, complete  # noqa: E402
from dcopilot.engine.tasks.layout import fim_specials  # noqa: E402
from dcopilot.engine.training.corpus import load_texts  # noqa: E402
from dcopilot.engine.training.sizes import SIZES  # noqa: E402
from dcopilot.engine.training.train import TrainConfig, default_generation, write_checkpoint  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

EMBEDDED = ROOT / "engine" / "embedded"


def cursors(texts: dict[str, str], n: int) -> list[tuple[str, str, int]]:
    """n (path, text, cursor) triples: the middle of a non-blank line deep enough in a file to fill the window."""
    out = []
    for path in sorted(texts):
        text = texts[path]
        lines = text.splitlines(keepends=True)
        if len(lines) < 120:
            continue
        pos = sum(len(x) for x in lines[:100])
        line = lines[100]
        if line.strip():
            out.append((path, text, pos + len(line) // 2))
        if len(out) == n:
            break
    return out


def measure(model_dir: Path, tasks, repeats: int) -> dict:
    model = load_model(str(model_dir), device="cpu", dtype=torch.float32)
    times, cpu = [], []
    for r in range(repeats):
        for path, text, cursor in tasks:
            req = InfillRequest(text=text, cursor=cursor, path=path, language="python", multiline="never", seed=r)
            t, c = time.perf_counter(), time.process_time()
            complete(model, req)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    times, cpu = times[len(tasks) :], cpu[len(tasks) :]  # the first round warms up
    p90 = sorted(times)[int(0.9 * len(times))]
    return {
        "p50_ms": round(1000 * statistics.median(times), 1),
        "p90_ms": round(1000 * p90, 1),
        # CPU seconds per completion: on a loaded machine the steadier figure (at 1 thread ~ an idle core's wall)
        "cpu_p50_ms": round(1000 * statistics.median(cpu), 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--tasks", type=int, default=5)
    ap.add_argument("--steps", default="4,8", help="fixed denoising steps per completion to measure")
    ap.add_argument("--sizes", default=",".join(SIZES))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    tok = Tokenizer.from_file(str(EMBEDDED / "tokenizer.json"))
    ids = fim_specials(tok)
    manifest = json.loads((EMBEDDED / "corpus_manifest.json").read_text())
    tasks = cursors(load_texts(manifest, "heldout"), args.tasks)
    report = {"threads": args.threads, "load_before": os.getloadavg(), "torch": torch.__version__, "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sizes.split(","):
            shape = dataclasses.replace(SIZES[name], vocab_size=tok.get_vocab_size())
            model = DiffusionGemma(shape.text_config(ids))
            init_weights(model, generator=torch.Generator().manual_seed(0))
            row = {"size": name, "params": model.num_parameters(), "active_params": active_params(model)}
            for steps in [int(s) for s in args.steps.split(",")]:
                gen = dataclasses.replace(default_generation(ids, tok.token_to_id("<mask>")), max_denoising_steps=steps)
                out = Path(tmp) / f"{name}-{steps}"
                write_checkpoint(out, model, tok, TrainConfig(), {}, gen)
                row[f"{steps}_steps"] = measure(out, tasks, args.repeats)
            report["rows"].append(row)
            print(json.dumps(row), flush=True)
    report["load_after"] = os.getloadavg()
    print(f"threads {args.threads}; load {report['load_before']} -> {report['load_after']}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


def active_params(model: DiffusionGemma) -> int:
    """Parameters one token uses: all but the experts it is not routed to."""
    c = model.config
    per_expert = 3 * c.moe_intermediate_size * c.hidden_size
    return model.num_parameters() - c.num_hidden_layers * (c.num_experts - c.top_k_experts) * per_expert


if __name__ == "__main__":
    raise SystemExit(main())

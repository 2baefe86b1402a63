"""Training throughput of the embedded model's trainer: the float32 path (as shipped) against today's default
(bf16 autocast, float32 attention and norms: engine/training/speed.py), side by side in one run, plus where a step's
time goes.

    python bench/train_speed.py [--steps 6] [--threads 1,2] [--out runs/train_speed.json]

Both variants run the real optimiser step (`train.train_step`) on the same batches (shapes drawn from the
trainer's own prompt/canvas lengths), alternating step by step so that load from other jobs hits both alike.
Tokens per second count prompt + canvas tokens, as the trainer's `tokens seen` does. Wall time and process CPU time
are both reported: on a shared machine the CPU time is the steadier measure at one thread. The model is the
shipped size (engine/embedded/config.json), randomly initialised.
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
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from dcopilot.engine.runtime.model import DiffusionGemma, init_weights  # noqa: E402
from dcopilot.engine.tasks.layout import fim_specials  # noqa: E402
from dcopilot.engine.training import speed  # noqa: E402
from dcopilot.engine.training.corpus import load_texts  # noqa: E402
from dcopilot.engine.training.fim_data import ExampleSampler  # noqa: E402
from dcopilot.engine.training.train import ModelShape, TrainConfig, train_step  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

EMBEDDED = ROOT / "engine" / "embedded"


def hardware() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def shipped_shape(vocab: int) -> ModelShape:
    text = json.loads((EMBEDDED / "config.json").read_text())["dcopilot"]["training"]["shape"]
    return ModelShape(**{**text, "vocab_size": vocab})


def build(shape: ModelShape, ids, fast: bool) -> tuple[DiffusionGemma, torch.optim.Optimizer]:
    model = DiffusionGemma(shape.text_config(ids))
    init_weights(model, generator=torch.Generator().manual_seed(0))
    if fast:
        speed.prepare(model)
    model.train()
    return model, torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95))


class PartTimer:
    """CPU time per named part of one step (forward hooks for the experts; explicit sections for the rest); run at
    one thread, where process CPU time is the step's own work even on a shared machine."""

    def __init__(self) -> None:
        self.total: dict[str, float] = {}

    @contextmanager
    def part(self, name: str):
        t = time.process_time()
        yield
        self.total[name] = self.total.get(name, 0.0) + time.process_time() - t

    def hook_experts(self, model: DiffusionGemma) -> None:
        starts: list[float] = []
        for layer in model.blocks:
            layer.experts.register_forward_pre_hook(lambda m, a: starts.append(time.process_time()))
            layer.experts.register_forward_hook(
                lambda m, a, o: self.total.__setitem__(
                    "experts (MoE, fwd, inside the passes)",
                    self.total.get("experts (MoE, fwd, inside the passes)", 0.0) + time.process_time() - starts.pop(),
                )
            )


def parts(model, opt, data: ExampleSampler, cfg: TrainConfig, ids, steps: int, fast: bool) -> dict[str, float]:
    """Mean seconds per diffusion step by part, following train.diffusion_loss's order (mask noise, 2 draws,
    self-conditioning on the first draw)."""
    import torch.nn.functional as F

    timer = PartTimer()
    timer.hook_experts(model)
    gen = torch.Generator().manual_seed(0)
    V = model.config.vocab_size
    for _ in range(steps):
        with timer.part("data (examples, tokenizing, collate)"):
            b = data.batch(cfg.batch_size, 192, 48)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
            with timer.part("prompt encode (fwd)"):
                cache = model.encode(b.prompt)
            total: torch.Tensor | float = 0.0
            for draw in range(2):
                with timer.part("noise draws"):
                    t = torch.rand(b.canvas.shape[0], 1, generator=gen)
                    corrupt = (torch.rand(*b.canvas.shape, generator=gen) < t) & ~b.pinned
                    noisy = torch.where(corrupt, torch.full_like(b.canvas, 4), b.canvas)
                sc = None
                if draw == 0:
                    with timer.part("self-conditioning pass (no grad)"), torch.no_grad():
                        sc = model.denoise(noisy, cache, None) / 0.6
                with timer.part("denoise pass + loss (fwd)"):
                    logits = model.denoise(noisy, cache, sc)
                    ce = F.cross_entropy(logits.reshape(-1, V).float(), b.canvas.reshape(-1), reduction="none")
                    total = total + (ce.view_as(b.weight) * b.weight).sum() / b.weight.sum()
        assert isinstance(total, torch.Tensor)
        with timer.part("backward"):
            opt.zero_grad(set_to_none=True)
            total.backward()
        with timer.part("optimizer (clip + AdamW)"):
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
    return {k: round(v / steps, 4) for k, v in timer.total.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=6, help="measured steps per variant and thread count")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--files", type=int, default=120, help="training files to draw examples from")
    ap.add_argument("--parts-steps", type=int, default=3, help="steps of the per-part breakdown (0: skip)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    tok = Tokenizer.from_file(str(EMBEDDED / "tokenizer.json"))
    manifest = json.loads((EMBEDDED / "corpus_manifest.json").read_text())
    texts = load_texts(manifest, "train")
    texts = {k: texts[k] for k in sorted(texts)[: args.files]}
    ids = fim_specials(tok)
    shape = shipped_shape(tok.get_vocab_size())
    base = TrainConfig()
    rng = random.Random(0)
    shapes = [(rng.choice(base.prompt_lens), rng.choice(base.canvas_lens)) for _ in range(args.steps + 1)]
    data = ExampleSampler(tok, texts, seed=0)
    batches = [data.batch(base.batch_size, p, n) for p, n in shapes]
    sc = (True, False)
    report: dict = {"hardware": hardware(), "load_before": os.getloadavg(), "shape": shape.__dict__, "runs": {}}
    for threads in [int(x) for x in args.threads.split(",") if x]:
        torch.set_num_threads(threads)
        variants = {
            "old: float32": (TrainConfig(autocast_bf16=False), *build(shape, ids, False)),
            "new: bf16 autocast + speed.prepare": (TrainConfig(autocast_bf16=True), *build(shape, ids, True)),
        }
        wall: dict[str, list[float]] = {k: [] for k in variants}
        cpu: dict[str, list[float]] = {k: [] for k in variants}
        tokens = 0
        for i, b in enumerate(batches):
            for name, (cfg, model, opt) in variants.items():
                w, c = time.perf_counter(), time.process_time()
                train_step(model, opt, b, cfg, ids, torch.Generator().manual_seed(i), sc, 4, False)
                if i > 0:  # the first step warms allocators and kernels
                    wall[name].append(time.perf_counter() - w)
                    cpu[name].append(time.process_time() - c)
            if i > 0:
                tokens += b.prompt.numel() + b.canvas.numel()
        rows = {}
        for name in variants:
            rows[name] = {
                "tokens_per_s_wall": round(tokens / sum(wall[name])),
                "tokens_per_cpu_s": round(tokens / sum(cpu[name])),
                "median_step_s": round(statistics.median(wall[name]), 3),
            }
        old, new = rows["old: float32"], rows["new: bf16 autocast + speed.prepare"]
        rows["ratio new/old"] = {
            "wall": round(new["tokens_per_s_wall"] / old["tokens_per_s_wall"], 2),
            "cpu": round(new["tokens_per_cpu_s"] / old["tokens_per_cpu_s"], 2),
        }
        report["runs"][f"{threads} thread(s)"] = rows
        print(f"threads {threads}: {json.dumps(rows, indent=1)}", flush=True)
    if args.parts_steps > 0:
        torch.set_num_threads(1)
        report["parts_1_thread"] = {}
        for fast in (False, True):
            model, opt = build(shape, ids, fast)
            parts(model, opt, data, base, ids, 1, fast)  # warm-up
            key = "new" if fast else "old"
            report["parts_1_thread"][key] = parts(model, opt, data, base, ids, args.parts_steps, fast)
            print(f"parts ({key}, CPU s per step, P=192 L=48): {json.dumps(report['parts_1_thread'][key], indent=1)}")
    report["load_after"] = os.getloadavg()
    print(f"hardware: {report['hardware']}; load {report['load_before']} -> {report['load_after']}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

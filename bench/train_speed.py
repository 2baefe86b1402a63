"""Training throughput of the embedded model's trainer: the float32 path (as shipped), bf16 autocast with float32
attention and norms (engine/training/speed.py: `prepare`), and that plus torch.compile of the elementwise-heavy parts
(`compile_model`, the CPU trainer's default), side by side in one run, plus where a step's time goes.

    python bench/train_speed.py [--steps 6] [--threads 1,2] [--no-compiled] [--out runs/train_speed.json]

The variants run the real optimiser step (`train.train_step`; the trainer's fused AdamW, and for the float32
variant the per-parameter AdamW the first trainer used) on the same batches (shapes drawn from the
trainer's own prompt/canvas lengths), alternating step by step so that load from other jobs hits them alike.
The compiled variant is warmed up first (diffusion and AR steps at the shortest and longest lengths): its
compile time is reported apart (wall, and CPU of this process plus the C
compiler it runs) and excluded from the per-step figures; a recompile during the measured steps would count.
Step 0 starts every variant from the same weights and noise, so its loss and gradient norm show what bf16 and
compiling change.
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
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from dcopilot.engine.runtime.model import DiffusionGemma, init_weights  # noqa: E402
from dcopilot.engine.tasks.layout import fim_specials  # noqa: E402
from dcopilot.engine.training import speed  # noqa: E402
from dcopilot.engine.training.corpus import load_texts  # noqa: E402
from dcopilot.engine.training.fim_data import AR_MIX, ExampleSampler  # noqa: E402
from dcopilot.engine.training.train import ModelShape, TrainConfig, make_optimizer, train_step  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

EMBEDDED = ROOT / "engine" / "embedded"
OPTIMIZER = TrainConfig(lr=1e-3)  # the optimiser's settings for every variant
OLD, NEW, COMPILED = "old: float32", "new: bf16 autocast + speed.prepare", "compiled: new + speed.compile_model"


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


def build(shape: ModelShape, ids, fast: bool, compiled: bool = False) -> tuple[DiffusionGemma, torch.optim.Optimizer]:
    model = DiffusionGemma(shape.text_config(ids))
    init_weights(model, generator=torch.Generator().manual_seed(0))
    if fast:
        speed.prepare(model)
    if compiled:
        speed.compile_model(model)
    model.train()
    return model, make_optimizer(model, OPTIMIZER, fused=fast)


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


def cpu_with_children() -> float:
    """CPU seconds of this process and its finished children (inductor runs the C compiler as a child)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def warm_up(model, opt, cfg: TrainConfig, data: ExampleSampler, ar_data: ExampleSampler, ids) -> dict[str, float]:
    """Compile the graphs a training run needs: diffusion steps with and without self-conditioning and AR steps, at
    the trainer's shortest and longest lengths (inductor specialises on a few size ranges); returns the seconds it
    took. The weights it changes do not matter for speed."""
    w, c = time.perf_counter(), cpu_with_children()
    gen = torch.Generator().manual_seed(99)
    for P, L in ((min(cfg.prompt_lens), min(cfg.canvas_lens)), (max(cfg.prompt_lens), max(cfg.canvas_lens))):
        train_step(model, opt, data.batch(cfg.batch_size, P, L), cfg, ids, gen, (True, False), 4, False)
        train_step(model, opt, ar_data.batch(cfg.batch_size, P, L), cfg, ids, gen, (), 4, True)
    return {"wall_s": round(time.perf_counter() - w, 1), "cpu_s": round(cpu_with_children() - c, 1)}


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
    ap.add_argument("--batch-size", type=int, default=TrainConfig.batch_size, help="examples per step, every variant")
    ap.add_argument("--files", type=int, default=120, help="training files to draw examples from")
    ap.add_argument("--parts-steps", type=int, default=3, help="steps of the per-part breakdown (0: skip)")
    ap.add_argument(
        "--compiled", action=argparse.BooleanOptionalAction, default=True, help="also run the compiled variant"
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    tok = Tokenizer.from_file(str(EMBEDDED / "tokenizer.json"))
    manifest = json.loads((EMBEDDED / "corpus_manifest.json").read_text())
    texts = load_texts(manifest, "train")
    texts = {k: texts[k] for k in sorted(texts)[: args.files]}
    ids = fim_specials(tok)
    shape = shipped_shape(tok.get_vocab_size())
    base = TrainConfig(batch_size=args.batch_size)
    rng = random.Random(0)
    shapes = [(rng.choice(base.prompt_lens), rng.choice(base.canvas_lens)) for _ in range(args.steps + 1)]
    data = ExampleSampler(tok, texts, seed=0)
    batches = [data.batch(base.batch_size, p, n) for p, n in shapes]
    sc = (True, False)
    report: dict = {"hardware": hardware(), "load_before": os.getloadavg(), "shape": shape.__dict__, "runs": {}}
    ar_data = ExampleSampler(tok, texts, seed=1, mix=AR_MIX)
    for threads in [int(x) for x in args.threads.split(",") if x]:
        torch.set_num_threads(threads)
        variants = {
            OLD: (replace(base, autocast_bf16=False), *build(shape, ids, False)),
            NEW: (replace(base, autocast_bf16=True), *build(shape, ids, True)),
        }
        if args.compiled:
            ccfg = replace(base, autocast_bf16=True, compile=True)
            model, opt = build(shape, ids, True, compiled=True)
            init = {k: v.clone() for k, v in model.state_dict().items()}
            warm = warm_up(model, opt, ccfg, data, ar_data, ids)
            print(f"compile (warm-up, 4 steps): {warm}", flush=True)
            model.load_state_dict(init)  # back to step-0 weights with a fresh optimiser, compiled graphs warm
            variants[COMPILED] = (ccfg, model, make_optimizer(model, OPTIMIZER))
        wall: dict[str, list[float]] = {k: [] for k in variants}
        cpu: dict[str, list[float]] = {k: [] for k in variants}
        step0: dict[str, dict[str, float]] = {}
        tokens = 0
        for i, b in enumerate(batches):
            for name, (cfg, model, opt) in variants.items():
                w, c = time.perf_counter(), time.process_time()
                loss, gnorm = train_step(model, opt, b, cfg, ids, torch.Generator().manual_seed(i), sc, 4, False)
                if i == 0:
                    step0[name] = {"loss": round(loss, 5), "grad_norm": round(gnorm, 4)}
                else:  # the first step warms allocators and kernels
                    wall[name].append(time.perf_counter() - w)
                    cpu[name].append(time.process_time() - c)
            if i > 0:
                tokens += b.prompt.numel() + b.canvas.numel()
        rows: dict[str, dict] = {}
        for name in variants:
            rows[name] = {
                "tokens_per_s_wall": round(tokens / sum(wall[name])),
                "tokens_per_cpu_s": round(tokens / sum(cpu[name])),
                "median_step_s": round(statistics.median(wall[name]), 3),
                "median_step_cpu_s": round(statistics.median(cpu[name]), 3),
                "step0": step0[name],
            }
        for name in variants:
            if name == OLD:
                continue
            ref = OLD if name == NEW else NEW
            rows[f"ratio {name.split(':')[0]}/{ref.split(':')[0]}"] = {
                "wall": round(rows[name]["tokens_per_s_wall"] / rows[ref]["tokens_per_s_wall"], 3),
                "cpu": round(rows[name]["tokens_per_cpu_s"] / rows[ref]["tokens_per_cpu_s"], 3),
            }
        if args.compiled:
            rows["ratio compiled/old"] = {
                k: round(rows[COMPILED][f"tokens_per_{u}"] / rows[OLD][f"tokens_per_{u}"], 3)
                for k, u in (("wall", "s_wall"), ("cpu", "cpu_s"))
            }
            rows["compile"] = warm
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

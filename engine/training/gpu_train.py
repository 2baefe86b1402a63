"""The GPU recipe: train a larger embedded model from pre-tokenized data in a fixed wall-time budget.

    python -m dcopilot.engine.training.gpu_train --data .carry/train --out DIR [--size 20m] [--deadline 300]
    python -m dcopilot.engine.training.gpu_train --data .carry/train --out DIR --init-from engine/embedded --lr 1e-3

Needs only torch, safetensors and tokenizers (no network, no corpus: the data folder from
`engine/training/pretok.py` carries the examples and the tokenizer). The objective is the CPU trainer's
(`train.train_step`: an AR warm start, then absorbing-state diffusion with self-conditioning and AR steps mixed
in), on fixed-shape batches drawn from the data's buckets, in bf16 autocast with float32 master weights.

The budget counts from process start: training stops at `--deadline` minus the time kept for validation and
writing, so a slow start-up shortens training instead of overrunning. Written to DIR:
- `checkpoint/`: the engine's loader layout (config.json, generation_config.json, model.safetensors, tokenizer),
  plus `training_data.json` (the data's meta.json: corpus, buckets, tokenizer hash);
- `train_log.jsonl`: one record per logged step; `scores.json`: held-out losses before and after, tokens, steps,
  seconds per phase, device; `summary.md`: the same as a table.
Held-out scores come from the data's validation examples (the corpus's held-out split), never from training data.

`--init-from CHECKPOINT` continues a trained checkpoint (its shape, its weights; a fresh optimiser) instead of a
new `--size` model, with no AR warm start unless `--ar-fraction` asks for one. The data must have been built for
that checkpoint's tokenizer. The card then carries the checkpoint's lineage forward: its stages, cumulative tokens
and minutes, and the GPU minutes.
"""

from __future__ import annotations

import time

START = time.monotonic()  # before the heavy imports: the deadline counts them too

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import lzma  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from dcopilot.engine.runtime.model import DiffusionGemma, init_weights  # noqa: E402
from dcopilot.engine.tasks.layout import fim_specials  # noqa: E402
from dcopilot.engine.training import speed  # noqa: E402
from dcopilot.engine.training.fim_data import Batch  # noqa: E402
from dcopilot.engine.training.pretok import DATA_FILE  # noqa: E402
from dcopilot.engine.training.sizes import SIZES  # noqa: E402
from dcopilot.engine.training.train import (  # noqa: E402
    WEIGHT_PREFIX,
    ModelShape,
    TrainConfig,
    default_generation,
    history,
    lineage,
    lr_at,
    make_optimizer,
    noise_token,
    step_kind,
    train_step,
    validate,
    write_checkpoint,
)
from safetensors.torch import load, load_file  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

# A model that builds and steps in milliseconds: the CPU test of the whole recipe.
TINY = ModelShape(
    hidden_size=32,
    intermediate_size=48,
    moe_intermediate_size=16,
    num_experts=4,
    num_hidden_layers=2,
    full_every=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=16,
    global_head_dim=16,
    sliding_window=64,
)


@dataclass(frozen=True)
class Recipe:
    size: str = "20m"
    batch_size: int = 128
    deadline_s: float = 300.0  # whole process, start-up included
    reserve_s: float = 45.0  # kept for the final validation and the writing
    steps: int = 0  # > 0: exactly this many steps (tests), no time schedule
    lr: float = 2e-3
    warmup_steps: int = 100
    ar_fraction: float = 0.15  # a new model's AR warm start; a continued one (init_from) defaults to none
    seed: int = 0
    log_every: int = 25
    val_batch: int = 64
    init_from: str = ""  # a checkpoint folder to continue instead of a new `size` model


class Data:
    """The buckets of a pretok folder on one device; batches are drawn by index, no host work per example."""

    def __init__(self, folder: Path, device: torch.device):
        self.folder = Path(folder)
        meta_path = self.folder / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path} missing: build the data with `bash scripts/gpu_train.sh --prepare`")
        self.meta = json.loads(meta_path.read_text())
        raw = load(lzma.decompress((self.folder / DATA_FILE).read_bytes()))
        self.tensors = {k: v.to(device) for k, v in raw.items()}
        self.device = device
        self.pad_weight = float(self.meta["pad_weight"])

    def shapes(self, kind: str) -> list[tuple[int, int]]:
        out = []
        for key in self.meta["buckets"]:
            k, pl = key.split(".")
            if k == kind:
                p, n = pl.split("x")
                out.append((int(p), int(n)))
        return sorted(out)

    def _batch(self, key: str, idx: torch.Tensor) -> Batch:
        t = self.tensors
        canvas = t[f"{key}.canvas"][idx].long()
        pinned = t[f"{key}.pinned"][idx].bool()
        n_mid = t[f"{key}.n_middle"][idx].long()
        pos = torch.arange(canvas.shape[1], device=self.device)
        after_eos = pos[None, :] > n_mid[:, None]
        weight = torch.where(after_eos, self.pad_weight, 1.0) * (~pinned)
        return Batch(t[f"{key}.prompt"][idx].long(), canvas, pinned, weight.float())

    def batch(self, kind: str, p: int, n: int, size: int, gen: torch.Generator) -> Batch:
        key = f"{kind}.{p}x{n}"
        count = self.tensors[f"{key}.prompt"].shape[0]
        return self._batch(key, torch.randint(0, count, (size,), generator=gen, device=self.device))

    def fixed(self, kind: str, size: int) -> list[Batch]:
        """All examples of a (validation) kind, in order, as batches of `size`."""
        out = []
        for p, n in self.shapes(kind):
            count = self.tensors[f"{kind}.{p}x{n}.prompt"].shape[0]
            for s in range(0, count - size + 1, size):
                out.append(self._batch(f"{kind}.{p}x{n}", torch.arange(s, s + size, device=self.device)))
        return out


def shape_for(size: str, vocab: int) -> ModelShape:
    if size == "tiny":
        return dataclasses.replace(TINY, vocab_size=vocab)
    if size not in SIZES:
        raise SystemExit(f"unknown --size {size}; choose from tiny, {', '.join(SIZES)}")
    return dataclasses.replace(SIZES[size], vocab_size=vocab)


def initial(init_from: Path, data_meta: dict) -> tuple[ModelShape, dict, dict]:
    """The shape, bf16 state dict (engine names) and training record of a checkpoint to continue; it must use the
    tokenizer the data's ids are for."""
    init_from = Path(init_from)
    config_path = init_from / "config.json"
    if not config_path.is_file():
        raise SystemExit(f"--init-from {init_from}: no config.json there (a checkpoint folder is needed)")
    record = json.loads(config_path.read_text()).get("dcopilot", {}).get("training", {})
    if "shape" not in record:
        raise SystemExit(f"--init-from {init_from}: its config.json records no training shape")
    digest = hashlib.sha256((init_from / "tokenizer.json").read_bytes()).hexdigest()
    if digest != data_meta.get("tokenizer_sha256"):
        raise SystemExit(
            f"--init-from {init_from}: its tokenizer.json (sha256 {digest[:12]}) is not the one the data was built for"
            f" ({str(data_meta.get('tokenizer_sha256'))[:12]}); rebuild the data with"
            f" `gpu_train.sh --prepare --tokenizer {init_from / 'tokenizer.json'}`"
        )
    state = load_file(str(init_from / "model.safetensors"))
    weights = {k[len(WEIGHT_PREFIX) :]: v for k, v in state.items()}
    return ModelShape(**record["shape"]), weights, record


def run(recipe: Recipe, data_dir: Path, out: Path, device: torch.device, log=print) -> dict:
    phases: dict[str, float] = {"start_up": round(time.monotonic() - START, 1)}
    t = time.monotonic()
    data = Data(data_dir, device)
    tok = Tokenizer.from_file(str(data_dir / "tokenizer.json"))
    ids = fim_specials(tok)
    noise_id = noise_token(tok, "mask")
    torch.manual_seed(recipe.seed)
    init_record: dict = {}
    if recipe.init_from:
        shape, weights, init_record = initial(Path(recipe.init_from), data.meta)
        model = DiffusionGemma(shape.text_config(ids))
        model.load_state_dict({k: v.float() for k, v in weights.items()})
        log(f"initialised from {recipe.init_from}")
    else:
        shape = shape_for(recipe.size, tok.get_vocab_size())
        model = DiffusionGemma(shape.text_config(ids))
        init_weights(model, generator=torch.Generator().manual_seed(recipe.seed))
    model.to(device)
    model.init_rope(device)
    speed.prepare(model)
    model.train()
    cfg = TrainConfig(
        batch_size=recipe.batch_size,
        prompt_lens=tuple(sorted({p for p, _ in data.shapes("diff")})),
        canvas_lens=tuple(sorted({n for _, n in data.shapes("diff")})),
        ar_fraction=recipe.ar_fraction,
        lr=recipe.lr,
        warmup_steps=recipe.warmup_steps,
        noise="mask",
        autocast_bf16=True,
        seed=recipe.seed,
        steps=recipe.steps,
    )
    opt = make_optimizer(model, cfg)
    val = data.fixed("val_diff", recipe.val_batch) + data.fixed("val_ar", recipe.val_batch)
    phases["data_and_model"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    with torch.autocast(device.type, dtype=torch.bfloat16):
        before = validate(model, val, ids, recipe.seed, noise_id)
    phases["validate_before"] = round(time.monotonic() - t, 1)
    log(f"params {model.num_parameters():,}; held-out before training {json.dumps(before)}")

    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "train_log.jsonl"
    log_path.write_text("")
    rng = random.Random(recipe.seed)
    gen = torch.Generator(device=device).manual_seed(recipe.seed + 7)
    ar_shapes = data.shapes("ar")
    stop_at = START + recipe.deadline_s - recipe.reserve_s
    train_start = time.monotonic()
    budget = max(1.0, stop_at - train_start)
    step, tokens = 0, 0
    while True:
        now = time.monotonic()
        frac = step / recipe.steps if recipe.steps > 0 else (now - train_start) / budget
        if frac >= 1.0:
            break
        lr = lr_at(frac, step, cfg)
        for g in opt.param_groups:
            g["lr"] = lr
        is_ar, sc = step_kind(rng, frac, cfg)
        p, n = rng.choice(ar_shapes) if is_ar else (rng.choice(cfg.prompt_lens), rng.choice(cfg.canvas_lens))
        batch = data.batch("ar" if is_ar else "diff", p, n, cfg.batch_size, gen)
        loss, gnorm = train_step(model, opt, batch, cfg, ids, gen, sc, noise_id, is_ar)
        step += 1
        tokens += batch.prompt.numel() + batch.canvas.numel()
        if step % recipe.log_every == 0 or step == 1:
            el = time.monotonic() - train_start
            rec = {"step": step, "kind": "ar" if is_ar else "diff", "loss": round(loss, 4), "gnorm": round(gnorm, 3)}
            rec |= {"lr": lr, "P": p, "L": n, "tokens": tokens, "seconds": round(el, 1)}
            rec["tokens_per_s"] = round(tokens / max(el, 1e-9))
            with log_path.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            log(json.dumps(rec))
    phases["train"] = round(time.monotonic() - train_start, 1)
    t = time.monotonic()
    with torch.autocast(device.type, dtype=torch.bfloat16):
        after = validate(model, val, ids, recipe.seed, noise_id)
    phases["validate_after"] = round(time.monotonic() - t, 1)
    log(f"held-out after {step} steps: {json.dumps(after)}")

    t = time.monotonic()
    speed.restore(model)
    model.float().cpu()
    model.init_rope("cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    info = {
        "recipe": asdict(recipe),
        "shape": asdict(shape),
        "device": name,
        "torch": torch.__version__,
        "train_steps": step,
        "train_tokens": tokens,
        "train_seconds": phases["train"],
        "data": data.meta,
    }
    if recipe.init_from:
        prior = lineage(init_record)
        info["cumulative"] = {
            **prior,
            "tokens": prior.get("tokens", 0) + tokens,
            "minutes": round(prior.get("minutes", 0.0) + phases["train"] / 60, 2),
            "gpu_minutes": round(prior.get("gpu_minutes", 0.0) + phases["train"] / 60, 2),
        }
        stage = {"noise": "mask", "steps": step, "tokens": tokens, "minutes": round(phases["train"] / 60, 2)}
        stage |= {"threads": 0, "device": name, "lr": recipe.lr, "seed": recipe.seed}
        stage |= {"corpus": data.meta["corpus"].get("kind", ""), "command": "gpu_train " + json.dumps(asdict(recipe))}
        info["stages"] = [*history(init_record), stage]
    write_checkpoint(out / "checkpoint", model, tok, cfg, {"training": info}, default_generation(ids, noise_id))
    shutil.copy2(data_dir / "meta.json", out / "checkpoint" / "training_data.json")
    phases["write"] = round(time.monotonic() - t, 1)
    phases["total"] = round(time.monotonic() - START, 1)
    scores = {
        "heldout_before": before,
        "heldout_after": after,
        "heldout_split": data.meta["corpus"].get("heldout_split", ""),
        "steps": step,
        "tokens": tokens,
        "tokens_per_s": round(tokens / max(phases["train"], 1e-9)),
        "params": model.num_parameters(),
        "size": recipe.init_from or recipe.size,
        "device": name,
        "phases_s": phases,
    }
    (out / "scores.json").write_text(json.dumps(scores, indent=1) + "\n")
    rows = [f"| {k} | {before[k]:.3f} | {after[k]:.3f} |" for k in after]
    (out / "summary.md").write_text(
        f"# GPU recipe: {scores['size']} ({scores['params']:,} params) on {name}\n\n"
        f"{step} steps, {tokens:,} tokens, {scores['tokens_per_s']:,} tokens/s; seconds: {json.dumps(phases)}\n\n"
        "| held-out loss (nats) | before | after |\n|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    log(f"wrote {out} in {phases['total']} s since start")
    return scores


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a folder written by engine/training/pretok.py")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", default=Recipe.size, help=f"tiny or one of {', '.join(SIZES)}")
    ap.add_argument("--init-from", default="", help="continue this checkpoint folder instead of a new --size model")
    ap.add_argument(
        "--ar-fraction",
        type=float,
        default=None,
        help=f"share of steps spent on the AR warm start (default {Recipe.ar_fraction}; 0 with --init-from)",
    )
    ap.add_argument("--batch-size", type=int, default=Recipe.batch_size)
    ap.add_argument("--deadline", type=float, default=Recipe.deadline_s, help="seconds from process start")
    ap.add_argument("--reserve", type=float, default=Recipe.reserve_s, help="seconds kept for validation + writing")
    ap.add_argument("--steps", type=int, default=0, help="exact step count instead of the time budget")
    ap.add_argument("--lr", type=float, default=Recipe.lr)
    ap.add_argument("--warmup-steps", type=int, default=Recipe.warmup_steps)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-batch", type=int, default=Recipe.val_batch, help="batch size of the held-out scoring")
    ap.add_argument("--device", default="auto", help="auto (cuda when present), cuda or cpu")
    args = ap.parse_args(argv)
    device = (
        torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if args.device == "auto"
        else torch.device(args.device)
    )
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    recipe = Recipe(
        size=args.size,
        batch_size=args.batch_size,
        deadline_s=args.deadline,
        reserve_s=args.reserve,
        steps=args.steps,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        seed=args.seed,
        val_batch=args.val_batch,
        init_from=args.init_from,
        ar_fraction=args.ar_fraction
        if args.ar_fraction is not None
        else (0.0 if args.init_from else Recipe.ar_fraction),
        log_every=1 if args.steps and args.steps <= 50 else Recipe.log_every,
    )
    run(recipe, args.data, args.out, device, log=lambda s: print(s, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

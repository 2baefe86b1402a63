"""Train the embedded model: corpus manifest -> BPE tokenizer -> DiffusionGemma (small) -> safetensors checkpoint.

    python -m dcopilot.engine.training.train --out engine/embedded --run-dir runs/embedded --minutes 120

Phases (same weights throughout, the engine's own model class):
1. autoregressive warm start: next-token loss in encoder mode (`encode_logits`) on FIM-formatted sequences
   (prompt + middle + <eos>), so the causal encoder learns code and the FIM format quickly;
2. uniform-state diffusion on the exact infill layouts: the prompt is encoded (with grad), every free canvas
   position is replaced by a uniformly random id with probability t ~ U(0, 1) per example, and the denoiser predicts
   the clean canvas; pinned positions (suffix tail, and for some examples the <eos>/<pad> of a length hypothesis)
   are fed clean and carry no loss. Half of the steps first run a no-grad pass and feed its temperature-scaled logits
   as self-conditioning, as the sampler does from its second step on. A share of AR steps continues in phase 2.
The schedule is by wall time (--minutes) or by step count (--steps, exactly reproducible). Every --ckpt-minutes, on
SIGTERM/SIGINT and at the end, the run writes a checkpoint and its whole state (engine/training/state.py), and
`--resume RUN_DIR` continues it exactly. Steps run under bf16 autocast with float32 attention and norms
(engine/training/speed.py; --fp32 for plain float32), with the elementwise-heavy parts torch.compile'd
(--no-compile: eager).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import random
import shutil
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from dcopilot.engine.runtime.config import ARCHITECTURE, FULL, SLIDING, GenerationConfig, TextConfig
from dcopilot.engine.runtime.model import DiffusionGemma, init_weights
from dcopilot.engine.tasks.layout import Specials, fim_specials
from dcopilot.engine.training import speed
from dcopilot.engine.training.bpe import SPECIAL_TOKENS, train_bpe
from dcopilot.engine.training.corpus import build_manifest
from dcopilot.engine.training.fim_data import (
    AR_MIX,
    LANGUAGE_ALPHA_HELP,
    Batch,
    ExampleSampler,
    MixConfig,
    ar_sequence,
)
from dcopilot.engine.training.sources import CorpusSourceError, fingerprint, is_v2, read_corpus
from dcopilot.engine.training.state import Progress, StateError, load_state, read_settings, save_state
from safetensors.torch import save_file
from tokenizers import Tokenizer

WEIGHT_PREFIX = "model.decoder."  # the real checkpoint's namespace for the (only) text transformer


@dataclass(frozen=True)
class ModelShape:
    vocab_size: int = 8192
    hidden_size: int = 128
    intermediate_size: int = 384
    moe_intermediate_size: int = 128
    num_experts: int = 8
    top_k_experts: int = 2
    num_hidden_layers: int = 6
    full_every: int = 3  # every third layer is full attention (and always the last)
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    num_global_key_value_heads: int = 1
    head_dim: int = 32
    global_head_dim: int = 64
    sliding_window: int = 512

    def text_config(self, ids: Specials) -> TextConfig:
        n = self.num_hidden_layers
        types = tuple(FULL if (i + 1) % self.full_every == 0 or i == n - 1 else SLIDING for i in range(n))
        return TextConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            moe_intermediate_size=self.moe_intermediate_size,
            num_experts=self.num_experts,
            top_k_experts=self.top_k_experts,
            num_hidden_layers=n,
            layer_types=types,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads,
            num_global_key_value_heads=self.num_global_key_value_heads,
            head_dim=self.head_dim,
            global_head_dim=self.global_head_dim,
            sliding_window=self.sliding_window,
            rope_parameters={
                SLIDING: {"rope_type": "default", "rope_theta": 10_000.0},
                FULL: {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1_000_000.0},
            },
            rms_norm_eps=1e-6,
            final_logit_softcapping=30.0,
            pad_token_id=ids.pad,
            bos_token_id=ids.bos,
            eos_token_id=ids.eos,
        )


@dataclass(frozen=True)
class TrainConfig:
    minutes: float = 60.0
    steps: int = 0  # > 0: schedule by steps instead of wall time
    batch_size: int = 16
    prompt_lens: tuple[int, ...] = (64, 96, 128, 128, 192, 256)
    canvas_lens: tuple[int, ...] = (32, 48, 48, 64)
    canvas_length: int = 64  # written to config.json: the longest trained canvas (one line uses fewer slots)
    ar_fraction: float = 0.25  # share of the schedule spent in the AR warm start
    ar_mix: float = 0.15  # share of AR steps during the diffusion phase
    self_cond_prob: float = 0.5
    noise_draws: int = 2  # canvases (independent noise) denoised per encoded prompt
    length_pin_prob: float = 0.25  # examples whose <eos>/<pad> are pinned (the sampler's length hypotheses)
    # "mask": absorbing-state noise (noised slots hold <mask>); "uniform": random ids, as DiffusionGemma. Measured:
    # a 5M model trained on uniform noise copies noise tokens into its answers (see the model card).
    noise: str = "mask"
    clean_weight: float = 0.1  # absorbing noise: loss weight of the clean free slots (copying them is trivial)
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    # bf16 matmuls under autocast and in the experts' own block, attention and norms in float32
    # (engine/training/speed.py): 1.5x faster per core than float32 on the development CPU (bench/train_speed.py);
    # the first shipped model trained in float32.
    autocast_bf16: bool = True
    # torch.compile (inductor) of the elementwise-heavy parts (speed.compile_model): 1.3x more tokens per CPU-second
    # than bf16 alone (bench/train_speed.py), after about 80 s of compiling. The CLI turns it on for the CPU trainer
    # (--no-compile: off); off here so that library callers and tests do not pay the compile time.
    compile: bool = False
    seed: int = 0
    ckpt_minutes: float = 10.0
    pinned_suffix_tokens: int = 8  # default K written for inference
    language_alpha: float = MixConfig.language_alpha  # training draws only; validation keeps the corpus's own mix


# ---------------------------------------------------------------------------------------------------------------
# losses


def diffusion_loss(
    model: DiffusionGemma,
    batch: Batch,
    gen: torch.Generator,
    self_cond: tuple[bool, ...],
    length_pin_prob: float,
    eos_id: int,
    t: torch.Tensor | None = None,
    noise_draws: int = 1,
    noise_id: int | None = None,
    clean_weight: float = 0.1,
) -> torch.Tensor:
    """Denoising CE on the free canvas positions of one batch (t ~ U(0,1) per example unless given).

    noise_id None: uniform-state noise, CE averaged over all free positions. noise_id set: absorbing-state noise
    (noised slots hold noise_id); CE averaged over the noised positions plus `clean_weight` x the clean ones' mean
    (per noised token, like masked diffusion, so low-t examples are not drowned by trivially copied tokens)."""
    B, L = batch.canvas.shape
    V = model.config.vocab_size
    dev = batch.canvas.device
    pinned = batch.pinned.clone()
    weight = batch.weight.clone()
    if length_pin_prob > 0:
        # Pin <eos> and the pads after it for some rows: the sampler's length hypotheses look exactly like this.
        rows = torch.rand(B, generator=gen, device=dev) < length_pin_prob
        eos_pos = (batch.canvas == eos_id).int().argmax(dim=1)
        after = torch.arange(L, device=dev)[None, :] >= eos_pos[:, None]
        pin_len = rows[:, None] & after & (batch.weight > 0)
        pinned |= pin_len
        weight = weight * (~pin_len)
    if t is None:
        t = torch.rand(B, 1, generator=gen, device=dev)

    def noise_like() -> torch.Tensor:
        if noise_id is not None:
            return torch.full((B, L), noise_id, dtype=torch.long, device=dev)
        return torch.randint(0, V, (B, L), generator=gen, device=dev)

    corrupt = (torch.rand(B, L, generator=gen, device=dev) < t) & ~pinned
    noisy = torch.where(corrupt, noise_like(), batch.canvas)
    cache = model.encode(batch.prompt)
    total: torch.Tensor | float = 0.0
    for draw in range(noise_draws):
        # Several noise draws per encoded prompt: the denoiser pass (L tokens) is much cheaper than the encoder
        # pass (P tokens), so extra draws buy more denoising signal per unit of compute.
        if draw > 0:
            t = torch.rand(B, 1, generator=gen, device=dev)
            corrupt = (torch.rand(B, L, generator=gen, device=dev) < t) & ~pinned
            noisy = torch.where(corrupt, noise_like(), batch.canvas)
        sc = None
        if self_cond[draw % len(self_cond)]:
            with torch.no_grad():
                temp = 0.4 + 0.4 * torch.rand(B, 1, 1, generator=gen, device=dev)
                sc = model.denoise(noisy, cache, None) / temp
        ce = speed.logits_ce(model, functools.partial(model.denoise, noisy, cache, sc), batch.canvas).view(B, L)
        if noise_id is None:
            total = total + (ce * weight).sum() / weight.sum().clamp_min(1.0)
        else:
            noised, clean = weight * corrupt, weight * ~corrupt
            total = total + (ce * noised).sum() / noised.sum().clamp_min(1.0)
            total = total + clean_weight * (ce * clean).sum() / clean.sum().clamp_min(1.0)
    assert isinstance(total, torch.Tensor)  # noise_draws >= 1 added a loss
    return total / noise_draws


def ar_loss(model: DiffusionGemma, batch: Batch, ids: Specials) -> torch.Tensor:
    inp, tgt = ar_sequence(batch, ids)
    return speed.logits_ce(model, functools.partial(model.encode_logits, inp), tgt, reduction="mean")


def lr_at(progress: float, step: int, cfg: TrainConfig) -> float:
    warm = min(1.0, (step + 1) / max(1, cfg.warmup_steps))
    cos = cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * warm * cos


# ---------------------------------------------------------------------------------------------------------------
# checkpoint files (the Hugging Face layout the engine's loader reads)


def write_checkpoint(
    out: Path,
    model: DiffusionGemma,
    tok: Tokenizer,
    cfg: TrainConfig,
    extra_card: dict,
    generation: GenerationConfig,
) -> None:
    """Write config.json, generation_config.json, tokenizer files and bf16 model.safetensors; atomic per directory."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    text = model.config
    ids = fim_specials(tok)
    tensors = {WEIGHT_PREFIX + k: v.detach().to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    os.chmod(tmp / "model.safetensors", 0o644)  # save_file creates 0600; package data must be world-readable
    text_dict = text.to_dict()
    text_dict.update(
        attention_bias=False,
        attention_dropout=0.0,
        max_position_embeddings=8192,
        dtype="bfloat16",
        initializer_range=0.02,
        use_bidirectional_attention="vision",
    )
    config = {
        "architectures": [ARCHITECTURE],
        "model_type": "diffusion_gemma",
        "canvas_length": cfg.canvas_length,
        "eos_token_id": [ids.eos],
        "pad_token_id": ids.pad,
        "bos_token_id": ids.bos,
        "tie_word_embeddings": True,
        "dtype": "bfloat16",
        "text_config": text_dict,
        "dcopilot": {
            "prompt_format": "fim",
            "layout_default": "C",
            "pinned_suffix_tokens": cfg.pinned_suffix_tokens,
            "special_tokens": {
                "pad": "<pad>",
                "eos": "<eos>",
                "bos": "<bos>",
                "unk": "<unk>",
                "mask": "<mask>",
                "fim_prefix": "<|fim_prefix|>",
                "fim_suffix": "<|fim_suffix|>",
                "fim_middle": "<|fim_middle|>",
                "file": "<|file|>",
            },
            "trained_prompt_tokens": list(cfg.prompt_lens),
            "trained_canvas_lengths": sorted(set(cfg.canvas_lens)),
            **extra_card,
        },
    }
    (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (tmp / "generation_config.json").write_text(json.dumps(generation.to_dict(), indent=2) + "\n")
    tok.save(str(tmp / "tokenizer.json"))
    tok_cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<bos>",
        "eos_token": "<eos>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "mask_token": "<mask>",
        "additional_special_tokens": list(SPECIAL_TOKENS[5:]),
        "model_max_length": 8192,
    }
    (tmp / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2) + "\n")
    # keep files that are not ours (model card, manifest, logs) when replacing the directory
    if out.exists():
        for p in out.iterdir():
            if not (tmp / p.name).exists():
                shutil.copy2(p, tmp / p.name)
        old = out.with_name(out.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old)
    else:
        tmp.rename(out)


def default_generation(ids: Specials, noise_id: int | None = None) -> GenerationConfig:
    # Absorbing noise: with the released bound 0.1 a small model settles about one slot per step (mostly pads),
    # so 16 steps leave most of the canvas to the final argmax. Bound 2.0 and T 0.3 -> 0.1 measured best for one
    # line (same ES as 0.8 -> 0.4 on average, 3x fewer steps; model card).
    mask = noise_id is not None
    return GenerationConfig(
        max_denoising_steps=16,
        entropy_bound=2.0 if mask else 0.1,
        t_min=0.1 if mask else 0.4,
        t_max=0.3 if mask else 0.8,
        stability_threshold=1,
        confidence_threshold=0.005,
        max_new_tokens=48,
        eos_token_ids=(ids.eos,),
        pad_token_id=ids.pad,
        noise_token_id=noise_id,
    )


# ---------------------------------------------------------------------------------------------------------------
# main loop


@torch.no_grad()
def validate(
    model: DiffusionGemma, batches: list[Batch], ids: Specials, seed: int, noise_id: int | None = None
) -> dict[str, float]:
    """Held-out losses on fixed batches: diffusion CE at t = 0.5 and 1.0 (no self-conditioning) and AR CE."""
    model.eval()
    dev = batches[0].canvas.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    out: dict[str, float] = {}
    for tval in (0.5, 1.0):
        losses = [
            diffusion_loss(
                model,
                b,
                gen,
                (False,),
                0.0,
                ids.eos,
                t=torch.full((b.canvas.shape[0], 1), tval, device=dev),
                noise_id=noise_id,
            ).item()
            for b in batches
        ]
        out[f"val_diff_t{tval}"] = sum(losses) / len(losses)
    ar = [b for b in batches if not b.pinned.any()]
    out["val_ar"] = sum(ar_loss(model, b, ids).item() for b in ar) / max(1, len(ar))
    model.train()
    return out


def validation_batches(tok: Tokenizer, heldout_texts: dict[str, str]) -> list[Batch]:
    """The fixed held-out batches a run validates on (seeded, so every run and step sees the same ones)."""
    val_diff = ExampleSampler(tok, heldout_texts, seed=1234)
    val_ar = ExampleSampler(tok, heldout_texts, seed=4321, mix=AR_MIX)
    return [val_diff.batch(16, 160, 48), val_diff.batch(16, 160, 48), val_ar.batch(16, 160, 48)]


def lineage(record: dict) -> dict[str, float]:
    """Tokens, minutes and thread-minutes that went into a checkpoint since training from scratch, from its
    config.json training record (a run continued from it adds its own on top: the model card's compute record)."""
    if "cumulative" in record:
        return dict(record["cumulative"])
    if "stages" in record:  # the first shipped model: three stages, each with its thread count
        stages = record["stages"]
        return {
            "tokens": sum(s["tokens"] for s in stages),
            "minutes": round(sum(s["minutes"] for s in stages), 2),
            "thread_minutes": round(sum(s["minutes"] * s.get("threads", 1) for s in stages), 2),
        }
    minutes = record.get("train_minutes", 0.0)
    return {
        "tokens": record.get("train_tokens", 0),
        "minutes": minutes,
        "thread_minutes": record.get("train_thread_minutes", minutes * record.get("threads", 1)),
    }


def stage_of(record: dict) -> dict:
    """One run of a checkpoint's training history, from its config.json training record."""
    cfg = record.get("train_config", {})
    return {
        "noise": cfg.get("noise", ""),
        "steps": record.get("train_steps", 0),
        "tokens": record.get("train_tokens", 0),
        "minutes": record.get("train_minutes", 0.0),
        "threads": record.get("threads", 1),
        "lr": cfg.get("lr", 0.0),
        "seed": cfg.get("seed", 0),
        "corpus": record.get("corpus", {}).get("kind", "manifest-v1"),
        "command": record.get("command", ""),
    }


def history(record: dict) -> list[dict]:
    """Every run a checkpoint's weights went through, oldest first: its record's `stages` (which end with the run
    that wrote it), else that run alone (a record written before stages were carried forward)."""
    return list(record["stages"]) if "stages" in record else [stage_of(record)]


def noise_token(tok: Tokenizer, noise: str) -> int | None:
    """The noise id for TrainConfig.noise: None for uniform noise, the tokenizer's <mask> for absorbing noise."""
    if noise == "uniform":
        return None
    if noise != "mask":
        raise ValueError(f"unknown noise {noise!r}; use mask or uniform")
    i = tok.token_to_id("<mask>")
    if i is None:
        raise ValueError("absorbing noise needs a <mask> token in the tokenizer")
    return i


def train(
    cfg: TrainConfig,
    shape: ModelShape,
    train_texts: dict[str, str],
    heldout_texts: dict[str, str],
    tok: Tokenizer,
    run_dir: Path,
    out: Path | None,
    card: dict,
    log=print,
    init_from: Path | None = None,
    resume: bool = False,
    stop: Callable[[], bool] = lambda: False,
    threads: int = 1,
    languages: Mapping[str, str] | None = None,
) -> tuple[DiffusionGemma, list[dict]]:
    """Train (or, with resume, continue from RUN_DIR/state) until the step or time budget is spent or stop()
    turns true; the state is saved every cfg.ckpt_minutes, when stopped and at the end."""
    torch.manual_seed(cfg.seed)
    ids = fim_specials(tok)
    text_cfg = shape.text_config(ids)
    model = DiffusionGemma(text_cfg)
    init_weights(model, generator=torch.Generator().manual_seed(cfg.seed))
    if init_from is not None and not resume:
        # continue from a checkpoint of the same shape (its bf16 weights; the optimiser state starts fresh)
        from safetensors.torch import load_file

        state = load_file(str(Path(init_from) / "model.safetensors"))
        model.load_state_dict({k[len(WEIGHT_PREFIX) :]: v.float() for k, v in state.items()})
        log(f"initialised from {init_from}")
    model.canvas_length = cfg.canvas_length
    if cfg.autocast_bf16:
        speed.prepare(model)
    if cfg.compile:
        speed.compile_model(model)
    model.train()
    n_params = model.num_parameters()
    log(f"params {n_params:,}")
    opt = make_optimizer(model, cfg)
    diff_mix, ar_mix = (replace(m, language_alpha=cfg.language_alpha) for m in (MixConfig(), AR_MIX))
    diff_data = ExampleSampler(tok, train_texts, seed=cfg.seed, mix=diff_mix, languages=languages)
    ar_data = ExampleSampler(tok, train_texts, seed=cfg.seed + 1, mix=ar_mix, languages=languages)
    card["language_shares"] = diff_data.language_shares()
    val_batches = validation_batches(tok, heldout_texts)
    rng = random.Random(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 7)
    # Everything random a step draws from: restoring these (with the weights and optimiser) continues the run
    # exactly; the data samplers' states are the data position.
    generators = {"noise": gen}
    rngs = {"schedule": rng, "diff_data": diff_data.rng, "ar_data": ar_data.rng}
    run_dir.mkdir(parents=True, exist_ok=True)
    progress = load_state(run_dir, model, opt, generators, rngs) if resume else Progress()
    progress.sessions += 1
    if resume:
        log(f"resumed {run_dir} at step {progress.step} ({progress.tokens:,} tokens)")
    budget_s = cfg.minutes * 60
    session_start = time.monotonic()
    seconds_before, thread_seconds_before = progress.seconds, progress.thread_seconds
    last_save = session_start
    history: list[dict] = []
    log_path = run_dir / "train_log.jsonl"

    def append_log(rec: dict) -> None:
        with log_path.open("a") as f:  # one open per record: a killed run keeps every record written so far
            f.write(json.dumps(rec) + "\n")

    noise_id = noise_token(tok, cfg.noise)
    generation = default_generation(ids, noise_id)

    def elapsed() -> float:
        return seconds_before + time.monotonic() - session_start

    def save(tag: str) -> None:
        progress.seconds = round(elapsed(), 3)
        progress.thread_seconds = round(thread_seconds_before + (time.monotonic() - session_start) * threads, 3)
        before = card.get("init_lineage", {"tokens": 0, "minutes": 0.0, "thread_minutes": 0.0})
        prior = card.get("prior_stages", [])
        info = {
            **{k: v for k, v in card.items() if k != "prior_stages"},
            "train_steps": progress.step,
            "train_tokens": progress.tokens,
            "train_minutes": round(progress.seconds / 60, 2),
            "train_thread_minutes": round(progress.thread_seconds / 60, 2),
            "checkpoint": tag,
            "cumulative": {
                **before,  # keeps what a CPU run does not add to (a GPU stage's minutes)
                "tokens": before["tokens"] + progress.tokens,
                "minutes": round(before["minutes"] + progress.seconds / 60, 2),
                "thread_minutes": round(before["thread_minutes"] + progress.thread_seconds / 60, 2),
            },
        }
        info["stages"] = [*prior, stage_of(info)]
        save_state(run_dir, model, opt, generators, rngs, progress, {"argv": card.get("argv", []), "card": card})
        write_checkpoint(run_dir / "checkpoint", model, tok, cfg, {"training": info}, generation)
        if out is not None:
            write_checkpoint(out, model, tok, cfg, {"training": info}, generation)

    stopped = False
    while True:
        step = progress.step
        progress_frac = step / cfg.steps if cfg.steps > 0 else elapsed() / budget_s
        if progress_frac >= 1.0:
            break
        if stop():
            stopped = True
            break
        lr = lr_at(progress_frac, step, cfg)
        for g in opt.param_groups:
            g["lr"] = lr
        P = rng.choice(cfg.prompt_lens)
        L = rng.choice(cfg.canvas_lens)
        is_ar, sc = step_kind(rng, progress_frac, cfg)
        t0 = time.monotonic()
        batch = (ar_data if is_ar else diff_data).batch(cfg.batch_size, P, L)
        loss, gnorm = train_step(model, opt, batch, cfg, ids, gen, sc, noise_id, is_ar)
        progress.step += 1
        progress.tokens += batch.prompt.numel() + batch.canvas.numel()
        rec = {
            "step": progress.step,
            "kind": "ar" if is_ar else "diff",
            "loss": round(loss, 4),
            "lr": lr,
            "P": P,
            "L": L,
            "gnorm": round(gnorm, 3),
            "sec": round(time.monotonic() - t0, 3),
            "elapsed_min": round(elapsed() / 60, 2),
        }
        if progress.step % 100 == 0 or progress.step == 1:
            rec.update(validate(model, val_batches, ids, cfg.seed, noise_id))
            log(json.dumps(rec))
        history.append(rec)
        append_log(rec)
        if time.monotonic() - last_save > cfg.ckpt_minutes * 60:
            save(f"step{progress.step}")
            last_save = time.monotonic()
    if stopped:
        save(f"step{progress.step}")
        minutes = round(elapsed() / 60, 2)
        rec = {"step": progress.step, "stopped": True, "tokens": progress.tokens, "elapsed_min": minutes}
        log(json.dumps(rec))
        append_log(rec)
        return model, history
    final = {
        "step": progress.step,
        "final": True,
        **validate(model, val_batches, ids, cfg.seed, noise_id),
        "elapsed_min": round(elapsed() / 60, 2),
        "tokens": progress.tokens,
    }
    log(json.dumps(final))
    append_log(final)
    history.append(final)
    save("final")
    return model, history


def make_optimizer(model: DiffusionGemma, cfg: TrainConfig, fused: bool = True) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices only. `fused`: torch's one-kernel AdamW (CPU and CUDA), 3.9 against
    14.4 ms a step for the shipped model's 130 tensors on one CPU thread, clipping included; False is the
    per-parameter loop the first trainer used (bench/train_speed.py's float32 baseline)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.95),
        fused=fused or None,
    )


def step_kind(rng: random.Random, progress: float, cfg: TrainConfig) -> tuple[bool, tuple[bool, ...]]:
    """Whether a step is autoregressive (always during the AR warm start, then an ar_mix share) and, for a
    diffusion step, which of its noise draws get self-conditioning. The CPU trainer and the GPU recipe both ask."""
    is_ar = progress < cfg.ar_fraction or rng.random() < cfg.ar_mix
    return is_ar, () if is_ar else tuple(rng.random() < cfg.self_cond_prob for _ in range(cfg.noise_draws))


def train_step(
    model: DiffusionGemma,
    opt: torch.optim.Optimizer,
    batch: Batch,
    cfg: TrainConfig,
    ids: Specials,
    gen: torch.Generator,
    self_cond: tuple[bool, ...],
    noise_id: int | None,
    is_ar: bool,
) -> tuple[float, float]:
    """One optimiser step on one batch; returns (loss, gradient norm before clipping)."""
    with torch.autocast(batch.prompt.device.type, dtype=torch.bfloat16, enabled=cfg.autocast_bf16):
        if is_ar:
            loss = ar_loss(model, batch, ids)
        else:
            loss = diffusion_loss(
                model,
                batch,
                gen,
                self_cond,
                cfg.length_pin_prob,
                ids.eos,
                noise_draws=cfg.noise_draws,
                noise_id=noise_id,
                clean_weight=cfg.clean_weight,
            )
    opt.zero_grad(set_to_none=True)
    loss.backward()
    gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()
    return loss.item(), float(gnorm)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, help="checkpoint directory to (over)write, e.g. engine/embedded")
    ap.add_argument("--run-dir", type=Path, default=Path("runs/embedded"), help="logs and intermediate checkpoints")
    ap.add_argument("--minutes", type=float, default=60.0, help="wall-time budget of the training loop")
    ap.add_argument("--steps", type=int, default=0, help="fixed step budget instead of --minutes (reproducible)")
    ap.add_argument(
        "--corpus",
        "--manifest",
        dest="corpus",
        type=Path,
        default=None,
        help="a corpus manifest .json or a corpus v2 folder (files must match); default: scan this interpreter's "
        "stdlib",
    )
    ap.add_argument("--tokenizer", type=Path, default=None, help="reuse a tokenizer.json instead of training one")
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--hidden", type=int, default=ModelShape.hidden_size)
    ap.add_argument("--layers", type=int, default=ModelShape.num_hidden_layers)
    ap.add_argument("--experts", type=int, default=ModelShape.num_experts)
    ap.add_argument("--intermediate", type=int, default=ModelShape.intermediate_size)
    ap.add_argument("--moe-intermediate", type=int, default=ModelShape.moe_intermediate_size)
    ap.add_argument("--full-every", type=int, default=ModelShape.full_every)
    ap.add_argument("--head-dim", type=int, default=ModelShape.head_dim)
    ap.add_argument("--global-head-dim", type=int, default=ModelShape.global_head_dim)
    ap.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--ar-fraction", type=float, default=TrainConfig.ar_fraction)
    ap.add_argument("--ckpt-minutes", type=float, default=TrainConfig.ckpt_minutes)
    ap.add_argument("--fp32", action="store_true", help="plain float32 instead of bf16 autocast (slower)")
    ap.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="torch.compile the elementwise-heavy parts of the step (compiles in the first steps; --no-compile: eager)",
    )
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init-from", type=Path, default=None, help="start from this checkpoint's weights")
    ap.add_argument("--warmup-steps", type=int, default=TrainConfig.warmup_steps)
    ap.add_argument("--canvas-length", type=int, default=TrainConfig.canvas_length)
    ap.add_argument(
        "--language-alpha",
        type=float,
        default=TrainConfig.language_alpha,
        help=LANGUAGE_ALPHA_HELP,
    )
    ap.add_argument(
        "--noise",
        choices=("mask", "uniform"),
        default=TrainConfig.noise,
        help="absorbing-state (<mask>) or uniform-state noise",
    )
    ap.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="continue the run saved in RUN_DIR/state exactly (its own settings; give no other option)",
    )
    return ap


class StopFlag:
    """Set by SIGTERM/SIGINT: the loop finishes its step, saves the state and a checkpoint, and returns. A second
    signal stops at once (the state saved last time stays valid)."""

    def __init__(self) -> None:
        self.set = False

    def install(self) -> None:
        def handler(signum, frame):
            if self.set:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
            self.set = True
            print(f"signal {signum}: saving the state after this step", file=sys.stderr, flush=True)

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def __call__(self) -> bool:
        return self.set


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser()
    args = ap.parse_args(argv)
    resume_dir = args.resume
    if resume_dir is not None:
        if vars(args) != vars(ap.parse_args(["--resume", str(resume_dir)])):
            ap.error("--resume RUN_DIR takes no other option: the run continues with the settings it was started with")
        try:
            argv = read_settings(resume_dir)["argv"]
            started_on = run_corpus(resume_dir)
        except (StateError, KeyError) as e:
            ap.error(str(e))
        args = ap.parse_args(argv)
        # the run's own copies: a tokenizer trained at the start and the corpus it read
        args.tokenizer, args.corpus = resume_dir / "tokenizer.json", started_on
        args.run_dir = resume_dir
    if args.out is None:
        ap.error("--out is required")
    try:
        MixConfig(language_alpha=args.language_alpha)  # its bound, checked before any work
    except ValueError as e:
        ap.error(f"--language-alpha: {e}")
    if args.compile and not (shutil.which(os.environ.get("CXX", "g++")) or shutil.which("clang++")):
        # inductor builds its CPU kernels with a C++ compiler; without one the first step would fail deep in torch
        ap.error("--compile needs a C++ compiler (g++ or clang++, or $CXX): install one or pass --no-compile")
    torch.set_num_threads(args.threads)

    t0 = time.time()
    args.run_dir.mkdir(parents=True, exist_ok=True)
    if resume_dir is None:
        args.corpus = pin_corpus(args.corpus, args.run_dir)
    try:
        corpus = read_corpus(args.corpus)
    except (CorpusSourceError, OSError, ValueError) as e:
        ap.error(f"corpus: {e}")
    train_texts, heldout_texts = corpus.train, corpus.heldout
    if args.tokenizer is not None:
        tok = Tokenizer.from_file(str(args.tokenizer))
    else:
        tok = train_bpe((train_texts[p] for p in sorted(train_texts)), vocab_size=args.vocab_size)
    if resume_dir is None:
        tok.save(str(args.run_dir / "tokenizer.json"))
    shape = ModelShape(
        vocab_size=tok.get_vocab_size(),
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_experts=args.experts,
        intermediate_size=args.intermediate,
        moe_intermediate_size=args.moe_intermediate,
        full_every=args.full_every,
        head_dim=args.head_dim,
        global_head_dim=args.global_head_dim,
    )
    cfg = TrainConfig(
        minutes=args.minutes,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        ar_fraction=args.ar_fraction,
        ckpt_minutes=args.ckpt_minutes,
        autocast_bf16=not args.fp32,
        compile=args.compile,
        seed=args.seed,
        warmup_steps=args.warmup_steps,
        canvas_length=args.canvas_length,
        noise=args.noise,
        language_alpha=args.language_alpha,
    )
    card = {
        "corpus": corpus.record,
        "shape": asdict(shape),
        "train_config": asdict(cfg),
        "threads": args.threads,
        "torch": torch.__version__,
        "command": " ".join(["python", "-m", "dcopilot.engine.training.train", *argv]),
        "argv": argv,
    }
    saved = read_settings(resume_dir).get("card", {}) if resume_dir is not None else {}
    if "init_lineage" in saved:  # what the run started from, as recorded then
        card["init_lineage"] = saved["init_lineage"]
        if "prior_stages" in saved:
            card["prior_stages"] = saved["prior_stages"]
    elif args.init_from is not None and (args.init_from / "config.json").is_file():
        init_record = json.loads((args.init_from / "config.json").read_text()).get("dcopilot", {}).get("training", {})
        card["init_lineage"] = lineage(init_record)
        card["prior_stages"] = history(init_record)
    print(f"corpus+tokenizer ready in {time.time() - t0:.1f}s; {corpus.record['summary']}", flush=True)
    stop = StopFlag()
    stop.install()
    train(
        cfg,
        shape,
        train_texts,
        heldout_texts,
        tok,
        args.run_dir,
        args.out,
        card,
        log=lambda s: print(s, flush=True),
        init_from=args.init_from,
        resume=resume_dir is not None,
        stop=stop,
        threads=args.threads,
        languages=corpus.languages,
    )
    # the corpus travels with the weights: the exact file list (v1) or the v2 manifest's fingerprint and root
    for name in (V1_COPY, V2_RECORD):
        if (args.run_dir / name).is_file():
            shutil.copy2(args.run_dir / name, args.out / name)
            os.chmod(args.out / name, 0o644)
    return 0


V1_COPY = "corpus_manifest.json"  # a run's copy of its v1 manifest (small: the exact file list)
V2_RECORD = "corpus.json"  # a run's pointer to its corpus v2 root (the manifest is too large to copy)


def pin_corpus(corpus: Path | None, run_dir: Path) -> Path:
    """Record at a run's start which corpus it reads, so that a resumed run reads the same one: a v1 manifest is
    copied (scanning the stdlib when none is given), a v2 root is named with its manifest's sha256."""
    if corpus is not None and is_v2(corpus):
        record = {"root": str(Path(corpus).expanduser().resolve()), "manifest_sha256": fingerprint(corpus)}
        (run_dir / V2_RECORD).write_text(json.dumps(record, indent=1) + "\n")
        return Path(record["root"])
    manifest = json.loads(corpus.read_text()) if corpus is not None else build_manifest()
    (run_dir / V1_COPY).write_text(json.dumps(manifest, indent=1) + "\n")
    return run_dir / V1_COPY


def run_corpus(run_dir: Path) -> Path:
    """The corpus a run started with; a v2 root whose manifest changed since is refused (the data position would
    no longer mean the same files)."""
    if not (run_dir / V2_RECORD).is_file():
        return run_dir / V1_COPY
    record = json.loads((run_dir / V2_RECORD).read_text())
    root = Path(record["root"])
    if not (root / "manifest.jsonl").is_file() or fingerprint(root) != record["manifest_sha256"]:
        raise StateError(f"{run_dir} was trained on the corpus v2 at {root}, which is missing or has changed")
    return root


if __name__ == "__main__":
    raise SystemExit(main())

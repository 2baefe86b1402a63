"""EntropyBound denoising sampler (the released DiffusionGemma sampler) plus pinning and seed canvases.

One denoising step, as in the released checkpoint's generation loop:
  z = logits / T(step)                  linear temperature t_max -> t_min over the step budget
  candidate ~ softmax(z)                one categorical draw per position
  accept the lowest-entropy positions while (cumulative entropy - own entropy) <= entropy_bound
  next canvas = candidate where accepted, a uniform random id elsewhere (re-noise)
  a row is done when argmax(z) equals the previous `stability_threshold` argmax canvases and the mean entropy
  of z is below `confidence_threshold`; done rows are frozen while the others continue. On a CPU with "cdf"
  draws they also leave the batch (active_rows): each row costs its own time there.
The committed canvas is argmax(z) of the last step. `z` (cast to the embedding dtype) is the next step's
self-conditioning input.

Absorbing-state noise (generation.noise_token_id set, the embedded model): the initial canvas and every re-noised
slot hold that token instead of a uniform random id, and it is never drawn as a candidate. A small model cannot
tell uniform noise from code it wrote (it copies noise tokens it should replace); a noise token it can recognise.

Extensions for infill and edits: `seed_canvas` (start from given ids instead of noise) and `pinned` (positions held
at the seed on every step, never re-noised, excluded from the entropy budget and from the confidence mean).

Host syncs: none inside a step. The only host read per step is the "all rows done" flag. On CPU it is read directly
(a CPU tensor read is not a device sync). On CUDA it is copied asynchronously to pinned memory and read one step
late, so the GPU always has the next step queued; a finished batch therefore runs at most one extra (frozen,
result-neutral) step. Stats are accumulated on the device and read once after the loop.

Random numbers: the draws are ordered exactly as in the reference (initial canvas, then per step one categorical
draw over [B*L, V] followed by one re-noise canvas). With draw="race" the categorical draw is the exponential race
that `torch.multinomial(p, 1)` uses internally, so a CPU run with the same seed reproduces the reference token for
token (tests/engine/test_sampler_parity.py) without multinomial's validity check (a host sync on CUDA). The race
needs V random numbers per position, which dominates a CPU step; draw="cdf" (the CPU default) samples the same
distribution by inverse CDF with one uniform per position, reproducible from the seed but a different stream.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from dcopilot.engine.runtime.cancel import Cancelled
from dcopilot.engine.runtime.config import GenerationConfig

__all__ = ["Cancelled", "GenerateResult", "SampleResult", "SampleStats", "generate", "sample"]


@dataclass
class SampleStats:
    steps: int = 0  # denoiser calls made
    accepted_per_step: list[int] = field(default_factory=list)  # free positions taking the model's sample, all rows
    seconds: float = 0.0
    cancelled: bool = False


@dataclass
class SampleResult:
    tokens: torch.Tensor  # [B, L] argmax canvases (pinned positions hold the seed)
    stats: SampleStats


@dataclass
class GenerateResult:
    tokens: torch.Tensor  # [B, n_canvases * L] generated ids; after the first stop id everything is pad
    stats: list[SampleStats]  # one per canvas


# ---------------------------------------------------------------------------------------------------------------
# Pure step functions (tensors in, tensors out; no host reads)


def temperatures(max_steps: int, t_min: float, t_max: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """Temperature for each step in loop order; step k (0-based) has N-k steps remaining.

    Computed in float32 tensor arithmetic in the same order as the reference so that logits / T matches bit for bit.
    """
    remaining = torch.arange(max_steps, 0, -1, dtype=torch.int32, device=device)
    return t_min + (t_max - t_min) * (remaining / max_steps)


# Probabilities below e^-87 (under float32's smallest normal number) are flushed to 0: exp() of such arguments
# takes a slow denormal path on x86 CPUs, about 10x slower per element, and with the sampler's low temperatures most
# of the vocabulary lands there. Such tokens can never win a draw, so the samples are unchanged.
LOGP_FLOOR = -87.0


def distribution(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(probs, entropy) of softmax(z) over the last dim.

    log p = log_softmax(z); p = exp(log p), flushed to 0 below LOGP_FLOOR; H = -<p, log p> as one batched dot
    product (no [.., V] temporary). -inf logits (a masked vocabulary) are clamped in log p so that 0 * -inf does not
    make the entropy nan.
    """
    logp = torch.log_softmax(z, dim=-1)
    logp.clamp_(min=LOGP_FLOOR)
    probs = logp.exp()
    probs.masked_fill_(logp <= LOGP_FLOOR, 0.0)
    entropy = -(probs.unsqueeze(-2) @ logp.unsqueeze(-1)).reshape(z.shape[:-1])
    return probs, entropy


def token_entropy(z: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of softmax(z) over the last dim."""
    return distribution(z)[1]


def draw_tokens(probs: torch.Tensor, generator: torch.Generator | None, method: str = "race") -> torch.Tensor:
    """One categorical draw per row of `probs` [..., V].

    "race": argmax(p / E), E ~ Exp(1) per entry: the draw torch.multinomial(p, 1) makes (same generator stream,
    so it reproduces the reference's samples), without multinomial's host-side validity check. Costs V random
    numbers per position: cheap on a GPU, the slowest part of a CPU step.
    "cdf": inverse CDF, one uniform per position and a binary search in the cumulative sum (fast on CPU).
    """
    if method == "race":
        race = torch.empty_like(probs).exponential_(1, generator=generator)
        return torch.div(probs, race).argmax(dim=-1)
    if method != "cdf":
        raise ValueError(f"unknown draw method {method!r}; use race or cdf")
    cdf = probs.cumsum(dim=-1)
    u = torch.rand((*probs.shape[:-1], 1), generator=generator, device=probs.device, dtype=cdf.dtype)
    picked = torch.searchsorted(cdf, u * cdf[..., -1:], right=True).squeeze(-1)
    return picked.clamp_(max=probs.shape[-1] - 1)


def accept_mask(entropy: torch.Tensor, bound: float, pinned: torch.Tensor | None = None) -> torch.Tensor:
    """Accept the lowest-entropy positions while (cumulative entropy - own entropy) <= bound.

    Sorted ascending, own entropy is the running maximum, so the rule bounds the joint mutual information of the
    accepted set (Entropy-Bounded sampler, arXiv 2505.24857). The lowest-entropy position is always accepted.
    Pinned positions count as zero entropy (they are given, not guessed) and are reported as not accepted.
    """
    if pinned is not None:
        entropy = entropy.masked_fill(pinned, 0.0)
    sorted_h, order = torch.sort(entropy, dim=-1)
    keep_sorted = (sorted_h.cumsum(dim=-1) - sorted_h) <= bound
    accepted = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    if pinned is not None:
        accepted = accepted & ~pinned
    return accepted


def renoise(
    accepted: torch.Tensor,
    candidates: torch.Tensor,
    noise: torch.Tensor,
    pinned: torch.Tensor | None = None,
    seed: torch.Tensor | None = None,
) -> torch.Tensor:
    """Next canvas: candidate where accepted, noise elsewhere, seed at pinned positions."""
    canvas = torch.where(accepted, candidates, noise)
    if pinned is not None:
        if seed is None:
            raise ValueError("pinned positions need a seed to hold")
        canvas = torch.where(pinned, seed, canvas)
    return canvas


def mean_entropy(entropy: torch.Tensor, free: torch.Tensor | None = None) -> torch.Tensor:
    """Mean entropy per row, over free (non-pinned) positions when a mask is given."""
    if free is None:
        return entropy.mean(dim=-1)
    return (entropy * free).sum(dim=-1) / free.sum(dim=-1).clamp(min=1)


def stop_check(
    history: torch.Tensor | None,
    argmax_canvas: torch.Tensor,
    mean_h: torch.Tensor,
    confidence_threshold: float,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Stable-and-confident rule. history: [S, B, L] previous argmax canvases (-1 = none yet) or None for S = 0.

    Returns (done [B], new history). Stable: argmax equals every canvas in the history. Confident: mean entropy of
    the temperature-scaled logits < threshold.
    """
    confident = mean_h < confidence_threshold
    if history is None:
        return confident, None
    stable = (history == argmax_canvas[None]).all(dim=-1).all(dim=0)
    history = torch.cat([history[1:], argmax_canvas[None]], dim=0)
    return stable & confident, history


# ---------------------------------------------------------------------------------------------------------------
# Loop


class _DoneFlag:
    """Reads the device-side "all rows done" flag without stalling the GPU (see module docstring)."""

    def __init__(self, device: torch.device):
        self.lagged = device.type == "cuda"
        if self.lagged:
            self.host = [torch.zeros((), dtype=torch.bool, pin_memory=True) for _ in range(2)]
            self.events = [torch.cuda.Event(), torch.cuda.Event()]
            self.pending: int | None = None
            self.i = 0

    def all_done(self, done: torch.Tensor) -> bool:
        if not self.lagged:
            return bool(done.all())
        seen = False
        if self.pending is not None:
            self.events[self.pending].synchronize()  # the previous step; the current one is already queued
            seen = bool(self.host[self.pending])
        slot = self.i % 2
        self.host[slot].copy_(done.all(), non_blocking=True)
        self.events[slot].record()
        self.pending, self.i = slot, self.i + 1
        return seen


def _embed_dtype(model) -> torch.dtype:
    dtype = getattr(model, "embed_dtype", None)
    if dtype is not None:
        return dtype
    return next(p.dtype for p in model.parameters() if p.is_floating_point())


def _device(model) -> torch.device:
    device = getattr(model, "device", None)
    if isinstance(device, torch.device):
        return device
    return next(model.parameters()).device


@dataclass(frozen=True)
class _Run:
    """What one `sample` call fixes before its first step: settings, shapes and the pinned seed."""

    generation: GenerationConfig
    shape: tuple[int, int]  # (batch, canvas_length)
    vocab: int
    device: torch.device
    draw: str  # race | cdf
    temps: torch.Tensor  # [max_steps] temperature per step
    seed_canvas: torch.Tensor | None  # [B, L]
    pinned: torch.Tensor | None  # [B, L] bool
    sc_dtype: torch.dtype  # self-conditioning logits are cast to the embedding dtype

    @property
    def early_stop(self) -> bool:
        return self.generation.stability_threshold is not None and self.generation.confidence_threshold is not None

    @property
    def free(self) -> torch.Tensor | None:
        return None if self.pinned is None else ~self.pinned


@dataclass
class _State:
    """The loop's carried tensors; one step replaces them."""

    canvas: torch.Tensor  # [B, L] the canvas the next step reads
    argmax_canvas: torch.Tensor  # [B, L] the committed answer so far
    sc: torch.Tensor | None  # [B, L, V] self-conditioning logits for the next step
    history: torch.Tensor | None  # [S, B, L] previous argmax canvases for the stability rule
    done: torch.Tensor  # [B] rows frozen by the stop rule
    accepted_log: torch.Tensor  # [max_steps] accepted free positions per step, summed over active rows
    steps: int = 0


def init_sample(
    model,
    canvas_length: int,
    batch: int,
    seed_canvas: torch.Tensor | None,
    pinned: torch.Tensor | None,
    generation: GenerationConfig,
    generator: torch.Generator | None,
    self_conditioning_logits: torch.Tensor | None,
    draw: str,
) -> tuple[_Run, _State]:
    """Check the arguments and draw the initial canvas (the first random draw of the call)."""
    device = _device(model)
    vocab = model.config.vocab_size
    shape = (batch, canvas_length)
    if canvas_length <= 0 or batch <= 0:
        raise ValueError(f"canvas_length and batch must be positive (got {canvas_length}, {batch})")
    if draw == "auto":
        draw = "race" if device.type == "cuda" else "cdf"
    if draw not in ("race", "cdf"):
        raise ValueError(f"unknown draw method {draw!r}; use auto, race or cdf")
    if pinned is not None and seed_canvas is None:
        raise ValueError("pinned positions need a seed_canvas to hold")
    if seed_canvas is not None:
        seed_canvas = seed_canvas.to(device=device, dtype=torch.long).expand(shape)
        if int(seed_canvas.min()) < 0 or int(seed_canvas.max()) >= vocab:
            raise ValueError(f"seed_canvas ids must be in [0, {vocab})")
    if pinned is not None:
        pinned = pinned.to(device=device, dtype=torch.bool).expand(shape)
        if bool(pinned.all()):
            raise ValueError("every position is pinned; nothing to sample")
    generation.validate(vocab)

    run = _Run(
        generation=generation,
        shape=shape,
        vocab=vocab,
        device=device,
        draw=draw,
        temps=temperatures(generation.max_denoising_steps, generation.t_min, generation.t_max, device),
        seed_canvas=seed_canvas,
        pinned=pinned,
        sc_dtype=_embed_dtype(model),
    )
    # The reference draws the random canvas even when a seed replaces it; keep that for identical RNG streams.
    canvas = torch.randint(0, vocab, shape, device=device, generator=generator)
    if generation.noise_token_id is not None:
        canvas = torch.full_like(canvas, generation.noise_token_id)
    if seed_canvas is not None:
        canvas = seed_canvas.clone()
    history = None
    stability = generation.stability_threshold
    if run.early_stop and stability is not None and stability > 0:
        history = torch.full((stability, *shape), -1, dtype=torch.long, device=device)
    state = _State(
        canvas=canvas,
        argmax_canvas=canvas,
        sc=self_conditioning_logits,
        history=history,
        done=torch.zeros(batch, dtype=torch.bool, device=device),
        accepted_log=torch.zeros(generation.max_denoising_steps, dtype=torch.long, device=device),
    )
    return run, state


def sample_step(run: _Run, s: _State, logits: torch.Tensor, k: int, generator: torch.Generator | None) -> _State:
    """Step k from the denoiser's logits for s.canvas: draw, accept, re-noise, and apply the stop rule."""
    gen, shape, vocab, pinned = run.generation, run.shape, run.vocab, run.pinned
    noise_id = gen.noise_token_id
    z = logits / run.temps[k]
    if noise_id is not None:
        z[..., noise_id] = float("-inf")  # the noise token is never an answer
    probs, entropy = distribution(z)
    candidates = draw_tokens(probs.view(-1, vocab), generator, run.draw).view(shape)
    new_argmax = z.argmax(dim=-1)
    if pinned is not None and run.seed_canvas is not None:  # pinned implies a seed (sample checks it)
        new_argmax = torch.where(pinned, run.seed_canvas, new_argmax)
    accepted = accept_mask(entropy, gen.entropy_bound, pinned)
    if noise_id is None:
        noise = torch.randint(0, vocab, shape, device=run.device, generator=generator)
    else:
        noise = torch.full(shape, noise_id, dtype=torch.long, device=run.device)
    new_canvas = renoise(accepted, candidates, noise, pinned, run.seed_canvas)

    # Rows that finished earlier keep canvas, argmax and self-conditioning (where, not a host-side branch).
    active = ~s.done
    s.accepted_log[k] = (accepted & active[:, None]).sum()
    canvas = torch.where(active[:, None], new_canvas, s.canvas)
    argmax_canvas = torch.where(active[:, None], new_argmax, s.argmax_canvas)
    # A CPU read of `done` is free; on CUDA it would be a host sync, so the [B, L, V] pass always runs there.
    if s.sc is not None and (run.device.type == "cuda" or bool(s.done.any())):
        z = torch.where(active[:, None, None], z, s.sc.to(z.dtype))
    done, history = s.done, s.history
    if run.early_stop and gen.confidence_threshold is not None:  # early_stop implies a threshold
        stopped, history = stop_check(history, argmax_canvas, mean_entropy(entropy, run.free), gen.confidence_threshold)
        done = done | stopped
    return _State(
        canvas=canvas,
        argmax_canvas=argmax_canvas,
        sc=z.to(run.sc_dtype),
        history=history,
        done=done,
        accepted_log=s.accepted_log,
        steps=s.steps + 1,
    )


def active_rows(run: _Run, s: _State) -> torch.Tensor | None:
    """The rows still running when some have stopped and the batch should shrink to them, else None.

    Only with CPU "cdf" draws: there a row's cost is its own (no weight-bound step to share) and reading `done` is
    free. "race" draws reproduce the reference's random stream, which is drawn for the whole batch.
    """
    if run.device.type != "cpu" or run.draw != "cdf" or not run.early_stop or not bool(s.done.any()):
        return None
    rows = (~s.done).nonzero()[:, 0]
    return rows if 0 < rows.numel() < s.done.numel() else None


def narrow(run: _Run, s: _State, rows: torch.Tensor) -> tuple[_Run, _State]:
    """The run and state of `rows` only (a smaller batch for one step)."""
    sub_run = dataclasses.replace(
        run,
        shape=(rows.numel(), run.shape[1]),
        seed_canvas=None if run.seed_canvas is None else run.seed_canvas[rows],
        pinned=None if run.pinned is None else run.pinned[rows],
    )
    sub = _State(
        canvas=s.canvas[rows],
        argmax_canvas=s.argmax_canvas[rows],
        sc=None if s.sc is None else s.sc[rows],
        history=None if s.history is None else s.history[:, rows],
        done=s.done[rows],
        accepted_log=s.accepted_log,  # shared: the step adds its accepted count at its index
        steps=s.steps,
    )
    return sub_run, sub


def widen(s: _State, sub: _State, rows: torch.Tensor) -> _State:
    """`s` with `rows` replaced by the stepped sub-batch `sub`; the other (stopped) rows keep what they had."""
    sc = s.sc
    if sub.sc is not None:
        sc = sub.sc.new_zeros(len(s.done), *sub.sc.shape[1:]) if sc is None else sc.to(sub.sc.dtype)
        sc = sc.index_copy(0, rows, sub.sc)
    return _State(
        canvas=s.canvas.index_copy(0, rows, sub.canvas),
        argmax_canvas=s.argmax_canvas.index_copy(0, rows, sub.argmax_canvas),
        sc=sc,
        history=None if s.history is None or sub.history is None else s.history.index_copy(1, rows, sub.history),
        done=s.done.index_copy(0, rows, sub.done),
        accepted_log=sub.accepted_log,
        steps=sub.steps,
    )


@torch.no_grad()
def sample(
    model,
    cache,
    canvas_length: int,
    batch: int = 1,
    seed_canvas: torch.Tensor | None = None,
    pinned: torch.Tensor | None = None,
    generation: GenerationConfig | None = None,
    generator: torch.Generator | None = None,
    cancel: Callable[[], bool] | None = None,
    self_conditioning_logits: torch.Tensor | None = None,
    denoise: Callable | None = None,
    draw: str = "auto",
) -> SampleResult:
    """Denoise `batch` canvases of `canvas_length` against `cache` (batch 1 is shared by all canvases).

    seed_canvas: [B, L] or [L] start ids (default: uniform noise). pinned: bool [B, L] or [L], needs seed_canvas.
    generation: dcopilot.engine.runtime.config.GenerationConfig (defaults to model.generation). generator: the source of
    all random draws (reproducible from its seed; must live on the model's device). cancel: polled between steps.
    denoise: a drop-in for model.denoise (e.g. dcopilot.engine.runtime.static.StaticDenoise(model): compiled, one graph
    per cache length bucket).
    draw: how candidates are drawn (see draw_tokens): "race" reproduces the reference's random stream, "cdf" is
    ~3x cheaper on CPU; "auto" = race on CUDA, cdf on CPU.
    """
    started = time.perf_counter()
    generation = generation if generation is not None else model.generation
    run, state = init_sample(
        model, canvas_length, batch, seed_canvas, pinned, generation, generator, self_conditioning_logits, draw
    )
    # A drop-in step (a compiled StaticDenoise) has graphs for the warmed-up batch sizes only: keep the whole batch.
    shrink = denoise is None
    denoise = denoise if denoise is not None else model.denoise
    flag = _DoneFlag(run.device)
    for k in range(generation.max_denoising_steps):
        if cancel is not None and cancel():
            raise Cancelled("sampling cancelled", _stats(state.steps, state.accepted_log, started, cancelled=True))
        rows = active_rows(run, state) if shrink else None
        if rows is None:
            logits = denoise(state.canvas, cache, self_conditioning_logits=state.sc)
            state = sample_step(run, state, logits, k, generator)
        else:
            sub_run, sub = narrow(run, state, rows)
            logits = denoise(sub.canvas, cache, self_conditioning_logits=sub.sc)
            state = widen(state, sample_step(sub_run, sub, logits, k, generator), rows)
        if run.early_stop and flag.all_done(state.done):
            break
    return SampleResult(tokens=state.argmax_canvas, stats=_stats(state.steps, state.accepted_log, started))


def _stats(steps: int, accepted_log: torch.Tensor, started: float, cancelled: bool = False) -> SampleStats:
    accepted = accepted_log[:steps].tolist()  # the one device read of the call
    return SampleStats(
        steps=steps, accepted_per_step=accepted, seconds=time.perf_counter() - started, cancelled=cancelled
    )


# ---------------------------------------------------------------------------------------------------------------
# Multi-canvas generation


def finalize_canvas(
    canvas: torch.Tensor, finished: torch.Tensor, stop_ids: torch.Tensor, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply stop ids to a committed canvas: rows finished before become all pad; in rows that hit a stop id now,
    everything after the first stop id becomes pad (the stop id stays). Returns (canvas, finished)."""
    is_stop = torch.isin(canvas, stop_ids)
    seen = is_stop.cumsum(dim=-1)
    after_first = (seen > 0) & ~((seen == 1) & is_stop)
    canvas = canvas.masked_fill(after_first | finished[:, None], pad_id)
    return canvas, finished | is_stop.any(dim=-1)


@torch.no_grad()
def generate(
    model,
    prompt_ids: torch.Tensor,
    max_new_tokens: int | None = None,
    generation=None,
    generator: torch.Generator | None = None,
    cancel: Callable[[], bool] | None = None,
    seed_canvas: torch.Tensor | None = None,
    cache=None,
    draw: str = "auto",
    denoise: Callable | None = None,
) -> GenerateResult:
    """Block-autoregressive generation: denoise a canvas, commit its argmax with model.encode, repeat.

    prompt_ids: [B, P] (encoded into a fresh cache unless `cache` already holds them). max_new_tokens is rounded up
    to whole canvases. Stops early when every row has produced a stop id. seed_canvas seeds the first canvas only.
    denoise: as in `sample` (e.g. dcopilot.engine.runtime.static.StaticDenoise(model), which follows the cache across
    commits).
    """
    generation = generation if generation is not None else model.generation
    canvas_length = model.canvas_length
    if max_new_tokens is None:
        max_new_tokens = generation.max_new_tokens
    if max_new_tokens <= 0:
        raise ValueError("max_new_tokens must be positive")
    device = _device(model)
    prompt_ids = prompt_ids.to(device)
    batch = prompt_ids.shape[0]
    if cache is None:
        cache = model.encode(prompt_ids)
    stop_ids = torch.tensor(generation.eos_token_ids, dtype=torch.long, device=device)
    pad_id = generation.pad_token_id
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    pieces: list[torch.Tensor] = []
    stats: list[SampleStats] = []
    for i in range(math.ceil(max_new_tokens / canvas_length)):
        if i > 0:
            model.encode(pieces[-1], cache)  # commit the previous canvas (causal re-encode)
        result = sample(
            model,
            cache,
            canvas_length,
            batch,
            seed_canvas=seed_canvas if i == 0 else None,
            generation=generation,
            generator=generator,
            cancel=cancel,
            draw=draw,
            denoise=denoise,
        )
        canvas, finished = finalize_canvas(result.tokens, finished, stop_ids, pad_id)
        pieces.append(canvas)
        stats.append(result.stats)
        if bool(finished.all()):
            break
    return GenerateResult(tokens=torch.cat(pieces, dim=-1), stats=stats)

"""A denoise step with static shapes, for torch.compile and CUDA graphs: the KV cache as padded buffers.

model.denoise concatenates however many cached rows there are and builds RoPE positions from the Python int
`cache.length`, so a compiled model.denoise specialises on the cache length and recompiles for every prompt. Here
each layer's visible context is copied into buffers padded to a bucket (full layers: the cached length rounded up
to a power of two, at least `floor`; sliding layers: min(bucket, window - 1) rows), the padding is masked out of
attention (the canvas still sees itself bidirectionally) and the canvas start position is a 0-dim device tensor.
Every cache length in one bucket then runs one graph per (batch, canvas length, first step or not).

Commits and new prompts update the buffers in place: a cache that fits a bucket already allocated for its batch is
copied into that bucket's tensors, so the addresses a CUDA graph recorded stay valid (they are marked static:
replays neither copy the cache nor re-record). A new bucket allocates a new view, kept for later reuse; each view
holds a padded copy of the visible cache (~250 MB per bucket >= 1024 on the 26B geometry in bf16).

Why two representations rather than one static cache written in place (as gpt-fast keeps):
dcopilot.engine.runtime.cache.KVCache is immutable by design. Its tensors are only ever concatenated or sliced, so
`clone()` is free, the prefix cache can hold many prompts that share storage and hand out copies that callers
extend, and training backpropagates through it. A CUDA graph needs the opposite: fixed addresses written in place.
Writing KVCache in place would make every stored prefix-cache entry a full private copy (several GB on the 26B
geometry) and break training; so the static view is a per-bucket copy of the visible rows, refilled only when the
cache object changes.

`warm_up` compiles (and on CUDA records) every graph a server will use before it reports ready, by running the real
sampler over each (bucket, batch, canvas length): the first completion then pays no compilation. A shape first met
while serving is logged as a warning (it compiles then, while the user waits).
"""

from __future__ import annotations

import logging
import time
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

log = logging.getLogger("dcopilot.engine")


@dataclass(frozen=True)
class Buckets:
    floor: int = 256  # the smallest bucket: short prompts share one graph

    def __call__(self, n: int) -> int:
        return max(self.floor, 1 << max(n - 1, 0).bit_length())

    def upto(self, n: int) -> list[int]:
        """Every bucket a cache of 0..n rows falls in, smallest first."""
        out = [self(0)]
        while out[-1] < self(n):
            out.append(out[-1] * 2)
        return out


class StaticContext:
    """Padded copies of one cache's visible K/V (batch `batch`, full layers up to `bucket` rows), key masks per
    layer kind and the canvas start position; `load(cache)` refills them in place."""

    def __init__(self, model, batch: int, bucket: int, dtype: torch.dtype, device: torch.device):
        config = model.config
        self.sliding = [config.layer(i).sliding for i in range(config.num_hidden_layers)]
        rows = {False: bucket, True: min(bucket, config.sliding_window - 1)}
        self.keys, self.values = [], []
        for layer in model.layers:
            attn = layer.self_attn
            shape = (batch, attn.num_kv, rows[attn.sliding], attn.head_dim)
            self.keys.append(torch.zeros(shape, dtype=dtype, device=device))
            self.values.append(torch.zeros(shape, dtype=dtype, device=device))
        # indexed by `sliding` (False, True); True = a cached row, False = padding
        self.masks = tuple(torch.zeros(rows[s], dtype=torch.bool, device=device) for s in (False, True))
        self._rows = tuple(torch.arange(rows[s], device=device) for s in (False, True))
        self.start = torch.zeros((), dtype=torch.long, device=device)

    def tensors(self) -> list[torch.Tensor]:
        return [*self.keys, *self.values, *self.masks, self.start]

    def load(self, cache) -> None:
        filled: dict[bool, int] = {}
        for i, sliding in enumerate(self.sliding):
            k, v = cache.context(i)
            n = 0 if k is None else k.shape[2]
            if filled.setdefault(sliding, n) != n:
                raise ValueError(f"layer {i} holds {n} cached rows, other layers of its kind {filled[sliding]}")
            if n > self.keys[i].shape[2]:
                raise ValueError(f"layer {i} holds {n} cached rows; its static buffer has {self.keys[i].shape[2]}")
            if n:
                self.keys[i][:, :, :n].copy_(k)
                self.values[i][:, :, :n].copy_(v)
        for s in (False, True):
            torch.lt(self._rows[s], filled.get(s, 0), out=self.masks[s])
        self.start.fill_(cache.length)  # a scalar kernel argument, no host sync


def static_step(model, canvas, self_conditioning_logits, keys, values, masks, start) -> torch.Tensor:
    """model.denoise over a StaticContext's tensors: nothing here depends on the cache length."""
    L = canvas.shape[1]
    pos = start + torch.arange(L, device=canvas.device)
    full = [torch.cat([m, m.new_ones(L)]).view(1, 1, 1, -1) for m in masks]  # the canvas sees all of itself
    sliding = [layer.self_attn.sliding for layer in model.layers]
    return model.denoise_at(canvas, pos, lambda i: (keys[i], values[i], full[sliding[i]]), self_conditioning_logits)


class StaticDenoise:
    """A drop-in for model.denoise (see dcopilot.engine.runtime.sampler.sample's `denoise=`) that runs `static_step`
    over the cache's padded view, torch.compile'd with dynamic=False unless compile=False (eager; for tests).

    mode defaults to "reduce-overhead" (CUDA graphs) on CUDA. `backend` replaces inductor (tests count graphs).
    A compile or run error of the compiled step warns once and switches to eager model.denoise for good: a daemon
    must keep answering. Out-of-memory errors propagate (the request fails, the next one may not).
    """

    def __init__(
        self, model, compile: bool = True, mode: str | None = None, backend=None, buckets: Buckets = Buckets()
    ):
        # its experts use the grouped matmul by default (dcopilot.engine.runtime.model.GROUPED_MM): no host sync
        self.model = model
        self.buckets = buckets
        weight = model.embed_tokens.weight
        self.dtype, self.device = weight.dtype, weight.device
        self.views: dict[tuple[int, int], StaticContext] = {}
        self._loaded: tuple[StaticContext, list, int] | None = None  # (view, weakrefs to the cache's tensors, length)
        self.compiled = compile
        self.failed = False
        self.why_failed = ""
        # (cache batch, bucket, batch, canvas length, first step) of every graph run so far; after warm_up a new one
        # is counted in `cold` and logged: it compiles while a request waits.
        self.shapes: set[tuple[int, int, int, int, bool]] = set()
        self.warmed = False
        self.cold = 0
        self.step = lambda *args: static_step(model, *args)
        self.graphs = False  # CUDA graphs record the step: see _run
        if not compile:
            return
        if backend is None and mode is None:
            mode = "reduce-overhead" if self.device.type == "cuda" else "default"
        self.graphs = backend is None and mode == "reduce-overhead"
        # one graph per (bucket, batch, canvas length, first step or not): more than dynamo's default 8
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
        try:
            options = {"backend": backend} if backend is not None else {"mode": mode}
            self.step = torch.compile(self.step, dynamic=False, **options)
        except Exception as exc:  # e.g. a Python version dynamo does not support
            self._give_up(exc)

    def view(self, cache) -> StaticContext:
        """The static view holding `cache`, refilled only when the cache changed (its tensors are never written in
        place, so the same tensor objects and length mean the same contents)."""
        tensors = cache.keys + cache.values
        if self._loaded is not None:
            loaded, refs, length = self._loaded
            if (
                length == cache.length
                and len(refs) == len(tensors)
                and all(
                    (r is None and t is None) or (r is not None and r() is t)
                    for r, t in zip(refs, tensors, strict=True)
                )
            ):
                return loaded
        key = (cache.batch, self.buckets(cache.length))
        view = self.views.get(key)
        if view is None:
            view = self.views[key] = StaticContext(self.model, *key, self.dtype, self.device)
            if self.compiled:
                for t in view.tensors():
                    torch._dynamo.mark_static_address(t)  # unguarded: in-place updates keep the graph valid
        self._loaded = None
        view.load(cache)
        self._loaded = (view, [None if t is None else weakref.ref(t) for t in tensors], cache.length)
        return view

    def __call__(self, canvas: torch.Tensor, cache, self_conditioning_logits: torch.Tensor | None = None):
        if self.failed:
            return self.model.denoise(canvas, cache, self_conditioning_logits)
        if not self.compiled:
            return self._run(canvas, cache, self_conditioning_logits)
        try:
            return self._run(canvas, cache, self_conditioning_logits)
        except torch.OutOfMemoryError:
            raise
        except Exception as exc:
            self._give_up(exc)
            return self.model.denoise(canvas, cache, self_conditioning_logits)

    def _give_up(self, exc: Exception) -> None:
        self.failed = True
        self.why_failed = f"{type(exc).__name__}: {exc}"
        warnings.warn(
            f"compiled denoise step failed, running eager from now on: {type(exc).__name__}: {exc}",
            RuntimeWarning,
            stacklevel=3,
        )

    def _run(self, canvas, cache, sc):
        view = self.view(cache)
        shape = (cache.batch, view.masks[0].shape[0], *canvas.shape, sc is None)
        if shape not in self.shapes:
            self.shapes.add(shape)
            if self.warmed and self.compiled:
                self.cold += 1
                log.warning(
                    "denoise step: shape %s (cache batch, bucket, batch, canvas, first step) was not warmed "
                    "up; it compiles now",
                    shape,
                )
        if not self.graphs:
            return self.step(canvas, sc, view.keys, view.values, view.masks, view.start)
        # Each call is one independent sampler step. Unmarked, a step fed the last step's logits (self-conditioning)
        # counts as the next node of a CUDA-graph tree and records a new graph at every depth; the clone keeps the
        # logits the sampler holds from being overwritten by the next replay (a copy far cheaper than the step).
        torch.compiler.cudagraph_mark_step_begin()
        return self.step(canvas, sc, view.keys, view.values, view.masks, view.start).clone()


@dataclass(frozen=True)
class StepShape:
    """One (batch, canvas length) a request runs the step with (dcopilot.engine.tasks.infill.step_shapes): in the
    sampler's loop (first step and self-conditioned steps), or only in a scoring pass (first-step form: no
    self-conditioning)."""

    batch: int
    canvas: int
    sampled: bool = True


@dataclass
class WarmUp:
    graphs: int = 0  # distinct (bucket, batch, canvas, first step or not) shapes run
    seconds: float = 0.0
    failed: str = ""  # why the compiled step fell back to eager ("" when it did not)
    stopped: str = ""  # why warming stopped early (out of memory); the rest compile on first use
    shapes: list[tuple[int, int, int, bool]] = field(default_factory=list)  # (bucket, batch, canvas, first step)


def warm_up(
    model,
    denoise: StaticDenoise,
    shapes: Sequence[StepShape],
    max_prompt: int,
    runs: int = 3,
    progress: Callable[[int, int], None] | None = None,
) -> WarmUp:
    """Run the real sampler (2 steps: the first-step graph and the self-conditioned one; one plain step for a
    scoring-only shape) `runs` times for every StepShape against a cache in every bucket up to `max_prompt` tokens,
    so that torch.compile has compiled and
    CUDA graphs recorded (a graph records on its second run and replays from the third) whatever a request of those
    shapes needs. progress(done, total) after each (bucket, shape). A compile failure leaves `denoise` eager (its
    own warning) and stops; out of memory stops warming but keeps what was compiled."""
    import dataclasses

    from dcopilot.engine.runtime.config import GenerationConfig
    from dcopilot.engine.runtime.sampler import sample

    started = time.perf_counter()
    result = WarmUp()
    device = denoise.device
    generation = dataclasses.replace(
        GenerationConfig(), max_denoising_steps=2, confidence_threshold=None, noise_token_id=None
    )
    vocab = model.config.vocab_size
    buckets = denoise.buckets.upto(max_prompt)
    todo = [(b, s) for b in buckets for s in dict.fromkeys(shapes)]
    generator = torch.Generator(device=device).manual_seed(0)
    cpu = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for done, (bucket, shape) in enumerate(todo, 1):
            try:
                prompt = torch.randint(0, vocab, (1, bucket), generator=cpu).to(device)
                cache = model.encode(prompt)
                # as dcopilot.engine.tasks.infill passes them: a contiguous seed canvas and a pinned mask
                seed = torch.randint(0, vocab, (shape.batch, shape.canvas), generator=cpu).to(device)
                pinned = torch.zeros(shape.batch, shape.canvas, dtype=torch.bool, device=device)
                for _ in range(runs):
                    if shape.sampled:
                        sample(
                            model,
                            cache,
                            shape.canvas,
                            shape.batch,
                            seed_canvas=seed,
                            pinned=pinned,
                            generation=generation,
                            generator=generator,
                            denoise=denoise,
                        )
                    else:  # as dcopilot.engine.tasks.infill.score_rows calls it
                        denoise(seed.clone(), cache)
            except torch.OutOfMemoryError as exc:
                result.stopped = f"out of memory at bucket {bucket}, batch {shape.batch}, canvas {shape.canvas}: {exc}"
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                break
            if denoise.failed:
                result.failed = denoise.why_failed
                break
            for first in (True, False) if shape.sampled else (True,):
                result.shapes.append((bucket, shape.batch, shape.canvas, first))
            if progress is not None:
                progress(done, len(todo))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    result.graphs = len(result.shapes)
    result.seconds = time.perf_counter() - started
    denoise.warmed = True
    return result

"""Training-only speed-ups for the engine's model on CPU, without changing what it computes in float32.

Measured on the project's 2-core AMD EPYC (avx512_bf16), torch 2.13 (bench/train_speed.py, bench/RESULTS.md):
- bf16 matmuls run ~4.7x faster than fp32 there, so training runs under bf16 autocast (weights, optimiser and
  loss stay float32: mixed precision, the usual recipe on GPUs too);
- but the CPU's bf16 flash attention is slower than its fp32 one, so attention runs in float32, and a square causal
  mask (a prompt encoded from an empty cache, shorter than the sliding window) becomes `is_causal=True`, which lets
  the kernel skip the masked half instead of reading a mask;
- RMSNorm uses the fused `F.rms_norm` (one kernel instead of seven elementwise passes; same formula);
- the experts' products run in bf16 too: on CUDA through the grouped matmul on bf16 copies (autocast leaves that op
  in float32, and it takes bf16 only there); on a CPU through cpu_experts.CpuBf16Experts, which owns its backward
  (a per-expert product on padded runs, the elementwise work once), since every autograd route to bf16 experts
  was slower there.
`prepare(model)` swaps the classes of the attention, norm and expert modules in place: same parameters, same state dict,
so checkpoints written from a prepared model load in the engine unchanged.

`compile_model(model)` (the CPU trainer's `--compile`) compiles with inductor, dynamic shapes, the parts that are
many small elementwise kernels in eager mode: each block's query/key/value prelude (projections, norms, RoPE), its
feed-forward around the experts (dense MLP, router, norms, residual), and the LM head fused with its soft-cap and the
canvas cross-entropy (`denoise_ce`), so the [tokens, vocab] logits are read once forward and once backward instead
of by a chain of passes. The experts stay eager (dynamo traces neither the grouped matmul nor the CPU block's
per-expert runs); the CPU block's elementwise kernels are compiled on their own. Like `prepare`, it adds
no module: the state dict keeps its names (no `_orig_mod.` prefix). Measured at one thread (bench/train_speed.py):
1.22-1.28x the tokens per CPU-second of `prepare` alone (1.72-1.82x float32's), after ~80 s of compiling from a cold
inductor cache (~30 s warm). Tried on the same machine and slower for a whole step:
compiling denoise/encode whole (graph breaks at every layer's experts hit dynamo's recompile limit), the per-expert
loop in bf16 and experts as one padded bf16 bmm (routing at init pads 2.5x); attention as compiled bf16 products
gained only ~4 %. With cpu_experts' block the compiled step makes about 2x float32's tokens per CPU-second
(bench/RESULTS.md).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from dcopilot.engine.runtime.fast import grouped_experts
from dcopilot.engine.runtime.model import GROUPED_MM, Attention, DiffusionGemma, Experts, Layer, RMSNorm
from dcopilot.engine.training.cpu_experts import CpuBf16Experts, compiled_kernels
from torch import nn


def is_square_causal(mask: torch.Tensor | None, t: int) -> bool:
    """True when mask is exactly the lower-triangular [t, t] mask (keys = the queries' own positions)."""
    if mask is None or mask.dtype != torch.bool or mask.shape[-2:] != (t, t) or mask.dim() != 2:
        return False
    return bool(torch.equal(mask, torch.ones(t, t, dtype=torch.bool, device=mask.device).tril()))


class TrainingAttention(Attention):
    """Attention with `is_causal` for a square causal mask; on a CPU its score/softmax/value product runs in
    float32 even under bf16 autocast (on CUDA, bf16 attention is the fast one and autocast keeps it)."""

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        B, _, T, _ = q.shape
        if k.shape[0] != B:
            k, v = k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1)
        causal = k.shape[2] == T and is_square_causal(mask, T)
        gqa = self.num_heads != self.num_kv
        if q.device.type == "cpu":
            with torch.autocast("cpu", enabled=False):
                q, k, v = q.float(), k.float(), v.float()
                out = F.scaled_dot_product_attention(
                    q, k, v, attn_mask=None if causal else mask, is_causal=causal, scale=1.0, enable_gqa=gqa
                )
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=None if causal else mask, is_causal=causal, scale=1.0, enable_gqa=gqa
            )
        return self.o_proj(out.transpose(1, 2).reshape(B, T, -1))


class FusedRMSNorm(RMSNorm):
    """RMSNorm through torch's fused kernel, in float32 like the original."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = None if self.weight is None else self.weight.float()
        with torch.autocast(x.device.type, enabled=False):
            h = F.rms_norm(x.float(), (x.shape[-1],), w, self.eps)
        return h.type_as(x)


class Bf16GroupedExperts(Experts):
    """The grouped expert matmul on bf16 copies of its inputs and weights (float32 master weights, as autocast
    does for every other matmul; autocast does not cover this op). Used on CUDA, where it takes bf16 only; on a CPU
    a whole training step was slower with it than in float32 (cpu_experts says why).
    Gradients flow back through the casts. Where the grouped
    matmul is missing or refuses the shapes (a GPU it was never run on), the per-expert loop takes over."""

    grouped_failed: str | None = None  # the first refusal's message, shared by every layer

    def forward(self, x: torch.Tensor, weights: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        if GROUPED_MM and Bf16GroupedExperts.grouped_failed is None:
            bf = torch.bfloat16
            try:
                y = grouped_experts(x.to(bf), weights, index, self.gate_up_proj.to(bf), self.down_proj.to(bf))
                return y.to(x.dtype)
            except RuntimeError as e:
                Bf16GroupedExperts.grouped_failed = str(e).splitlines()[0]
                warnings.warn(f"grouped expert matmul failed, using the per-expert loop: {e}", stacklevel=2)
        return self.forward_loop(x, weights, index)


def prepare(model: DiffusionGemma, bf16_experts: bool = True) -> DiffusionGemma:
    """Swap modules for their training versions, in place; returns the model: attention, norms and (bf16_experts)
    the experts, as the grouped matmul on bf16 copies on CUDA and as cpu_experts.CpuBf16Experts on a CPU."""
    cuda = next(model.parameters()).device.type == "cuda"
    swaps: dict[type[nn.Module], type[nn.Module]] = {Attention: TrainingAttention, RMSNorm: FusedRMSNorm}
    if bf16_experts:
        swaps[Experts] = Bf16GroupedExperts if cuda else CpuBf16Experts
    for module in model.modules():
        new = swaps.get(type(module))
        if new is not None:
            module.__class__ = new
    return model


def restore(model: DiffusionGemma) -> DiffusionGemma:
    """Undo prepare and compile_model (the engine's own classes and methods again), e.g. before handing the model to
    the sampler."""
    uncompile(model)
    back: dict[type[nn.Module], type[nn.Module]] = {
        TrainingAttention: Attention,
        FusedRMSNorm: RMSNorm,
        Bf16GroupedExperts: Experts,
        CpuBf16Experts: Experts,
    }
    for module in model.modules():
        new = back.get(type(module))
        if new is not None:
            module.__class__ = new
    return model


# ---------------------------------------------------------------------------------------------------------------
# compiled parts (CPU training)

# Instance attributes compile_model sets; each shadows the class's method of the same name.
_COMPILED = ("kv", "query", "feed_forward", "forward", "logits", "head_ce", "kernels")


def _ce(logits: torch.Tensor, target: torch.Tensor, reduction: str) -> torch.Tensor:
    """Cross-entropy of logits [..., V] against target [...] (-100: ignored), in float32."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1), reduction=reduction)


def _head_ce(model: DiffusionGemma, hidden: torch.Tensor, target: torch.Tensor, reduction: str) -> torch.Tensor:
    """Cross-entropy of the soft-capped logits of hidden [..., H] against target [...] (-100: ignored)."""
    return _ce(DiffusionGemma.logits(model, hidden), target, reduction)


def _logits(model: DiffusionGemma, hidden: torch.Tensor) -> torch.Tensor:
    return DiffusionGemma.logits(model, hidden)


def compile_model(model: DiffusionGemma) -> DiffusionGemma:
    """Route the model's elementwise-heavy parts through torch.compile'd functions (dynamic shapes: one graph for
    every prompt/canvas length), in place; returns the model. One compiled function per part, shared by every layer
    (the layers' weights are graph inputs), so compile time does not grow with depth."""
    # Each part has a few graphs (grad on/off, sliding/full heads, size ranges inductor specialises on): more than
    # dynamo's default limit of 8 per function, past which it would silently fall back to eager.
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    kv, query = torch.compile(Attention.kv, dynamic=True), torch.compile(Attention.query, dynamic=True)
    ff = torch.compile(Layer.feed_forward, dynamic=True)
    logits, head_ce = torch.compile(_logits, dynamic=True), torch.compile(_head_ce, dynamic=True)
    for layer in model.blocks:
        attn = layer.self_attn
        _shadow(attn, "kv", functools.partial(kv, attn))
        _shadow(attn, "query", functools.partial(query, attn))
        _shadow(layer, "feed_forward", functools.partial(ff, layer))
        # The experts run eagerly between the feed-forward's two graphs: dynamo rejects torch._grouped_mm, and the
        # per-expert loops read counts on the host.
        _shadow(layer.experts, "forward", torch.compiler.disable(layer.experts.forward))
        if isinstance(layer.experts, CpuBf16Experts):
            _shadow(layer.experts, "kernels", compiled_kernels())
    _shadow(model, "logits", functools.partial(logits, model))
    _shadow(model, "head_ce", functools.partial(head_ce, model))
    return model


def _shadow(module: nn.Module, name: str, value: object) -> None:
    """An instance attribute that shadows the class's method or attribute (not a submodule: the state dict is
    unchanged)."""
    vars(module)[name] = value


def uncompile(model: DiffusionGemma) -> DiffusionGemma:
    """Undo compile_model (the class methods again)."""
    for module in model.modules():
        for name in _COMPILED:
            module.__dict__.pop(name, None)
    return model


def _identity(hidden: torch.Tensor) -> torch.Tensor:
    return hidden


def logits_ce(
    model: DiffusionGemma, forward: Callable[[], torch.Tensor], target: torch.Tensor, reduction: str = "none"
) -> torch.Tensor:
    """F.cross_entropy of forward()'s logits (flattened) against target (-100: ignored), forward being a model
    call that ends in `model.logits(h)` (denoise, encode_logits). On a compiled model the LM head, soft-cap and loss
    run as one compiled graph: `model.logits` is the identity during forward, which so returns the hidden states."""
    head_ce = model.__dict__.get("head_ce")
    if head_ce is None:
        return _ce(forward(), target, reduction)
    compiled_logits = model.__dict__["logits"]
    _shadow(model, "logits", _identity)
    try:
        hidden = forward()
    finally:
        _shadow(model, "logits", compiled_logits)
    return head_ce(hidden, target, reduction)

"""Training-only speed-ups for the engine's model on CPU, without changing what it computes in float32.

Measured on the project's 2-core AMD EPYC (avx512_bf16), torch 2.13 (bench/train_speed.py, bench/RESULTS.md):
- bf16 matmuls run ~4.7x faster than fp32 there, so training runs under bf16 autocast (weights, optimiser and
  loss stay float32: mixed precision, the usual recipe on GPUs too);
- but the CPU's bf16 flash attention is slower than its fp32 one, so attention runs in float32, and a square causal
  mask (a prompt encoded from an empty cache, shorter than the sliding window) becomes `is_causal=True`, which lets
  the kernel skip the masked half instead of reading a mask;
- RMSNorm uses the fused `F.rms_norm` (one kernel instead of seven elementwise passes; same formula);
- on CUDA the grouped expert matmul, which autocast leaves in float32 and which takes bf16 only there, gets bf16
  copies of its inputs and weights.
`prepare(model)` swaps the classes of the attention, norm and expert modules in place: same parameters, same state dict,
so checkpoints written from a prepared model load in the engine unchanged.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from dcopilot.engine.runtime.fast import grouped_experts
from dcopilot.engine.runtime.model import GROUPED_MM, Attention, DiffusionGemma, Experts, RMSNorm
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
    does for every other matmul; autocast does not cover this op). Used on CUDA, where it takes bf16 only; on this
    CPU a whole training step was slower with it (bf16 scatter-add), although the matmul alone is 2x faster.
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


def prepare(model: DiffusionGemma, bf16_experts: bool | None = None) -> DiffusionGemma:
    """Swap modules for their training versions, in place; returns the model: attention, norms and the experts
    (bf16_experts None: on CUDA only)."""
    if bf16_experts is None:
        bf16_experts = next(model.parameters()).device.type == "cuda"
    swaps: dict[type[nn.Module], type[nn.Module]] = {Attention: TrainingAttention, RMSNorm: FusedRMSNorm}
    if bf16_experts:
        swaps[Experts] = Bf16GroupedExperts
    for module in model.modules():
        new = swaps.get(type(module))
        if new is not None:
            module.__class__ = new
    return model


def restore(model: DiffusionGemma) -> DiffusionGemma:
    """Undo prepare (the engine's own classes again), e.g. before handing the model to the sampler."""
    back: dict[type[nn.Module], type[nn.Module]] = {
        TrainingAttention: Attention,
        FusedRMSNorm: RMSNorm,
        Bf16GroupedExperts: Experts,
    }
    for module in model.modules():
        new = back.get(type(module))
        if new is not None:
            module.__class__ = new
    return model

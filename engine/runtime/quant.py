"""Weight-only quantization after load: "nf4" (bitsandbytes 4-bit NormalFloat) or "int8" (per-row absmax).

What is quantized: every nn.Linear in the layers (attention q/k/v/o, dense MLP) and in the self-conditioning MLP,
via bitsandbytes Linear4bit / Linear8bitLt, and the fused 3-D expert tensors (gate_up_proj [E, 2I, H],
down_proj [E, H, I]), which hold ~97% of the 26B model's layer weights.
Kept in the model dtype: the tied embedding / LM head (quantizing it would change every logit), router projections
(tiny; routing decisions are sensitive), norms, scalars.

Experts: each fused tensor is stored quantized as a whole (nf4: one bitsandbytes blob with absmax per 64 weights;
int8: int8 with one scale per output row) and dequantized to the compute dtype per layer on use, one kernel per
tensor; the experts then run as one grouped matmul (dcopilot.engine.runtime.fast.grouped_experts, no host sync). Peak
memory is the quantized model plus one layer's experts in the compute dtype (1.5 GB in bf16 for the 26B model). This
saves memory, not time: dequantizing reads the small weights and writes full-size ones that the matmuls read again
(see docs/quant.md).
"""

from __future__ import annotations

import torch
from dcopilot.engine.runtime.fast import GroupedExperts, grouped_experts
from dcopilot.engine.runtime.model import DiffusionGemma, Experts
from torch import nn

MODES = ("nf4", "int8")
NF4_BLOCK = 64


class QuantError(RuntimeError):
    """Quantization cannot run (unknown mode, bitsandbytes missing or unusable on this device)."""


def _bnb():
    try:
        import bitsandbytes as bnb
    except ImportError as e:
        raise QuantError(f"quantize needs bitsandbytes (pip install 'dcopilot[quant]'): {e}") from None
    return bnb


# -- expert tensors -------------------------------------------------------------------------------------------
class QuantTensor(nn.Module):
    """One weight tensor stored quantized; `dequantize()` returns it in `dtype`."""

    packed: torch.Tensor  # buffers: nf4 has packed + absmax, int8 packed + scale
    absmax: torch.Tensor
    scale: torch.Tensor

    def __init__(self, weight: torch.Tensor, mode: str, dtype: torch.dtype, device: torch.device):
        super().__init__()
        self.mode, self.dtype, self.shape = mode, dtype, tuple(weight.shape)
        w = weight.detach().to(device=device)
        if mode == "nf4":
            q, state = _bnb().functional.quantize_4bit(
                w.reshape(-1, w.shape[-1]), blocksize=NF4_BLOCK, quant_type="nf4"
            )
            self.register_buffer("packed", q)
            self.register_buffer("absmax", state.absmax)
            self.state = state
        else:
            w = w.float()
            scale = w.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12) / 127.0
            self.register_buffer("packed", torch.round(w / scale).clamp(-127, 127).to(torch.int8))
            self.register_buffer("scale", scale.to(torch.float32))

    def dequantize(self) -> torch.Tensor:
        if self.mode == "nf4":
            if self.state.absmax is not self.absmax:  # the module moved: the state follows its buffers
                self.state.to(self.packed.device)
                self.state.absmax = self.absmax
            w = _bnb().functional.dequantize_4bit(self.packed, self.state, quant_type="nf4")
            return w.reshape(self.shape).to(self.dtype)
        return (self.packed.to(torch.float32) * self.scale).to(self.dtype)

    def nbytes(self) -> int:
        return sum(b.numel() * b.element_size() for b in self.buffers())


class QuantExperts(nn.Module):
    def __init__(self, experts: Experts | GroupedExperts, mode: str, dtype: torch.dtype, device: torch.device):
        super().__init__()
        self.gate_up = QuantTensor(experts.gate_up_proj, mode, dtype, device)
        self.down = QuantTensor(experts.down_proj, mode, dtype, device)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return grouped_experts(x, weights, index, self.gate_up.dequantize(), self.down.dequantize())


# -- linear layers --------------------------------------------------------------------------------------------
def quantize_linear(linear: nn.Linear, mode: str, dtype: torch.dtype, device: torch.device) -> nn.Module:
    bnb = _bnb()
    if linear.bias is not None:
        raise QuantError("DiffusionGemma linears have no bias; refusing an unexpected layer")
    # bitsandbytes quantizes float32 on the CPU; on CUDA it takes half precision where the weight already is
    w = linear.weight.detach()
    w = w.float() if device.type == "cpu" else w.to(device, torch.float16 if mode == "int8" else w.dtype)
    if mode == "nf4":
        new = bnb.nn.Linear4bit(
            linear.in_features,
            linear.out_features,
            bias=False,
            compute_dtype=dtype,
            compress_statistics=False,
            quant_type="nf4",
            device="meta",
        )
        new.weight = bnb.nn.Params4bit(
            w, requires_grad=False, blocksize=NF4_BLOCK, compress_statistics=False, quant_type="nf4"
        )
    else:
        new = bnb.nn.Linear8bitLt(
            linear.in_features, linear.out_features, bias=False, has_fp16_weights=False, threshold=6.0, device="meta"
        )
        new.weight = bnb.nn.Int8Params(w, requires_grad=False, has_fp16_weights=False)
    return new.to(device)  # bitsandbytes quantizes on the move to the device


class _Int8Linear(nn.Module):
    """Casts to the int8 layer's fp16 compute path and back, so bf16/fp32 activations work unchanged."""

    def __init__(self, inner: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.inner, self.dtype = inner, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        compute = torch.float16 if x.is_cuda else torch.float32
        return self.inner(x.to(compute)).to(x.dtype)


def quantize_model(model: DiffusionGemma, mode: str, device: torch.device | str) -> DiffusionGemma:
    """Swap the model's layers for quantized ones (in place) and move everything to `device`."""
    if mode not in MODES:
        raise QuantError(f"unknown quantize mode {mode!r}; use one of {', '.join(MODES)} or none")
    device = torch.device(device)
    dtype = model.embed_tokens.weight.dtype
    targets: list[tuple[nn.Module, str, nn.Linear | Experts | GroupedExperts]] = []
    for name, module in model.named_modules():
        if name.endswith("router") or name == "":
            continue
        for child_name, child in module.named_children():
            if (isinstance(child, nn.Linear) and not name.endswith("router")) or (
                child_name == "experts" and isinstance(child, (Experts, GroupedExperts))
            ):
                targets.append((module, child_name, child))
    while targets:  # pop as we go so each float weight is freed once its quantized copy exists
        parent, child_name, child = targets.pop(0)
        if isinstance(child, nn.Linear):
            new = quantize_linear(child, mode, dtype, device)
            if mode == "int8":
                new = _Int8Linear(new, dtype)
        else:
            new = QuantExperts(child, mode, dtype, device)
        setattr(parent, child_name, new)
        del child, new
    model.to(device)
    return model


def weight_bytes(model: nn.Module) -> int:
    """Bytes of parameters and buffers as stored (quantized blobs at their packed size)."""
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if t.data_ptr() in seen or t.device.type == "meta":
            continue
        seen.add(t.data_ptr())
        total += t.numel() * t.element_size()
    return total

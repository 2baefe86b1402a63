"""The experts of a CPU training step in bf16, with a hand-written backward.

On the project's CPU (avx512_bf16) a bf16 matrix product runs ~4.7x faster than a float32 one, but every bf16 route
through autograd lost that gain: `torch._grouped_mm` in bf16 is a loop of slow per-group products there, and the
casts, gathers, scatter-adds and GELU around the products, each a separate pass (forward and backward), cost more
than the products saved. So this block owns its backward:
- tokens are sorted by expert once; each expert's rows are one contiguous slice, and every product (two forward,
  four backward) is one `torch.mm` per expert on bf16 slices, written into preallocated outputs;
- the GELU gate and its derivative are computed once, in float32, in the forward pass, so the backward's
  elementwise work is one multiplication;
- the routing weights multiply the expert outputs in float32 and their gradient is exact up to the bf16 products;
  the scatter back to the tokens adds in float32.
The arithmetic is the engine's `Experts` (same parameters, same state dict) with bf16 products, as autocast gives
every other matmul of the step. `kernels` are the elementwise parts; `speed.compile_model` swaps in compiled
versions (one fused pass each), the eager ones compute the same formulas.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from dcopilot.engine.runtime.model import Experts

BF16 = torch.bfloat16
GELU_C = math.sqrt(2 / math.pi)  # the tanh approximation's constants (F.gelu(approximate="tanh"))
GELU_A = 0.044715
# Each expert's rows are padded to a multiple of this: oneDNN builds and caches a kernel per matrix shape, and
# unpadded counts make nearly every product a new shape, which also evicts the cached kernels of the step's other
# bf16 products (measured: every matmul of the step got slower).
QUANTUM = 32


def act_forward(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """h [M, 2I] bf16 (gate | up) -> (gelu(gate) * up, [gelu'(gate) * up | gelu(gate)]), both bf16: the activation
    and what its backward multiplies the incoming gradient by."""
    i = h.shape[1] // 2
    hf = h.float()
    g, u = hf[:, :i], hf[:, i:]
    t = torch.tanh(GELU_C * (g + GELU_A * g * g * g))
    gelu = 0.5 * g * (1 + t)
    slope = 0.5 * (1 + t) + 0.5 * g * (1 - t * t) * GELU_C * (1 + 3 * GELU_A * g * g)
    return (gelu * u).to(BF16), torch.cat([slope * u, gelu], -1).to(BF16)


def act_backward(grad: torch.Tensor, saved: torch.Tensor) -> torch.Tensor:
    """Gradient of the activation's input [M, 2I] from its output's [M, I]."""
    return (grad.float().repeat(1, 2) * saved.float()).to(BF16)


def weigh(y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return y.float() * w[:, None]


def weigh_backward(grad: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(gradient of the routing weights [M], of the unweighted outputs [M, H] in bf16)."""
    return (grad * y.float()).sum(-1), (grad * w[:, None]).to(BF16)


@dataclass(frozen=True)
class Kernels:
    act_forward: Callable[..., Any]
    act_backward: Callable[..., Any]
    weigh: Callable[..., Any]
    weigh_backward: Callable[..., Any]


EAGER = Kernels(act_forward, act_backward, weigh, weigh_backward)


@functools.cache
def compiled_kernels() -> Kernels:
    # dynamic=None: the row count becomes symbolic after its first change, the widths stay static (vectorised)
    return Kernels(*(torch.compile(f, dynamic=None) for f in (act_forward, act_backward, weigh, weigh_backward)))


def expert_slices(
    index: torch.Tensor, experts: int, quantum: int
) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int, int]]]:
    """For the flat (token, k) pairs: (order that sorts them by expert, each sorted pair's row in a buffer where every
    expert's run starts at a multiple of `quantum`, [(expert, start, end)] of each padded non-empty run)."""
    flat = index.reshape(-1)
    order = torch.argsort(flat, stable=True)
    counts = torch.bincount(flat, minlength=experts)
    padded = (counts + quantum - 1) // quantum * quantum
    start = torch.cumsum(counts, 0) - counts
    pstart = torch.cumsum(padded, 0) - padded
    e_sorted = flat[order]
    rows = pstart[e_sorted] + torch.arange(flat.numel()) - start[e_sorted]
    runs = [(e, a, a + n) for e, (a, n) in enumerate(zip(pstart.tolist(), padded.tolist(), strict=True)) if n]
    return order, rows, runs


class _ExpertsFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weights, index, gate_up, down, kernels: Kernels):
        n, hidden = x.shape
        k = index.shape[1]
        order, rows, runs = expert_slices(index, gate_up.shape[0], QUANTUM)
        size = runs[-1][2] if runs else 0
        pair_token = order // k
        # Padding rows: zero inputs, zero weight, token 0 (they add exact zeros to it).
        token = torch.zeros(size, dtype=torch.long).index_copy_(0, rows, pair_token)
        xs = torch.zeros(size, hidden, dtype=BF16).index_copy_(0, rows, x.to(BF16)[pair_token])
        w = torch.zeros(size, dtype=torch.float32).index_copy_(0, rows, weights.reshape(-1)[order].float())
        gu, dn = gate_up.to(BF16), down.to(BF16)
        h = torch.empty(size, gu.shape[1], dtype=BF16)
        for e, a, b in runs:
            torch.mm(xs[a:b], gu[e].t(), out=h[a:b])
        act, saved = kernels.act_forward(h)
        y = torch.empty(size, hidden, dtype=BF16)
        for e, a, b in runs:
            torch.mm(act[a:b], dn[e].t(), out=y[a:b])
        out = torch.zeros(n, hidden, dtype=torch.float32).index_add_(0, token, kernels.weigh(y, w))
        ctx.save_for_backward(xs, act, saved, y, w, order, rows, token, gu, dn)
        ctx.runs, ctx.kernels, ctx.weights_shape = runs, kernels, weights.shape
        ctx.dtypes = (x.dtype, weights.dtype, gate_up.dtype, down.dtype)
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        xs, act, saved, y, w, order, rows, token, gu, dn = ctx.saved_tensors
        runs, kernels = ctx.runs, ctx.kernels
        x_dtype, w_dtype, gu_dtype, dn_dtype = ctx.dtypes
        d_w, d_y = kernels.weigh_backward(grad.float()[token], y, w)
        d_weights = torch.empty(order.shape, dtype=torch.float32).index_copy_(0, order, d_w[rows])
        d_dn = torch.zeros(dn.shape, dtype=BF16)  # an expert without tokens gets a zero gradient
        d_act = torch.empty(act.shape, dtype=BF16)
        for e, a, b in runs:
            torch.mm(d_y[a:b].t(), act[a:b], out=d_dn[e])
            torch.mm(d_y[a:b], dn[e], out=d_act[a:b])
        d_h = kernels.act_backward(d_act, saved)
        d_gu = torch.zeros(gu.shape, dtype=BF16)
        d_xs = torch.empty(xs.shape, dtype=BF16)
        for e, a, b in runs:
            torch.mm(d_h[a:b].t(), xs[a:b], out=d_gu[e])
            torch.mm(d_h[a:b], gu[e], out=d_xs[a:b])
        d_x = torch.zeros(grad.shape, dtype=torch.float32).index_add_(0, token, d_xs.float())
        return (
            d_x.to(x_dtype),
            d_weights.reshape(ctx.weights_shape).to(w_dtype),
            None,
            d_gu.to(gu_dtype),
            d_dn.to(dn_dtype),
            None,
        )


class CpuBf16Experts(Experts):
    """The engine's experts with bf16 products and the hand-written backward above (CPU training)."""

    kernels: Kernels = EAGER  # speed.compile_model sets compiled_kernels() on the instance

    def forward(self, x: torch.Tensor, weights: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):  # this block chooses its own dtypes
            return _ExpertsFunction.apply(x, weights, index, self.gate_up_proj, self.down_proj, self.kernels)

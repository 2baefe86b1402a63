"""engine/training/cpu_experts.py: the CPU training step's bf16 experts compute the engine's experts (output and every
gradient, to bf16 rounding) for any routing, with eager and compiled elementwise kernels alike."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from dcopilot.engine.runtime.fast import grouped_experts
from dcopilot.engine.training import cpu_experts as ce

E, H, I, K = 4, 16, 8, 2  # noqa: E741 - the experts' usual names


def weights_of(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    gate_up = (torch.randn(E, 2 * I, H, generator=g) * 0.3).requires_grad_()
    down = (torch.randn(E, H, I, generator=g) * 0.3).requires_grad_()
    return gate_up, down


def routing(kind: str, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    probs = torch.randn(n, E, generator=g).softmax(-1)
    w, index = torch.topk(probs, K, dim=-1)
    if kind == "two experts only":  # the others get no token: a zero gradient, not garbage
        index = torch.stack([torch.zeros(n, dtype=torch.long), torch.full((n,), 2)], dim=-1)
    elif kind == "one expert twice":  # both of a token's slots on the same expert
        index = torch.full((n, K), 1)
    return w, index


def run(fn, x, w, index, gate_up, down) -> list[torch.Tensor]:
    """Output and the gradients of x, w, gate_up, down under a fixed, position-dependent loss."""
    for t in (x, w, gate_up, down):
        t.grad = None
    y = fn(x, w, index, gate_up, down)
    (y * torch.arange(y.numel()).reshape(y.shape).sin()).sum().backward()
    assert x.grad is not None and w.grad is not None and gate_up.grad is not None and down.grad is not None
    return [y.detach(), x.grad, w.grad, gate_up.grad, down.grad]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-12)).item()


@pytest.mark.parametrize("kernels", ["eager", "compiled"])
@pytest.mark.parametrize(
    ("kind", "n"),
    [
        ("random", 100),  # runs longer than one padding quantum
        ("random", 3),  # fewer pairs than one quantum
        ("random", 1),
        ("two experts only", 40),
        ("one expert twice", 17),
    ],
)
def test_matches_the_engine_experts(kernels, kind, n):
    g = torch.Generator().manual_seed(n)
    gate_up, down = weights_of(n)
    x = torch.randn(n, H, generator=g).requires_grad_()
    w, index = routing(kind, n, g)
    w = w.requires_grad_()
    k = ce.EAGER if kernels == "eager" else ce.compiled_kernels()

    def ours(*a):
        return ce._ExpertsFunction.apply(*a, k)

    want = run(grouped_experts, x, w, index, gate_up, down)
    got = run(ours, x, w, index, gate_up, down)
    for name, a, b in zip(("output", "x", "weights", "gate_up", "down"), got, want, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert rel(a, b) < 0.03, f"{name}: relative error {rel(a, b):.4f}"
    if kind == "two experts only":
        assert not got[3][1].any() and not got[4][3].any()  # experts 1 and 3 saw no token


def test_module_under_autocast_keeps_float32_interfaces():
    shape = SimpleNamespace(hidden_size=H, moe_intermediate_size=I, num_experts=E)  # what Experts reads
    module = ce.CpuBf16Experts(shape)  # type: ignore[arg-type]
    torch.nn.init.normal_(module.gate_up_proj, std=0.3)
    torch.nn.init.normal_(module.down_proj, std=0.3)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(10, H, generator=g).requires_grad_()
    w, index = routing("random", 10, g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = module(x, w, index)
    assert y.dtype == torch.float32
    y.sum().backward()
    assert module.gate_up_proj.grad is not None and module.gate_up_proj.grad.dtype == torch.float32


@pytest.mark.parametrize("v", [-6.0, -2.5, -0.7, 0.0, 0.3, 1.0, 4.0])
def test_act_forward_is_gelu_times_up_with_its_derivative(v):
    gate = torch.tensor([[v]], dtype=torch.float64, requires_grad=True)
    up = 1.5
    ref = F.gelu(gate, approximate="tanh")
    (slope,) = torch.autograd.grad(ref.sum(), gate)
    h = torch.tensor([[v, up]]).to(ce.BF16)
    g = h.float()[0, 0].item()  # the bf16 value the kernel sees
    act, saved = ce.act_forward(h)
    want_gelu = 0.5 * g * (1 + math.tanh(ce.GELU_C * (g + ce.GELU_A * g**3)))
    assert act.float().item() == pytest.approx(want_gelu * up, rel=1e-2, abs=1e-2)
    assert saved.float()[0, 1].item() == pytest.approx(want_gelu, rel=1e-2, abs=1e-2)
    if g == v:  # exactly representable: compare the derivative with autograd's
        assert saved.float()[0, 0].item() == pytest.approx(slope.item() * up, rel=1e-2, abs=1e-2)


@pytest.mark.parametrize(
    ("index", "quantum", "runs"),
    [
        ([[0, 1], [1, 0], [1, 3]], 4, [(0, 0, 4), (1, 4, 8), (3, 8, 12)]),
        ([[2, 2]], 4, [(2, 0, 4)]),
        ([[0, 1], [0, 1], [0, 1]], 2, [(0, 0, 4), (1, 4, 8)]),
        ([[3, 0]], 1, [(0, 0, 1), (3, 1, 2)]),
    ],
)
def test_expert_slices_pad_each_run_to_the_quantum(index, quantum, runs):
    idx = torch.tensor(index)
    order, rows, got = ce.expert_slices(idx, E, quantum)
    assert got == runs
    flat = idx.reshape(-1)
    assert sorted(order.tolist()) == list(range(flat.numel()))
    assert len(set(rows.tolist())) == flat.numel()  # every pair gets its own row
    for pair, row in zip(order.tolist(), rows.tolist(), strict=True):
        expert = flat[pair].item()
        start, end = next((a, b) for e, a, b in got if e == expert)
        assert start <= row < end  # inside its expert's run

"""engine.fast: the grouped expert matmul equals the per-expert loop, and the sampler accepts a drop-in denoise."""

import copy
from types import SimpleNamespace

import pytest
import torch

from engine import load_model
from engine.fast import GroupedExperts, accelerate, grouped_experts
from engine.model import Experts
from engine.sampler import sample


@pytest.mark.parametrize("n, k, e", [(1, 2, 8), (37, 4, 16), (64, 8, 8)])
def test_grouped_experts_equals_the_loop(n, k, e):
    g = torch.Generator().manual_seed(n)
    h, i = 32, 16
    x = torch.randn(n, h, generator=g)
    index = torch.stack([torch.randperm(e, generator=g)[:k] for _ in range(n)])
    weights = torch.rand(n, k, generator=g)
    gate_up, down = torch.randn(e, 2 * i, h, generator=g) * 0.1, torch.randn(e, h, i, generator=g) * 0.1
    # the model's own per-expert loop is the oracle (its forward only reads the two fused tensors)
    expected = Experts.forward(SimpleNamespace(gate_up_proj=gate_up, down_proj=down), x, weights, index)
    torch.testing.assert_close(grouped_experts(x, weights, index, gate_up, down), expected, rtol=1e-5, atol=1e-6)


def test_accelerate_keeps_logits_and_state_dict(reference_checkpoint):
    model = load_model(reference_checkpoint)
    fast = accelerate(copy.deepcopy(model))
    assert all(isinstance(layer.experts, GroupedExperts) for layer in fast.layers)
    assert model.state_dict().keys() == fast.state_dict().keys()
    prompt = torch.randint(5, 128, (1, 15), generator=torch.Generator().manual_seed(0))
    canvas = torch.randint(0, 128, (3, 6), generator=torch.Generator().manual_seed(1))
    expected = model.denoise(canvas, model.encode(prompt))
    torch.testing.assert_close(fast.denoise(canvas, fast.encode(prompt)), expected, rtol=1e-5, atol=1e-5)


def test_sample_uses_the_given_denoise(reference_checkpoint):
    model = load_model(reference_checkpoint)
    calls = []

    def denoise(canvas, cache, self_conditioning_logits=None):
        calls.append(canvas.shape)
        return model.denoise(canvas, cache, self_conditioning_logits=self_conditioning_logits)

    cache = model.encode(torch.tensor([[5, 6, 7]]))
    gen = torch.Generator().manual_seed(0)
    a = sample(model, cache, 6, 2, denoise=denoise, generator=gen)
    b = sample(model, cache, 6, 2, generator=torch.Generator().manual_seed(0))
    assert len(calls) == a.stats.steps and torch.equal(a.tokens, b.tokens)


def test_grouped_experts_gradients_equal_the_loop():
    """Training can use the grouped path too: same gradients for inputs, routing weights and experts."""
    g = torch.Generator().manual_seed(0)
    n, k, e, h, i = 20, 2, 4, 16, 8
    x = torch.randn(n, h, generator=g)
    index = torch.stack([torch.randperm(e, generator=g)[:k] for _ in range(n)])
    weights = torch.rand(n, k, generator=g)
    gate_up, down = torch.randn(e, 2 * i, h, generator=g) * 0.1, torch.randn(e, h, i, generator=g) * 0.1

    def grads(fn):
        leaves = [t.clone().requires_grad_() for t in (x, weights, gate_up, down)]
        fn(*leaves).square().sum().backward()
        return [t.grad for t in leaves]

    loop = grads(lambda x, w, gu, d: Experts.forward(SimpleNamespace(gate_up_proj=gu, down_proj=d), x, w, index))
    grouped = grads(lambda x, w, gu, d: grouped_experts(x, w, index, gu, d))
    for a, b in zip(grouped, loop):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)

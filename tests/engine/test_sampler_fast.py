"""dcopilot.engine.runtime.fast: the grouped expert matmul and the per-expert loop fallback both equal a token-by-token
reference; the model gives the same logits on either path; the sampler accepts a drop-in denoise."""

import copy
from types import SimpleNamespace

import dcopilot.engine.runtime.model
import pytest
import torch
from dcopilot.engine.runtime.fast import GroupedExperts, accelerate, grouped_experts
from dcopilot.engine.runtime.loader import load_model
from dcopilot.engine.runtime.model import Experts
from dcopilot.engine.runtime.sampler import sample


def per_token(x, weights, index, gate_up, down):
    """The mixture written as its definition: for each token, the weighted sum of its top-k experts' MLPs."""
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        for w, e in zip(weights[t], index[t], strict=True):
            gate, up = (gate_up[e] @ x[t]).chunk(2)
            out[t] += w * (down[e] @ (torch.nn.functional.gelu(gate, approximate="tanh") * up))
    return out


def _loop(x, weights, index, gate_up, down):
    # Experts.forward_loop reads only the two fused tensors, so a namespace stands in for the module
    return Experts.forward_loop(SimpleNamespace(gate_up_proj=gate_up, down_proj=down), x, weights, index)


def _inputs(n, k, e, h=32, i=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, h, generator=g)
    index = torch.stack([torch.randperm(e, generator=g)[:k] for _ in range(n)])
    weights = torch.rand(n, k, generator=g)
    return x, weights, index, torch.randn(e, 2 * i, h, generator=g) * 0.1, torch.randn(e, h, i, generator=g) * 0.1


@pytest.mark.parametrize("n, k, e", [(1, 2, 8), (37, 4, 16), (64, 8, 8)])
@pytest.mark.parametrize("path", [grouped_experts, _loop], ids=["grouped", "loop"])
def test_expert_paths_equal_the_per_token_definition(path, n, k, e):
    args = _inputs(n, k, e, seed=n)
    torch.testing.assert_close(path(*args), per_token(*args), rtol=1e-5, atol=1e-6)


def test_model_logits_equal_on_the_loop_fallback(reference_checkpoint, monkeypatch):
    """A torch build without grouped matmuls runs Experts.forward_loop; the model's answer must not change."""
    model = load_model(reference_checkpoint)
    prompt = torch.randint(5, 128, (1, 15), generator=torch.Generator().manual_seed(0))
    canvas = torch.randint(0, 128, (2, 6), generator=torch.Generator().manual_seed(1))
    grouped = model.denoise(canvas, model.encode(prompt))
    monkeypatch.setattr(dcopilot.engine.runtime.model, "GROUPED_MM", False)
    calls = []
    original = Experts.forward_loop
    monkeypatch.setattr(Experts, "forward_loop", lambda self, *a: calls.append(1) or original(self, *a))
    loop = model.denoise(canvas, model.encode(prompt))
    assert calls, "the fallback did not run"
    torch.testing.assert_close(loop, grouped, rtol=1e-5, atol=1e-5)


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
    x, weights, index, gate_up, down = _inputs(20, 2, 4, h=16, i=8)

    def grads(fn):
        leaves = [t.clone().requires_grad_() for t in (x, weights, gate_up, down)]
        fn(*leaves).square().sum().backward()
        return [t.grad for t in leaves]

    loop = grads(lambda x, w, gu, d: _loop(x, w, index, gu, d))
    grouped = grads(lambda x, w, gu, d: grouped_experts(x, w, index, gu, d))
    for a, b in zip(grouped, loop, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)

"""Weight-only quantization (bitsandbytes NF4 / int8) on CPU on a tiny model.

Tolerances (documented in docs/quant.md): the quantized model must equal, to float32 rounding, the float model
whose weights are replaced by their dequantized values (so every swap is wired correctly); against the original
weights, per-tensor relative RMS error <= 0.12 (nf4) / 0.01 (int8), and on a model with std-0.05 weights the mean
KL(original || quantized) of the canvas distributions <= 0.3 (nf4) / 0.05 (int8).
"""

import copy

import pytest
import torch
from dcopilot.engine.runtime.loader import load_model
from dcopilot.engine.runtime.model import init_weights
from dcopilot.engine.runtime.quant import QuantError, QuantExperts, QuantTensor, quantize_model, weight_bytes
from torch import nn

bnb = pytest.importorskip("bitsandbytes")

WIDE = dict(hidden_size=128, intermediate_size=192, moe_intermediate_size=64, head_dim=32, global_head_dim=64)


@pytest.fixture(scope="module")
def checkpoint(checkpoint_factory):
    return checkpoint_factory(seed=2, **WIDE)


@pytest.fixture(scope="module")
def tame(checkpoint):
    """The tiny model with realistic (std 0.05) weights: random std-0.3 weights are chaotic under any noise."""
    model = load_model(checkpoint)
    init_weights(model, std=0.05, generator=torch.Generator().manual_seed(0))
    return model


def inputs():
    g = torch.Generator().manual_seed(0)
    return torch.randint(5, 128, (1, 20), generator=g), torch.randint(0, 128, (2, 6), generator=g)


def logits(model):
    prompt, canvas = inputs()
    return model.denoise(canvas, model.encode(prompt))


def dequantized_copy(base, qmodel):
    """`base` with each quantized weight replaced by what the quantized model actually multiplies with."""
    out = copy.deepcopy(base)
    qmods = dict(qmodel.named_modules())
    for name, module in out.named_modules():
        q = qmods.get(name)
        if isinstance(q, bnb.nn.Linear4bit):
            w = bnb.functional.dequantize_4bit(q.weight.data, q.weight.quant_state)
            module.weight.data = w.to(module.weight.dtype)
        elif isinstance(q, QuantExperts):
            module.gate_up_proj.data = q.gate_up.dequantize()
            module.down_proj.data = q.down.dequantize()
    return out


def test_nf4_model_equals_float_model_with_dequantized_weights(tame):
    q = quantize_model(copy.deepcopy(tame), "nf4", "cpu")
    expected = logits(dequantized_copy(tame, q))
    got = logits(q)
    assert (got - expected).abs().max() <= 1e-4 * expected.abs().max()
    assert (got - logits(tame)).abs().max() > 1e-3  # quantization really happened


@pytest.mark.parametrize("mode", ["nf4", "int8"])
def test_every_layer_weight_is_swapped_and_router_embeddings_kept(tame, mode):
    q = quantize_model(copy.deepcopy(tame), mode, "cpu")
    plain = [n for n, m in q.named_modules() if type(m) is nn.Linear]
    assert plain and all(n.endswith("router.proj") for n in plain), plain
    assert sum(isinstance(m, QuantExperts) for m in q.modules()) == len(q.layers)
    assert q.embed_tokens.weight.dtype == torch.float32
    ratio = weight_bytes(q) / weight_bytes(tame)
    assert ratio < {"nf4": 0.35, "int8": 0.45}[mode]  # tiny model: the fp32 embedding is a large share


@pytest.mark.parametrize("mode, rel_rms", [("nf4", 0.12), ("int8", 0.01)])
def test_expert_tensor_error(mode, rel_rms):
    w = torch.randn(4, 48, 128, generator=torch.Generator().manual_seed(1)) * 0.02
    qt = QuantTensor(w, mode, torch.float32, torch.device("cpu"))
    d = qt.dequantize()
    assert d.shape == w.shape and d.dtype == torch.float32
    err = ((d - w).pow(2).mean() / w.pow(2).mean()).sqrt().item()
    assert 0 < err <= rel_rms
    assert qt.nbytes() < w.numel() * {"nf4": 0.6, "int8": 1.1}[mode]  # bytes vs 4 per float32 weight


@pytest.mark.parametrize("mode, rel", [("nf4", 0.2), ("int8", 0.03)])
def test_linear_output_error(mode, rel):
    lin = nn.Linear(128, 64, bias=False)
    nn.init.normal_(lin.weight, std=0.05)
    from dcopilot.engine.runtime.quant import quantize_linear

    q = quantize_linear(lin, mode, torch.float32, torch.device("cpu"))
    x = torch.randn(10, 128, generator=torch.Generator().manual_seed(2))
    ref = lin(x)
    got = q(x) if mode == "nf4" else q(x.float())
    assert ((got - ref).pow(2).mean() / ref.pow(2).mean()).sqrt().item() <= rel


@pytest.mark.parametrize("mode, max_kl", [("nf4", 0.3), ("int8", 0.05)])
def test_quantized_distributions_stay_close(tame, mode, max_kl):
    ref = logits(tame)
    got = logits(quantize_model(copy.deepcopy(tame), mode, "cpu"))
    kl = (torch.softmax(ref, -1) * (torch.log_softmax(ref, -1) - torch.log_softmax(got, -1))).sum(-1).mean()
    assert kl.item() <= max_kl


@pytest.mark.parametrize("mode", ["nf4", "int8"])
def test_load_model_quantized_and_sample(checkpoint, mode):
    from dcopilot.engine.runtime.sampler import sample

    model = load_model(checkpoint, quantize=mode)
    assert any(isinstance(m, QuantExperts) for m in model.modules())
    prompt, _ = inputs()
    result = sample(model, model.encode(prompt), 6, 2, generator=torch.Generator().manual_seed(0))
    assert result.tokens.shape == (2, 6) and result.stats.steps >= 1


def test_unknown_mode_is_a_clear_error(tame):
    with pytest.raises(QuantError, match="unknown quantize mode"):
        quantize_model(copy.deepcopy(tame), "fp3", "cpu")

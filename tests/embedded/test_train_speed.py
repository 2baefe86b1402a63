"""engine/training/speed.py: the training classes compute what the engine's do (float32), bf16 autocast stays close,
the compiled parts compute what the eager ones do, and restore gives the engine's classes back with an unchanged
state dict."""

from __future__ import annotations

import pytest
import torch
from dcopilot.engine.runtime.model import Attention, DiffusionGemma, RMSNorm, init_weights
from dcopilot.engine.tasks.layout import fim_specials
from dcopilot.engine.training import speed
from dcopilot.engine.training.fim_data import AR_MIX, ExampleSampler
from dcopilot.engine.training.train import TrainConfig, ar_loss, diffusion_loss, parser
from tiny_checkpoint import tiny_shape


@pytest.mark.parametrize(
    ("mask", "t", "want"),
    [
        (torch.ones(4, 4, dtype=torch.bool).tril(), 4, True),
        (torch.ones(4, 4, dtype=torch.bool), 4, False),  # full attention, not causal
        (torch.ones(4, 4, dtype=torch.bool).tril(-1), 4, False),  # a query that sees nothing
        (torch.ones(3, 5, dtype=torch.bool).tril(2), 3, False),  # keys beyond the queries (a cache)
        (torch.ones(4, 4).tril(), 4, False),  # a float mask means something else
        (None, 4, False),
    ],
)
def test_is_square_causal(mask, t, want):
    assert speed.is_square_causal(mask, t) is want


def loss(model, batch, ids) -> torch.Tensor:
    return diffusion_loss(model, batch, torch.Generator().manual_seed(3), (True, False), 0.25, ids.eos, noise_draws=2)


def test_prepared_model_matches_the_engine_classes(small_tok, small_texts):
    ids = fim_specials(small_tok)
    torch.manual_seed(0)
    model = DiffusionGemma(tiny_shape(small_tok.get_vocab_size()).text_config(ids))
    init_weights(model, std=0.2, generator=torch.Generator().manual_seed(0))
    batch = ExampleSampler(small_tok, small_texts, seed=5).batch(4, 40, 12)
    keys = list(model.state_dict())
    want = loss(model, batch, ids)
    speed.prepare(model, bf16_experts=False)  # the float32 classes: the same loss as the engine's
    assert {type(m) for m in model.modules()} >= {speed.TrainingAttention, speed.FusedRMSNorm}
    assert list(model.state_dict()) == keys
    torch.testing.assert_close(loss(model, batch, ids), want, rtol=1e-5, atol=1e-5)
    speed.restore(model)
    speed.prepare(model)  # the CPU training path: bf16 experts with their own backward, the rest autocast
    assert speed.CpuBf16Experts in {type(m) for m in model.modules()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss(model, batch, ids)
    assert abs(mixed.item() - want.item()) < 0.05 * want.item()
    mixed.backward()  # gradients flow through the float32 attention, fused norms and the experts' own backward
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad and p.ndim >= 2)
    speed.restore(model)
    for layer in model.blocks:  # the CUDA path's experts (grouped matmul on bf16 copies), which a CPU runs too
        layer.experts.__class__ = speed.Bf16GroupedExperts
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss(model, batch, ids)
    assert abs(mixed.item() - want.item()) < 0.05 * want.item()
    mixed.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad and p.ndim >= 2)
    speed.restore(model)
    trained = (speed.TrainingAttention, speed.FusedRMSNorm, speed.Bf16GroupedExperts, speed.CpuBf16Experts)
    assert not any(isinstance(m, trained) for m in model.modules()) and list(model.state_dict()) == keys
    assert any(type(m) is Attention for m in model.modules()) and any(type(m) is RMSNorm for m in model.modules())


def test_compiled_model_computes_the_same_losses_and_gradients(small_tok, small_texts):
    """compile_model (the CPU trainer's default) changes no formula: the same diffusion and AR losses and
    gradients as the eager training classes under bf16 autocast, up to bf16 rounding; uncompile undoes it."""
    ids = fim_specials(small_tok)
    shape = tiny_shape(small_tok.get_vocab_size())
    models = []
    for compiled in (False, True):
        model = DiffusionGemma(shape.text_config(ids))
        init_weights(model, std=0.2, generator=torch.Generator().manual_seed(0))
        speed.prepare(model)
        if compiled:
            speed.compile_model(model)
        models.append(model)
    eager, compiled = models
    keys = list(eager.state_dict())
    assert list(compiled.state_dict()) == keys  # no `_orig_mod.` or other new names
    batch = ExampleSampler(small_tok, small_texts, seed=5).batch(4, 40, 12)
    ar = ExampleSampler(small_tok, small_texts, seed=6, mix=AR_MIX).batch(4, 40, 12)
    mask = small_tok.token_to_id("<mask>")
    results = []
    for model in models:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            gen = torch.Generator().manual_seed(3)
            diff = diffusion_loss(model, batch, gen, (True, False), 0.25, ids.eos, noise_draws=2, noise_id=mask)
            auto = ar_loss(model, ar, ids)
        (diff + auto).backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        results.append((diff.item(), auto.item(), grads))
    (d0, a0, g0), (d1, a1, g1) = results
    assert d1 == pytest.approx(d0, rel=1e-2) and a1 == pytest.approx(a0, rel=1e-2)
    assert g1.shape == g0.shape and g1.norm().item() == pytest.approx(g0.norm().item(), rel=5e-2)
    assert torch.nn.functional.cosine_similarity(g0, g1, dim=0).item() > 0.99
    assert "head_ce" in vars(compiled) and "feed_forward" in vars(compiled.blocks[0])
    assert "forward" in vars(compiled.blocks[0].experts)  # the grouped matmul stays out of the graphs
    speed.restore(compiled)
    assert "head_ce" not in vars(compiled)
    assert not any("feed_forward" in vars(m) or "forward" in vars(m) for m in compiled.modules())
    assert list(compiled.state_dict()) == keys


def test_trainer_compiles_by_default_and_no_compile_turns_it_off():
    assert parser().parse_args(["--out", "x"]).compile is True
    assert parser().parse_args(["--out", "x", "--no-compile"]).compile is False
    assert TrainConfig().compile is False  # library callers (tests, the GPU recipe) stay eager unless asked

"""A few optimiser steps on a tiny config must lower the loss, and the written checkpoint must load in the engine."""

import pytest
import torch
from dcopilot.engine.runtime.loader import load_model
from dcopilot.engine.runtime.model import DiffusionGemma, init_weights
from dcopilot.engine.tasks.layout import fim_specials
from dcopilot.engine.training.fim_data import ExampleSampler
from dcopilot.engine.training.train import (
    TrainConfig,
    ar_loss,
    default_generation,
    diffusion_loss,
    write_checkpoint,
)
from tiny_checkpoint import tiny_shape

TINY = tiny_shape(600, intermediate_size=64, moe_intermediate_size=32, global_head_dim=32)


@pytest.fixture(scope="module")
def setup(small_tok, small_texts):
    torch.manual_seed(0)
    ids = fim_specials(small_tok)
    model = DiffusionGemma(TINY.text_config(ids))
    init_weights(model, generator=torch.Generator().manual_seed(0))
    data = ExampleSampler(small_tok, small_texts, seed=0)
    batch = data.batch(8, 48, 16)
    return model, ids, batch


def test_diffusion_steps_lower_loss(setup):
    model, ids, batch = setup
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    t = torch.full((batch.canvas.shape[0], 1), 0.5)

    def fixed_loss():
        with torch.no_grad():
            return diffusion_loss(model, batch, torch.Generator().manual_seed(1), (False,), 0.0, ids.eos, t=t).item()

    before = fixed_loss()
    for i in range(12):
        loss = diffusion_loss(model, batch, gen, (i % 2 == 0, False), 0.25, ids.eos, noise_draws=2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = fixed_loss()
    assert after < before - 0.5, (before, after)


def test_ar_steps_lower_loss(setup, small_tok, small_texts):
    model, ids, _ = setup
    from dcopilot.engine.training.fim_data import MixConfig

    batch = ExampleSampler(small_tok, small_texts, seed=2, mix=MixConfig(layouts=(("A", 1.0),), pinned_k=(0, 0))).batch(
        8, 48, 16
    )
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    with torch.no_grad():
        before = ar_loss(model, batch, ids).item()
    for _ in range(10):
        loss = ar_loss(model, batch, ids)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = ar_loss(model, batch, ids).item()
    assert after < before - 0.5, (before, after)


def test_checkpoint_roundtrip_through_engine_loader(setup, small_tok, tmp_path):
    model, ids, batch = setup
    out = tmp_path / "ckpt"
    write_checkpoint(out, model, small_tok, TrainConfig(canvas_length=16), {"note": "test"}, default_generation(ids))
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    loaded = load_model(str(out), device="cpu", dtype=torch.float32)
    assert loaded.canvas_length == 16
    assert loaded.extra["prompt_format"] == "fim" and loaded.extra["note"] == "test"
    assert loaded.stop_ids == (ids.eos,)
    assert loaded.tokenizer.token_to_id("<|fim_middle|>") == ids.fim_middle
    with torch.no_grad():
        # bf16 weights on disk: compare against the in-memory model rounded the same way
        ref = DiffusionGemma(model.config)
        ref.load_state_dict({k: v.to(torch.bfloat16).float() for k, v in model.state_dict().items()})
        got = loaded.denoise(batch.canvas[:2], loaded.encode(batch.prompt[:2]))
        want = ref.denoise(batch.canvas[:2], ref.encode(batch.prompt[:2]))
    assert got.shape == (2, 16, TINY.vocab_size)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_rewriting_checkpoint_keeps_foreign_files(setup, small_tok, tmp_path):
    model, ids, _ = setup
    out = tmp_path / "ckpt"
    write_checkpoint(out, model, small_tok, TrainConfig(), {}, default_generation(ids))
    (out / "MODEL_CARD.md").write_text("card")
    write_checkpoint(out, model, small_tok, TrainConfig(), {}, default_generation(ids))
    assert (out / "MODEL_CARD.md").read_text() == "card"
    assert not (tmp_path / "ckpt.tmp").exists() and not (tmp_path / "ckpt.old").exists()


def test_absorbing_noise_training_lowers_loss_and_is_written_for_the_sampler(setup, small_tok, tmp_path):
    """--noise mask: noised slots hold <mask> in training, and generation_config.json tells the sampler so."""
    from dcopilot.engine.runtime.config import GenerationConfig
    from dcopilot.engine.training.train import noise_token

    model, ids, batch = setup
    mask = noise_token(small_tok, "mask")
    assert mask == small_tok.token_to_id("<mask>") and noise_token(small_tok, "uniform") is None
    with pytest.raises(ValueError, match="unknown noise"):
        noise_token(small_tok, "gaussian")
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    t = torch.full((batch.canvas.shape[0], 1), 0.5)

    def fixed_loss():
        with torch.no_grad():
            return diffusion_loss(
                model, batch, torch.Generator().manual_seed(1), (False,), 0.0, ids.eos, t=t, noise_id=mask
            ).item()

    before = fixed_loss()
    for i in range(12):
        loss = diffusion_loss(model, batch, gen, (i % 2 == 0, False), 0.25, ids.eos, noise_draws=2, noise_id=mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert fixed_loss() < before - 0.5
    out = tmp_path / "ckpt"
    write_checkpoint(out, model, small_tok, TrainConfig(canvas_length=16), {}, default_generation(ids, mask))
    assert GenerationConfig.from_file(out / "generation_config.json").noise_token_id == mask
    assert load_model(str(out), device="cpu", dtype=torch.float32).generation.noise_token_id == mask

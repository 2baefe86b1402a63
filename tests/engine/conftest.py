"""Tiny DiffusionGemma checkpoints written by the reference's own save_pretrained (test-only oracle)."""

import json
from pathlib import Path

import pytest
import torch

TINY_TEXT = dict(
    vocab_size=128,
    hidden_size=32,
    intermediate_size=48,
    moe_intermediate_size=16,
    num_experts=8,
    top_k_experts=2,
    num_hidden_layers=4,
    layer_types=["sliding_attention", "sliding_attention", "full_attention", "full_attention"],
    num_attention_heads=4,
    num_key_value_heads=2,
    num_global_key_value_heads=1,
    head_dim=8,
    global_head_dim=16,
    sliding_window=8,
    max_position_embeddings=4096,
    pad_token_id=0,
    eos_token_id=1,
    bos_token_id=2,
)

TINY_VISION = dict(
    model_type="gemma4_vision",
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=2,
    head_dim=8,
    global_head_dim=8,
    position_embedding_size=64,
)


# generation_config.json as shipped with google/diffusiongemma-26B-A4B-it (research notes, section 1.4).
SHIPPED_GENERATION = {
    "max_denoising_steps": 48,
    "max_new_tokens": 256,
    "sampler_config": {"_cls_name": "EntropyBoundSamplerConfig", "entropy_bound": 0.1},
    "t_min": 0.4,
    "t_max": 0.8,
    "stability_threshold": 1,
    "confidence_threshold": 0.005,
    "eos_token_id": [1, 106, 50],
    "pad_token_id": 0,
}


def build_reference_model(
    seed: int = 0, canvas_length: int = 6, distinct_encoder_scalars: bool = False, **text_overrides
):
    """A random reference model with non-trivial norms and scalars, so ordering bugs show up.

    distinct_encoder_scalars: the encoder's layer_scalar copies differ from the decoder's (a fine-tune may do
    that; the released checkpoint keeps them equal)."""
    from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion

    torch.manual_seed(seed)
    config = DiffusionGemmaConfig(
        text_config={**TINY_TEXT, **text_overrides},
        vision_config=TINY_VISION,
        canvas_length=canvas_length,
        eos_token_id=[1, 3],
    )
    model = DiffusionGemmaForBlockDiffusion(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "vision" in name:
                continue
            if name.endswith("norm.weight") or name.endswith(".scale") or name.endswith("per_expert_scale"):
                p.copy_(1.0 + 0.3 * torch.randn_like(p))
            elif p.ndim >= 2:
                p.copy_(torch.randn_like(p) * 0.3)
        # layer_scalar < 1 catches ordering bugs; the encoder keeps a copy equal to the decoder's, as in the
        # released checkpoint.
        for i, layer in enumerate(model.model.decoder.layers):
            layer.layer_scalar.copy_(0.5 + torch.rand(1) * 0.4)
            encoder_scalar = layer.layer_scalar * (1.6 if distinct_encoder_scalars else 1.0)
            model.model.encoder.language_model.layers[i].layer_scalar.copy_(encoder_scalar)
    return model


def make_reference_checkpoint(
    tmp_path: Path, seed: int = 0, canvas_length: int = 6, distinct_encoder_scalars: bool = False, **text_overrides
) -> Path:
    """Save a tiny reference model in the real checkpoint layout and return (dir)."""
    model = build_reference_model(
        seed=seed, canvas_length=canvas_length, distinct_encoder_scalars=distinct_encoder_scalars, **text_overrides
    )
    out = Path(tmp_path) / f"tiny-dg-{seed}"
    model.save_pretrained(out)
    # The real checkpoint ships a generation_config.json with the EntropyBound sampler settings.
    (out / "generation_config.json").write_text(json.dumps(SHIPPED_GENERATION | {"eos_token_id": [1, 3]}, indent=2))
    _write_tokenizer(out, model.config.text_config.vocab_size)
    return out


def _write_tokenizer(out: Path, vocab_size: int) -> None:
    """A word-level tokenizer.json over the tiny vocabulary, with the Gemma special-token names."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    vocab = {tok: i for i, tok in enumerate(specials)}
    for i in range(len(specials), vocab_size):
        vocab[f"w{i}"] = i
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens(specials)
    tok.save(str(out / "tokenizer.json"))


@pytest.fixture(scope="session")
def reference_checkpoint(tmp_path_factory) -> Path:
    return make_reference_checkpoint(tmp_path_factory.mktemp("ref"))


@pytest.fixture(scope="session")
def checkpoint_factory(tmp_path_factory):
    """make_reference_checkpoint in a fresh temporary folder, as a fixture: several test folders have a
    conftest.py, so `import conftest` would be ambiguous."""
    return lambda **kw: make_reference_checkpoint(tmp_path_factory.mktemp("ckpt"), **kw)

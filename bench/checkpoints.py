"""Random checkpoints in the released DiffusionGemma layout, for benches that must not download weights.

- `write_reference_checkpoint`: written by the transformers reference's own save_pretrained (bench-only oracle),
  with non-trivial norms and layer scalars, optionally with encoder layer_scalar copies that differ from the
  decoder's, so a loader that mixes them up shows.
- `write_layout_checkpoint`: our model's random weights under the checkpoint's `model.decoder.*` names with a real
  config.json, the embedded model's tokenizer and FIM prompt format in layout A, and the released sampler
  settings: a model of any width and depth (the full 26B-A4B width for the GPU editor check) without the
  reference (not installed on every GPU machine) and without its two weight copies.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from bench.gpu_step import FULL_TEXT, VISION, build_ours

EMBEDDED = Path(__file__).resolve().parents[1] / "engine" / "embedded"
# google/diffusiongemma-26B-A4B-it's generation_config.json (the released EntropyBound sampler settings)
SHIPPED_GENERATION = {
    "max_denoising_steps": 48, "max_new_tokens": 256, "t_min": 0.4, "t_max": 0.8, "stability_threshold": 1,
    "sampler_config": {"_cls_name": "EntropyBoundSamplerConfig", "entropy_bound": 0.1},
    "confidence_threshold": 0.005, "eos_token_id": [1], "pad_token_id": 0,
}  # fmt: skip

# The tests' tiny text config (seconds to build, in the real layout: sliding and full layers, K=V, experts);
# gpu_check --tiny derives its parity config from it.
TINY_TEXT: dict[str, Any] = dict(
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

# FULL_TEXT at toy width and two layers (one sliding, one full), for write_layout_checkpoint on a CPU: its
# vocabulary holds the embedded tokenizer's.
TOY_LAYOUT_TEXT: dict[str, Any] = dict(
    FULL_TEXT,
    vocab_size=8192,
    hidden_size=64,
    intermediate_size=96,
    moe_intermediate_size=32,
    num_experts=8,
    top_k_experts=2,
    num_hidden_layers=2,
    layer_types=["sliding_attention", "full_attention"],
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    global_head_dim=32,
    sliding_window=64,
)

__all__ = [
    "FULL_TEXT",
    "SHIPPED_GENERATION",
    "TINY_TEXT",
    "TOY_LAYOUT_TEXT",
    "write_layout_checkpoint",
    "write_reference_checkpoint",
]


def write_reference_checkpoint(
    out: Path,
    text: dict,
    seed: int = 0,
    canvas_length: int = 32,
    distinct_encoder_scalars: bool = False,
    eos_token_id: tuple[int, ...] = (1,),
    fan_in_scaled: bool = True,
) -> Path:
    """eos_token_id: the model's and the generation config's end ids. fan_in_scaled: weight std 0.3 shrinks by
    sqrt(fan_in / 64) past 64 inputs, so wide models stay tame; False keeps 0.3 at any width."""
    from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion

    torch.manual_seed(seed)
    # eos_token_id is a PreTrainedConfig setting the model's typed __init__ does not list; it takes it at run time
    config = DiffusionGemmaConfig(  # type: ignore[call-arg]
        text_config=text, vision_config=VISION, canvas_length=canvas_length, eos_token_id=list(eos_token_id)
    )
    model = DiffusionGemmaForBlockDiffusion(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "vision" in name:
                continue
            if name.endswith(("norm.weight", ".scale", "per_expert_scale")):
                p.copy_(1.0 + 0.3 * torch.randn_like(p))
            elif p.ndim >= 2:
                shrink = max(1.0, p.shape[-1] / 64) ** 0.5 if fan_in_scaled else 1.0
                p.copy_(torch.randn_like(p) * 0.3 / shrink)
        # layer_scalar < 1 catches ordering bugs; the encoder keeps a copy equal to the decoder's unless asked not to
        for i, layer in enumerate(model.model.decoder.layers):
            layer.layer_scalar.copy_(0.5 + torch.rand(1) * 0.4)
            scale = 1.6 if distinct_encoder_scalars else 1.0
            model.model.encoder.language_model.layers[i].layer_scalar.copy_(layer.layer_scalar * scale)
    out = Path(out)
    model.save_pretrained(out)
    generation = SHIPPED_GENERATION | {"eos_token_id": list(eos_token_id)}
    (out / "generation_config.json").write_text(json.dumps(generation, indent=2))
    _word_tokenizer(out, text["vocab_size"])
    return out


def _word_tokenizer(out: Path, vocab_size: int) -> None:
    """A word-level tokenizer.json over the vocabulary, with the Gemma special-token names."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    vocab = {tok: i for i, tok in enumerate(specials)} | {f"w{i}": i for i in range(len(specials), vocab_size)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens(specials)
    tok.save(str(out / "tokenizer.json"))


def write_layout_checkpoint(
    out: Path, text: dict, device: torch.device | str, canvas_length: int = 256, steps: int | None = None
) -> Path:
    """steps: the sampler's step budget (default: the released 48)."""
    from safetensors.torch import save_file

    embedded = json.loads((EMBEDDED / "config.json").read_text())
    vocab = json.loads((EMBEDDED / "tokenizer.json").read_text())["model"]["vocab"]
    if len(vocab) > text["vocab_size"]:
        raise ValueError(f"vocab_size {text['vocab_size']} is smaller than the tokenizer's {len(vocab)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = build_ours(text, torch.device(device), torch.bfloat16)
    save_file(
        {"model.decoder." + k: v.cpu().contiguous() for k, v in model.state_dict().items()},
        str(out / "model.safetensors"),
        metadata={"format": "pt"},
    )
    del model
    # layout A, as DiffusionGemma runs (a chat model): the suffix in the prompt, the whole canvas free
    extras = {k: embedded["dcopilot"][k] for k in ("prompt_format", "special_tokens")} | {"layout_default": "A"}
    config = {
        "architectures": ["DiffusionGemmaForBlockDiffusion"],
        "model_type": "diffusion_gemma",
        "canvas_length": canvas_length,
        "eos_token_id": [1],
        "pad_token_id": 0,
        "bos_token_id": 2,
        "tie_word_embeddings": True,
        "dtype": "bfloat16",
        "text_config": dict(text),
        "dcopilot": extras,
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    generation = SHIPPED_GENERATION | ({"max_denoising_steps": steps} if steps else {})
    (out / "generation_config.json").write_text(json.dumps(generation, indent=2))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(EMBEDDED / name, out / name)
    return out

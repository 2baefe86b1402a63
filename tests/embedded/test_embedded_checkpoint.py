"""The shipped embedded model: loads with the engine's loader and runs the real sampler on an infill prompt."""

import json
from pathlib import Path

import torch
from dcopilot.engine.runtime.loader import load_model
from dcopilot.engine.runtime.sampler import sample
from dcopilot.engine.tasks.layout import Layout, fim_ids, fim_specials, path_ids

EMBEDDED = Path(__file__).resolve().parents[2] / "engine" / "embedded"


def test_files_in_hf_layout_and_small():
    names = {p.name for p in EMBEDDED.iterdir()}
    assert {
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "model.safetensors",
        "corpus_manifest.json",
        "MODEL_CARD.md",
    } <= names
    total = sum(p.stat().st_size for p in EMBEDDED.iterdir() if p.is_file())
    assert total < 40 * 2**20
    cfg = json.loads((EMBEDDED / "config.json").read_text())
    assert cfg["model_type"] == "diffusion_gemma" and cfg["architectures"] == ["DiffusionGemmaForBlockDiffusion"]
    text = cfg["text_config"]
    assert text["num_experts"] > 1 and text["layer_types"][-1] == "full_attention"
    assert "sliding_attention" in text["layer_types"]
    assert cfg["dcopilot"]["prompt_format"] == "fim"


def test_loads_and_denoises_an_infill_canvas():
    model = load_model(str(EMBEDDED), device="cpu", dtype=torch.float32)
    tok = model.tokenizer
    ids = fim_specials(tok)
    prefix = "def add(a, b):\n    return "
    suffix = "\n\n\nprint(add(1, 2))\n"
    prompt = fim_ids(ids, Layout.C, path_ids(tok, "example.py"), tok.encode(prefix), tok.encode(suffix))
    cache = model.encode(torch.tensor([prompt]))
    L = model.canvas_length
    k = int(model.extra["pinned_suffix_tokens"])
    tail = tok.encode(suffix)[:k]
    noise = model.generation.noise_token_id
    assert noise == tok.token_to_id("<mask>")  # trained with absorbing-state noise (model card)
    seed = torch.full((1, L), noise)
    seed[0, L - len(tail) :] = torch.tensor(tail)
    pinned = torch.zeros(1, L, dtype=torch.bool)
    pinned[0, L - len(tail) :] = True
    with torch.no_grad():
        logits = model.denoise(seed, cache)
    assert logits.shape == (1, L, model.config.vocab_size) and torch.isfinite(logits).all()
    res = sample(
        model,
        cache,
        canvas_length=L,
        batch=1,
        seed_canvas=seed,
        pinned=pinned,
        generator=torch.Generator().manual_seed(0),
    )
    out = res.tokens[0].tolist()
    assert out[L - len(tail) :] == tail
    # a trained model ends its middle with <eos> inside the free region on such an easy prompt
    assert ids.eos in out[: L - len(tail)]

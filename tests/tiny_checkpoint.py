"""A tiny random embedded-layout checkpoint written by the engine's own writer (real safetensors, tokenizer.json,
config.json), for tests that drive the real load/infill/edit path; its text is random, so tests check invariants.
A uniquely named module: every test folder has a conftest.py. Engine imports stay inside the functions, so a
module that only starts the language server does not load torch."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dcopilot.engine.training.train import ModelShape

CODE = [
    "def add(a, b):\n    return a + b\n\n\nclass Point:\n    def __init__(self, x, y):\n        self.x = x\n",
    "for i in range(10):\n    if i % 2 == 0:\n        print(i)\n    else:\n        continue\n",
    "import os\nimport sys\n\npath = os.path.join(sys.argv[1], 'out.txt')\n"
    "with open(path) as f:\n    data = f.read()\n",
] * 20


def tiny_shape(vocab_size: int, **overrides: int) -> ModelShape:
    """Two layers (one sliding, one full), four experts: a model that builds and runs in well under a second."""
    from dcopilot.engine.training.train import ModelShape

    shape = ModelShape(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=48,
        moe_intermediate_size=16,
        num_experts=4,
        top_k_experts=2,
        num_hidden_layers=2,
        full_every=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_global_key_value_heads=1,
        head_dim=16,
        global_head_dim=16,
        sliding_window=64,
    )
    return dataclasses.replace(shape, **overrides)


def write_tiny_checkpoint(out: Path, seed: int = 0, canvas_length: int = 24, pinned_k: int = 4, steps: int = 4) -> Path:
    import torch
    from dcopilot.engine.runtime.model import DiffusionGemma, init_weights
    from dcopilot.engine.tasks.layout import fim_specials
    from dcopilot.engine.training.bpe import train_bpe
    from dcopilot.engine.training.train import TrainConfig, default_generation, write_checkpoint

    tok = train_bpe(CODE, vocab_size=320, min_frequency=1)
    ids = fim_specials(tok)
    torch.manual_seed(seed)
    model = DiffusionGemma(tiny_shape(tok.get_vocab_size()).text_config(ids))
    init_weights(model, std=0.2, generator=torch.Generator().manual_seed(seed))
    cfg = TrainConfig(canvas_length=canvas_length, pinned_suffix_tokens=pinned_k, prompt_lens=(160,))
    generation = dataclasses.replace(default_generation(ids), max_denoising_steps=steps)
    write_checkpoint(out, model, tok, cfg, {}, generation)
    return out

"""Run the installed `dcopilot` entry point in a subprocess, isolated from the user's settings and caches."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXE = Path(sys.executable).parent / "dcopilot"


@pytest.fixture
def isolated_env(tmp_path) -> dict[str, str]:
    """The environment minus DCOPILOT_*/HF_* settings, with config and HF cache under tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DCOPILOT_", "HF_"))}
    env |= {
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "HF_HUB_CACHE": str(tmp_path / "hf-cache"),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    return env


@pytest.fixture
def dcopilot(tmp_path, isolated_env):
    """dcopilot(*args, env={...}) -> CompletedProcess, run in tmp_path through the real console script."""
    assert EXE.exists(), f"{EXE} missing: install the package (pip install -e '.[dev]')"

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(EXE), *args],
            capture_output=True,
            text=True,
            env=isolated_env | (env or {}),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )

    return run


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A random tiny DiffusionGemma in the released checkpoint's layout, written by the reference implementation."""
    import json

    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion

    text = dict(
        vocab_size=64, hidden_size=32, intermediate_size=48, moe_intermediate_size=16, num_experts=4,
        top_k_experts=2, num_hidden_layers=2, layer_types=["sliding_attention", "full_attention"],
        num_attention_heads=2, num_key_value_heads=1, num_global_key_value_heads=1, head_dim=16,
        global_head_dim=32, sliding_window=8, pad_token_id=0, eos_token_id=1, bos_token_id=2,
    )  # fmt: skip
    # global_head_dim differs from head_dim so that save_pretrained writes the full layers' geometry (see report).
    # The default vision tower alone has ~167M parameters; the engine never reads it, so keep it tiny.
    vision = dict(
        model_type="gemma4_vision", hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, head_dim=8, global_head_dim=8, position_embedding_size=64,
    )  # fmt: skip
    torch.manual_seed(0)
    config = DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=8, eos_token_id=[1])
    out = tmp_path_factory.mktemp("ckpt") / "tiny-diffusiongemma"
    DiffusionGemmaForBlockDiffusion(config).save_pretrained(out)
    (out / "generation_config.json").write_text(json.dumps({"max_denoising_steps": 4, "eos_token_id": [1]}))
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    vocab = {token: i for i, token in enumerate(specials + [f"w{i}" for i in range(len(specials), 64)])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.add_special_tokens(specials)
    tokenizer.save(str(out / "tokenizer.json"))
    return out


@pytest.fixture
def hf_cache(tmp_path, tiny_checkpoint) -> Path:
    """tmp_path/hf-cache (the fixtures' HF_HUB_CACHE) holding the tiny checkpoint as org/name at a revision."""
    import shutil

    repo = tmp_path / "hf-cache" / "models--tiny-org--diffusiongemma-tiny"
    shutil.copytree(tiny_checkpoint, repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    other = tmp_path / "hf-cache" / "models--other--llama" / "snapshots" / "r1"
    other.mkdir(parents=True)
    (other / "config.json").write_text('{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}')
    return tmp_path / "hf-cache"

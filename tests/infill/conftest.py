"""A tiny random embedded-style checkpoint (real files: safetensors, tokenizer.json, config.json) for the
orchestration tests. Its outputs are random, so tests check invariants, not content."""

import pytest
import torch
from tiny_checkpoint import write_tiny_checkpoint


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from dcopilot.engine.runtime.loader import load_model

    path = write_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt")
    return load_model(str(path), device="cpu", dtype=torch.float32)


@pytest.fixture(scope="session")
def tiny_checkpoint_dir(tiny_model):
    return tiny_model.path

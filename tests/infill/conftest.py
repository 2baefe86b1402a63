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


@pytest.fixture(scope="session")
def fitted_checkpoint_dir(tiny_model, tmp_path_factory):
    """The tiny checkpoint with a score fit of its own (the embedded model's): its completions are gated."""
    import shutil

    from dcopilot.engine.runtime.loader import EMBEDDED_DIR
    from dcopilot.engine.tasks import score_fit

    path = tmp_path_factory.mktemp("fitted") / "ckpt"
    shutil.copytree(tiny_model.path, path)
    score_fit.write(path, score_fit.read(EMBEDDED_DIR / score_fit.FILE), "the embedded model's fit, for tests")
    return path

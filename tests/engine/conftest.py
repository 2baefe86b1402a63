"""Tiny DiffusionGemma checkpoints written by the reference's own save_pretrained (test-only oracle)."""

from pathlib import Path

import pytest

from bench.checkpoints import TINY_TEXT, write_reference_checkpoint


def make_reference_checkpoint(
    tmp_path: Path, seed: int = 0, canvas_length: int = 6, distinct_encoder_scalars: bool = False, **text_overrides
) -> Path:
    """A tiny random reference model (non-trivial norms and scalars, so ordering bugs show up) saved in the real
    checkpoint layout with the released sampler settings; returns its folder.

    distinct_encoder_scalars: the encoder's layer_scalar copies differ from the decoder's (a fine-tune may do
    that; the released checkpoint keeps them equal)."""
    return write_reference_checkpoint(
        Path(tmp_path) / f"tiny-dg-{seed}",
        {**TINY_TEXT, **text_overrides},
        seed=seed,
        canvas_length=canvas_length,
        distinct_encoder_scalars=distinct_encoder_scalars,
        eos_token_id=(1, 3),
        fan_in_scaled=False,
    )


@pytest.fixture(scope="session")
def reference_checkpoint(tmp_path_factory) -> Path:
    return make_reference_checkpoint(tmp_path_factory.mktemp("ref"))


@pytest.fixture(scope="session")
def checkpoint_factory(tmp_path_factory):
    """make_reference_checkpoint in a fresh temporary folder, as a fixture: several test folders have a
    conftest.py, so `import conftest` would be ambiguous."""
    return lambda **kw: make_reference_checkpoint(tmp_path_factory.mktemp("ckpt"), **kw)

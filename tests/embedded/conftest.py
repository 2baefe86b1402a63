"""Shared fixtures for the embedded-model tests: a small slice of the real corpus and a small BPE over it."""

from __future__ import annotations

import pytest
from dcopilot.engine.training.bpe import train_bpe
from dcopilot.engine.training.corpus import build_manifest, load_texts


@pytest.fixture(scope="session")
def manifest():
    return build_manifest()


@pytest.fixture(scope="session")
def small_texts(manifest):
    texts = load_texts(manifest, "train")
    keep = sorted(texts)[:40]
    return {p: texts[p] for p in keep}


@pytest.fixture(scope="session")
def small_tok(small_texts):
    return train_bpe(small_texts.values(), vocab_size=600)

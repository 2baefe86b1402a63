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


@pytest.fixture(scope="session")
def v2_root(tmp_path_factory, manifest):
    """A tiny corpus v2 root (manifest.jsonl + files/) made of real stdlib files: 12 train, 3 validation."""
    import hashlib

    from dcopilot.engine.training.corpus_v2 import FILES_DIR, MANIFEST_NAME, ManifestEntry, write_manifest

    root = tmp_path_factory.mktemp("corpus_v2")
    train = load_texts(manifest, "train")
    held = load_texts(manifest, "heldout")
    entries = []
    for split, texts in (("train", train), ("validation", held)):
        for p in sorted(texts)[: 12 if split == "train" else 3]:
            data = texts[p].encode("utf-8")
            (root / FILES_DIR / "pypi" / p).parent.mkdir(parents=True, exist_ok=True)
            (root / FILES_DIR / "pypi" / p).write_bytes(data)
            digest = hashlib.sha256(data).hexdigest()
            entries.append(
                ManifestEntry("stdlib", "pypi", "3", "PSF-2.0", "python", f"pypi/{p}", p, digest, len(data), split)
            )
    write_manifest(root / MANIFEST_NAME, entries)
    return root

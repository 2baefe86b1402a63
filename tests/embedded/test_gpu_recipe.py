"""The GPU recipe end to end at toy size on the CPU: prepare (pre-tokenized examples within the size budget) ->
train (a few steps) -> a checkpoint the engine's loader reads -> held-out scores written."""

from __future__ import annotations

import json
import lzma
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from dcopilot.engine.runtime.loader import load_model
from dcopilot.engine.training.bpe import train_bpe
from dcopilot.engine.training.pretok import PretokError, example_bytes, fit, plan
from dcopilot.engine.training.sources import CorpusSourceError, read_corpus
from safetensors.torch import load, save

ROOT = Path(__file__).resolve().parents[2]
BLOCK_DAEMON_PACKAGES = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in {"msgspec", "pygls", "lsprotocol", "tree_sitter", "transformers"}:
            raise ImportError(f"{name} is not on the GPU machine")

sys.meta_path.insert(0, Block())
"""


def sh(*args: str, **extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1", **extra)
    return subprocess.run(["bash", "scripts/gpu_train.sh", *args], cwd=ROOT, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory, manifest):
    d = tmp_path_factory.mktemp("corpus")
    files = [f for f in manifest["files"] if f["split"] == "train"][:15]
    files += [f for f in manifest["files"] if f["split"] == "heldout"][:3]
    (d / "manifest.json").write_text(json.dumps(dict(manifest, files=files)))
    train = read_corpus(d / "manifest.json").train
    train_bpe(train.values(), vocab_size=400).save(str(d / "tokenizer.json"))
    return d


def test_prepare_train_load_score(tmp_path, small_corpus):
    carry, out = tmp_path / "carry", tmp_path / "run"
    prep = sh("--prepare", "--corpus", str(small_corpus / "manifest.json"), "--tokenizer",
              str(small_corpus / "tokenizer.json"), "--mib", "0.3", "--val", "32", "--out", str(carry),
              "--language-alpha", "0.5")  # fmt: skip
    assert prep.returncode == 0, prep.stdout + prep.stderr
    meta = json.loads((carry / "meta.json").read_text())
    size = sum(p.stat().st_size for p in carry.iterdir())
    assert size <= 0.3 * 2**20 and meta["bytes"] <= size
    # compressed: the carry holds more examples than its size (ids, padding and flags compress well)
    assert (carry / "data.safetensors.xz").is_file() and meta["raw_bytes"] > 2 * meta["bytes"]
    assert meta["id_dtype"] == "int16" and meta["corpus"]["heldout_split"] == "heldout"
    assert meta["language_alpha"] == 0.5  # one language here: the same draws, recorded
    assert {k.split(".")[0] for k in meta["buckets"]} == {"diff", "ar", "val_diff", "val_ar"}
    assert all(n > 0 for n in meta["buckets"].values())
    assert sh("--unpack", str(carry), str(tmp_path / "x")).returncode == 2  # not a pack: says so

    # The GPU machine has torch, safetensors and tokenizers, not the daemon's other packages: training must not
    # import them (sitecustomize makes their import fail in the training process).
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "sitecustomize.py").write_text(BLOCK_DAEMON_PACKAGES)
    pack, back = tmp_path / "pack", tmp_path / "back"
    run = sh("--out", str(out), "--pack", str(pack), "--data", str(carry), "--size", "tiny", "--steps", "3",
             "--batch-size", "4", "--val-batch", "16", "--device", "cpu", PYTHONPATH=str(bare))  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    scores = json.loads((out / "scores.json").read_text())
    assert scores["steps"] == 3 and scores["tokens"] > 0 and scores["heldout_split"] == "heldout"
    for key in ("val_diff_t0.5", "val_diff_t1.0", "val_ar"):
        assert math.isfinite(scores["heldout_before"][key]) and math.isfinite(scores["heldout_after"][key])
    assert set(scores["phases_s"]) >= {"start_up", "train", "validate_after", "write", "total"}
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    assert (out / "run.log").read_text().count('"step"') == 3 and (out / "summary.md").is_file()
    # what the device tool brings back: at most 8 files of at most 16 MiB, reassembled and checked here
    packed = sorted(p.name for p in pack.iterdir())
    assert len(packed) <= 8 and all(p.stat().st_size <= 15 * 2**20 for p in pack.iterdir())
    assert packed[:2] == ["checkpoint.tar.part-00", "logs.tgz"] and "pack.json" in packed
    unpacked = sh("--unpack", str(pack), str(back))
    assert unpacked.returncode == 0, unpacked.stdout + unpacked.stderr
    assert (back / "checkpoint" / "model.safetensors").read_bytes() == (
        out / "checkpoint" / "model.safetensors"
    ).read_bytes()
    assert json.loads((back / "scores.json").read_text()) == scores and (back / "train_log.jsonl").is_file()
    model = load_model(str(back / "checkpoint"), device="cpu", dtype=torch.float32)
    assert model.config.hidden_size == 32 and model.generation.noise_token_id == model.tokenizer.token_to_id("<mask>")
    assert json.loads((out / "checkpoint" / "training_data.json").read_text()) == meta
    prompt = torch.tensor([[model.tokenizer.token_to_id("<bos>")] * 8])
    logits = model.denoise(torch.zeros(1, 4, dtype=torch.long), model.encode(prompt))
    assert logits.shape == (1, 4, 400) and torch.isfinite(logits).all()


def test_init_from_continues_a_checkpoint_and_its_lineage(tmp_path, small_corpus):
    carry, first, second = tmp_path / "carry", tmp_path / "first", tmp_path / "second"
    prep = sh("--prepare", "--corpus", str(small_corpus / "manifest.json"), "--tokenizer",
              str(small_corpus / "tokenizer.json"), "--mib", "0.3", "--val", "32", "--out", str(carry))  # fmt: skip
    assert prep.returncode == 0, prep.stdout + prep.stderr
    common = ("--data", str(carry), "--size", "tiny", "--batch-size", "4", "--val-batch", "16", "--device", "cpu")
    run = sh("--out", str(first), "--steps", "10", "--warmup-steps", "1", "--lr", "0.01", *common)
    assert run.returncode == 0, run.stdout + run.stderr
    ckpt = first / "checkpoint"
    run = sh("--out", str(second), "--steps", "2", "--init-from", str(ckpt), *common)
    assert run.returncode == 0, run.stdout + run.stderr
    a, b = (json.loads((d / "scores.json").read_text()) for d in (first, second))
    # the continued model starts where the first ended (its bf16 copy), not from a fresh initialisation
    for key, after in a["heldout_after"].items():
        assert abs(b["heldout_before"][key] - after) < 0.05 and abs(a["heldout_before"][key] - after) > 0.2
    card = json.loads((second / "checkpoint" / "config.json").read_text())["dcopilot"]["training"]
    assert card["recipe"]["ar_fraction"] == 0.0 and card["recipe"]["init_from"] == str(ckpt)
    assert card["cumulative"]["tokens"] == a["tokens"] + b["tokens"]
    assert (
        card["cumulative"]["gpu_minutes"] == round(b["phases_s"]["train"] / 60, 2)
        and [s["steps"] for s in card["stages"]][-1] == 2
    )
    assert card["stages"][-1]["device"] == "cpu" and b["size"] == str(ckpt)

    other = tmp_path / "other"
    other.mkdir()
    for f in ckpt.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    (other / "tokenizer.json").write_text((ckpt / "tokenizer.json").read_text() + "\n")
    refused = sh("--out", str(tmp_path / "x"), "--steps", "1", "--init-from", str(other), *common)
    assert refused.returncode != 0 and "not the one the data was built for" in refused.stdout + refused.stderr


def test_plan_fills_the_budget_and_refuses_a_tiny_one():
    counts = plan(45.0, 2, other_bytes=600_000)
    total = sum(example_bytes(p, n, 2) * c for buckets in counts.values() for (p, n), c in buckets.items())
    assert 40 * 2**20 < total + 600_000 <= 45 * 2**20
    with pytest.raises(PretokError, match="no room"):
        plan(0.05, 2)


def test_fit_cuts_training_buckets_evenly_and_keeps_validation_whole():
    g = torch.Generator().manual_seed(0)
    tensors = {
        f"{kind}.64x32.{field}": torch.randint(0, 8000, (n, 96), generator=g, dtype=torch.int16)
        for kind, n in (("diff", 3000), ("ar", 1000), ("val_diff", 200))
        for field in ("prompt", "canvas")
    }
    whole = len(lzma.compress(save(tensors)))
    kept, packed = fit(tensors, 0.5 * whole)
    assert len(packed) <= 0.5 * whole and load(lzma.decompress(packed)).keys() == kept.keys()
    rows = {key: t.shape[0] for key, t in kept.items()}
    assert rows["val_diff.64x32.prompt"] == 200 and rows["diff.64x32.prompt"] < 3000
    # one share for every training bucket, as drawn (3:1), and prompt and canvas rows stay paired
    assert abs(rows["diff.64x32.prompt"] / rows["ar.64x32.prompt"] - 3) < 0.01
    assert rows["diff.64x32.canvas"] == rows["diff.64x32.prompt"]
    assert torch.equal(kept["diff.64x32.prompt"], tensors["diff.64x32.prompt"][: rows["diff.64x32.prompt"]])
    same, _ = fit(tensors, 2 * whole)
    assert all(same[k] is tensors[k] for k in tensors)  # room enough: nothing cut
    with pytest.raises(PretokError, match="do not fit"):
        fit(tensors, 1000)


def test_corpus_errors_are_clear(tmp_path):
    with pytest.raises(CorpusSourceError, match="no corpus at"):
        read_corpus(tmp_path / "missing.json")
    with pytest.raises(CorpusSourceError, match=r"without manifest\.jsonl"):
        read_corpus(tmp_path)
    assert sh("--out", str(tmp_path / "o"), "--data", str(tmp_path)).returncode == 2

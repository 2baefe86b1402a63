"""Resumable training: N steps straight and N/2 + resume + N/2 give the same weights, optimiser and data position;
SIGTERM saves the state and `--resume RUN_DIR` finishes the run."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from dcopilot.engine.runtime.loader import load_model
from dcopilot.engine.runtime.model import DiffusionGemma
from dcopilot.engine.training.state import StateError, has_state, load_state, read_settings
from dcopilot.engine.training.train import WEIGHT_PREFIX, TrainConfig, history, stage_of, train
from safetensors.torch import load_file
from tiny_checkpoint import tiny_shape

ROOT = Path(__file__).resolve().parents[2]
CFG = TrainConfig(
    steps=6,
    batch_size=4,
    prompt_lens=(40, 48),
    canvas_lens=(12, 16),
    ar_fraction=0.34,  # steps 0-1 are AR, then diffusion with AR mixed in: the resume point is in diffusion
    warmup_steps=2,
    ckpt_minutes=1e9,
    lr=3e-3,
)


def run(tmp: Path, name: str, tok, texts, stop_after: int | None = None, resume: bool = False, cfg: TrainConfig = CFG):
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return stop_after is not None and calls["n"] > stop_after

    heldout = dict(list(texts.items())[:5])
    return train(
        cfg,
        tiny_shape(tok.get_vocab_size()),
        texts,
        heldout,
        tok,
        tmp / name,
        None,
        {},
        log=lambda s: None,
        resume=resume,
        stop=stop,
    )


def state_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "state" / "state.safetensors"))


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_half_plus_resume_equals_straight(tmp_path, small_tok, small_texts, compiled):
    # compiled: the CPU trainer's default (torch.compile'd parts); the test's only compile (tiny shapes, ~30 s)
    cfg = dataclasses.replace(CFG, compile=compiled)
    straight, _ = run(tmp_path, "straight", small_tok, small_texts, cfg=cfg)
    run(tmp_path, "split", small_tok, small_texts, stop_after=3, cfg=cfg)
    first_half = json.loads((tmp_path / "split" / "state" / "state.json").read_text())
    assert first_half["progress"]["step"] == 3 and first_half["progress"]["sessions"] == 1
    resumed, _ = run(tmp_path, "split", small_tok, small_texts, resume=True, cfg=cfg)
    assert ("head_ce" in vars(resumed)) is compiled  # the compiled parts were in use
    # the checkpoint holds the engine's own names (no torch.compile `_orig_mod.` prefix) and loads in the engine
    saved = load_file(str(tmp_path / "split" / "checkpoint" / "model.safetensors"))
    assert sorted(saved) == sorted(WEIGHT_PREFIX + k for k in DiffusionGemma(resumed.config).state_dict())
    assert (
        load_model(str(tmp_path / "split" / "checkpoint"), device="cpu", dtype=torch.float32).config.hidden_size == 32
    )
    a, b = state_tensors(tmp_path / "straight"), state_tensors(tmp_path / "split")
    assert sorted(a) == sorted(b)
    assert any(k.startswith("opt.") for k in a) and any(k.startswith("gen.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    for (n, p), (_, q) in zip(straight.named_parameters(), resumed.named_parameters(), strict=True):
        assert torch.equal(p, q), n
    meta = json.loads((tmp_path / "split" / "state" / "state.json").read_text())
    straight_meta = json.loads((tmp_path / "straight" / "state" / "state.json").read_text())
    assert meta["progress"]["step"] == 6 and meta["progress"]["sessions"] == 2
    assert meta["progress"]["tokens"] == straight_meta["progress"]["tokens"]
    assert meta["random"] == straight_meta["random"]  # same data position afterwards
    # the state files are plain data: safetensors and JSON, no pickle anywhere in the run directory
    names = {p.name for p in (tmp_path / "split" / "state").iterdir()}
    assert names == {"state.safetensors", "state.json"}


def test_resuming_without_state_or_another_shape_is_a_clear_error(tmp_path, small_tok, small_texts):
    with pytest.raises(StateError, match="no training state"):
        read_settings(tmp_path / "nothing")
    run(tmp_path, "r", small_tok, small_texts, stop_after=1)
    assert has_state(tmp_path / "r")
    from dcopilot.engine.runtime.model import DiffusionGemma
    from dcopilot.engine.tasks.layout import fim_specials

    other = DiffusionGemma(tiny_shape(small_tok.get_vocab_size(), hidden_size=48).text_config(fim_specials(small_tok)))
    opt = torch.optim.AdamW(other.parameters())
    with pytest.raises(StateError, match="do not fit"):
        load_state(tmp_path / "r", other, opt, {}, {})


def test_a_state_of_the_per_parameter_adamw_resumes_on_the_fused_one(tmp_path, small_tok, small_texts):
    """The optimiser's kernel is the trainer's current choice, not the saved one; moments and steps carry over."""
    from dcopilot.engine.tasks.layout import fim_specials
    from dcopilot.engine.training.state import Progress, save_state
    from dcopilot.engine.training.train import make_optimizer

    def built(fused: bool):
        torch.manual_seed(0)
        model = DiffusionGemma(tiny_shape(small_tok.get_vocab_size()).text_config(fim_specials(small_tok)))
        return model, make_optimizer(model, CFG, fused=fused)

    model, old = built(False)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    old.step()
    save_state(tmp_path / "r", model, old, {}, {}, Progress(), {})
    fresh, fused = built(True)
    load_state(tmp_path / "r", fresh, fused, {}, {})
    assert all(g["fused"] for g in fused.param_groups)
    assert [g["weight_decay"] for g in fused.param_groups] == [CFG.weight_decay, 0.0]
    named = dict(fresh.named_parameters())
    for name, p in model.named_parameters():
        for slot in ("exp_avg", "exp_avg_sq", "step"):
            torch.testing.assert_close(fused.state[named[name]][slot], old.state[p][slot])
    for p in fresh.parameters():
        p.grad = torch.ones_like(p)
    fused.step()  # the fused kernel accepts the restored state


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "dcopilot.engine.training.train", *args]


def test_sigterm_saves_state_and_resume_finishes(tmp_path, manifest):
    # a small corpus slice: 20 train files, 3 held-out ones (the real manifest's entries, so the hashes check)
    train_files = [f for f in manifest["files"] if f["split"] == "train"][:20]
    held = [f for f in manifest["files"] if f["split"] == "heldout"][:3]
    small = dict(manifest, files=train_files + held)
    (tmp_path / "manifest.json").write_text(json.dumps(small))
    run_dir, out = tmp_path / "run", tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    shape = ["--hidden", "32", "--layers", "2", "--experts", "4", "--intermediate", "48", "--moe-intermediate", "16"]
    shape += ["--full-every", "2", "--head-dim", "16", "--global-head-dim", "16", "--vocab-size", "400"]
    args = ["--out", str(out), "--run-dir", str(run_dir), "--manifest", str(tmp_path / "manifest.json"), "--steps"]
    args += ["100000", "--batch-size", "2", "--threads", "1", "--no-compile", *shape]  # compiling: the test above
    proc = subprocess.Popen(_cli(*args), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = run_dir / "train_log.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    settings = read_settings(run_dir)
    step = json.loads((run_dir / "state" / "state.json").read_text())["progress"]["step"]
    assert step >= 3 and '"stopped": true' in output
    assert "--steps" in settings["argv"]
    assert load_model(str(out), device="cpu", dtype=torch.float32).config.hidden_size == 32
    # --resume takes no other option, and a resumed run keeps the run's own settings
    bad = subprocess.run(_cli("--resume", str(run_dir), "--steps", "5"), cwd=ROOT, env=env, capture_output=True)
    assert bad.returncode == 2 and b"takes no other option" in bad.stderr
    # shorten the saved budget so the resumed run ends after two more steps (the test's only edit of a state)
    meta_path = run_dir / "state" / "state.json"
    meta = json.loads(meta_path.read_text())
    argv = meta["settings"]["argv"]
    argv[argv.index("--steps") + 1] = str(step + 2)
    meta_path.write_text(json.dumps(meta))
    done = subprocess.run(
        _cli("--resume", str(run_dir)), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    final = json.loads((run_dir / "state" / "state.json").read_text())["progress"]
    assert final["step"] == step + 2 and final["sessions"] == 2
    assert f"resumed {run_dir} at step {step}" in done.stdout


def _small_manifest(manifest: dict) -> dict:
    files = [f for f in manifest["files"] if f["split"] == "train"][:20]
    return dict(manifest, files=files + [f for f in manifest["files"] if f["split"] == "heldout"][:3])


def test_history_and_stage_of():
    rec = {
        "train_config": {"noise": "mask", "lr": 1e-3, "seed": 5},
        "train_steps": 10,
        "train_tokens": 100,
        "train_minutes": 1.5,
        "threads": 1,
        "corpus": {"kind": "corpus-v2"},
        "command": "python -m x",
    }
    stage = {"noise": "mask", "steps": 10, "tokens": 100, "minutes": 1.5, "threads": 1, "lr": 1e-3, "seed": 5}
    assert stage_of(rec) == {**stage, "corpus": "corpus-v2", "command": "python -m x"}
    assert history(rec) == [stage_of(rec)]  # a record from before stages were carried: that run alone
    assert history({**rec, "stages": [{"steps": 1}, {"steps": 2}]}) == [{"steps": 1}, {"steps": 2}]
    assert stage_of({})["corpus"] == "manifest-v1" and stage_of({})["steps"] == 0


def test_corpus_v2_run_resumes_on_the_same_corpus_only(tmp_path, v2_root, manifest):
    """A run on a corpus v2 root records the root and its manifest's sha256, trains on its train split (the card
    says so, and the checkpoint carries the record), resumes on it, and refuses to resume once it has changed."""
    import shutil

    corpus = tmp_path / "v2"
    shutil.copytree(v2_root, corpus)
    run_dir, out = tmp_path / "run", tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    shape = ["--hidden", "32", "--layers", "2", "--experts", "4", "--intermediate", "48", "--moe-intermediate", "16"]
    shape += ["--full-every", "2", "--head-dim", "16", "--global-head-dim", "16", "--vocab-size", "400"]
    args = ["--out", str(out), "--run-dir", str(run_dir), "--corpus", str(corpus), "--steps", "2"]
    first = subprocess.run(
        _cli(*args, "--batch-size", "2", "--no-compile", *shape), cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert first.returncode == 0, first.stdout + first.stderr
    record = json.loads((out / "corpus.json").read_text())
    assert record["root"] == str(corpus.resolve()) and len(record["manifest_sha256"]) == 64
    assert not (out / "corpus_manifest.json").exists()
    card = json.loads((out / "config.json").read_text())["dcopilot"]["training"]
    trained_on = card["corpus"]
    assert card["language_shares"] == {"python": 1.0} and card["train_config"]["language_alpha"] == 1.0
    assert trained_on["kind"] == "corpus-v2" and trained_on["summary"]["train"]["python"]["files"] == 12
    assert trained_on["summary"]["heldout"]["python"]["files"] == 3
    meta_path = run_dir / "state" / "state.json"
    meta = json.loads(meta_path.read_text())
    argv = meta["settings"]["argv"]
    argv[argv.index("--steps") + 1] = "3"  # one more step
    meta_path.write_text(json.dumps(meta))
    again = subprocess.run(_cli("--resume", str(run_dir)), cwd=ROOT, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and f"resumed {run_dir} at step 2" in again.stdout, again.stdout + again.stderr
    # the corpus changes under the run: resuming is refused with the reason, nothing is trained
    with (corpus / "manifest.jsonl").open("a") as f:
        f.write("\n")
    refused = subprocess.run(_cli("--resume", str(run_dir)), cwd=ROOT, env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "missing or has changed" in refused.stderr, refused.stderr
    assert json.loads(meta_path.read_text())["progress"]["step"] == 3
    # a run continued from that checkpoint (on the v1 manifest) carries its history and compute forward
    first_record = json.loads((out / "config.json").read_text())["dcopilot"]["training"]
    assert [s["steps"] for s in first_record["stages"]] == [3]
    (tmp_path / "manifest.json").write_text(json.dumps(_small_manifest(manifest)))
    args = ["--out", str(tmp_path / "out2"), "--run-dir", str(tmp_path / "run2"), "--init-from", str(out)]
    args += ["--corpus", str(tmp_path / "manifest.json"), "--tokenizer", str(out / "tokenizer.json"), "--steps", "1"]
    second = subprocess.run(
        _cli(*args, "--batch-size", "2", "--no-compile", *shape), cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert second.returncode == 0, second.stdout + second.stderr
    record = json.loads((tmp_path / "out2" / "config.json").read_text())["dcopilot"]["training"]
    assert [(s["steps"], s["corpus"]) for s in record["stages"]] == [(3, "corpus-v2"), (1, "manifest-v1")]
    assert record["cumulative"]["tokens"] == first_record["cumulative"]["tokens"] + record["train_tokens"]


def test_language_alpha_outside_zero_to_one_is_refused_before_anything_runs(tmp_path):
    args = ["--out", str(tmp_path / "out"), "--run-dir", str(tmp_path / "run"), "--language-alpha", "1.5"]
    refused = subprocess.run(_cli(*args), cwd=ROOT, capture_output=True, text=True)
    assert (
        refused.returncode == 2 and "--language-alpha: language_alpha must be in [0, 1], not 1.5" in refused.stderr
    ), refused.stderr
    assert not (tmp_path / "run").exists()


def test_compile_without_a_cpp_compiler_is_refused_with_the_way_out(tmp_path):
    args = ["--out", str(tmp_path / "out"), "--run-dir", str(tmp_path / "run")]
    env = {k: v for k, v in os.environ.items() if k != "CXX"} | {"PATH": str(tmp_path)}  # no g++ or clang++ there
    refused = subprocess.run(_cli(*args), cwd=ROOT, env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "--compile needs a C++ compiler" in refused.stderr, refused.stderr
    assert "--no-compile" in refused.stderr and not (tmp_path / "run").exists()

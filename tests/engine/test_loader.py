"""Loading from real safetensors files in the checkpoint layout, and every way a checkpoint can be wrong."""

import json
import shutil

import pytest
import torch
from dcopilot.engine.runtime.loader import (
    ModelLoadError,
    inspect_checkpoint,
    load_model,
    open_safetensors,
    resolve_model_path,
)
from safetensors.torch import load_file, save_file


@pytest.fixture
def ckpt(reference_checkpoint, tmp_path):
    dst = tmp_path / "ckpt"
    shutil.copytree(reference_checkpoint, dst)
    return dst


def test_loads_text_weights_and_configs(reference_checkpoint):
    model = load_model(reference_checkpoint, dtype=torch.float32)
    assert model.canvas_length == 6
    assert model.stop_ids == (1, 3)  # generation_config's eos list, not a literal
    assert model.generation.max_denoising_steps == 48 and model.generation.entropy_bound == 0.1
    assert model.tokenizer.special_id("<eos>") == 1
    names = {n for n, _ in model.named_parameters()}
    assert not any("vision" in n for n in names)


def test_bfloat16_load(reference_checkpoint):
    model = load_model(reference_checkpoint, dtype="bfloat16")
    assert model.embed_tokens.weight.dtype == torch.bfloat16
    with torch.no_grad():
        logits = model.denoise(torch.tensor([[5, 6, 7]]), model.encode(torch.tensor([[2, 9, 10]])))
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()


def test_sharded_checkpoint(ckpt):
    tensors = load_file(ckpt / "model.safetensors")
    names = sorted(tensors)
    half = len(names) // 2
    parts = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    for file, keys in parts.items():
        save_file({k: tensors[k] for k in keys}, ckpt / file)
    (ckpt / "model.safetensors").unlink()
    index = {"metadata": {}, "weight_map": {k: f for f, ks in parts.items() for k in ks}}
    (ckpt / "model.safetensors.index.json").write_text(json.dumps(index))
    model = load_model(ckpt)
    assert inspect_checkpoint(ckpt).ok
    assert model.embed_tokens.weight.shape == (128, 32)


def test_missing_tensor_is_named(ckpt):
    tensors = load_file(ckpt / "model.safetensors")
    del tensors["model.decoder.layers.2.self_attn.q_proj.weight"]
    save_file(tensors, ckpt / "model.safetensors")
    with pytest.raises(
        ModelLoadError, match=r"model\.safetensors: missing tensor model\.decoder\.layers\.2\.self_attn\.q_proj"
    ):
        load_model(ckpt)
    assert any("layers.2.self_attn.q_proj" in p for p in inspect_checkpoint(ckpt).problems)


def test_wrong_shape_is_named(ckpt):
    tensors = load_file(ckpt / "model.safetensors")
    tensors["model.decoder.norm.weight"] = torch.ones(31)
    save_file(tensors, ckpt / "model.safetensors")
    with pytest.raises(ModelLoadError, match=r"model\.decoder\.norm\.weight has shape \[31\], expected \[32\]"):
        load_model(ckpt)


def test_unknown_architecture(ckpt):
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["architectures"], cfg["model_type"] = ["LlamaForCausalLM"], "llama"
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match=r"config\.json: unknown architecture"):
        load_model(ckpt)
    assert not inspect_checkpoint(ckpt).ok


def test_pickle_weights_refused(ckpt):
    (ckpt / "model.safetensors").unlink()
    (ckpt / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelLoadError, match=r"only safetensors.*pytorch_model\.bin"):
        load_model(ckpt)


def test_corrupt_weights(ckpt):
    (ckpt / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match=r"model\.safetensors: corrupt safetensors"):
        load_model(ckpt)


def test_truncated_weights(ckpt):
    data = (ckpt / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(data[: len(data) - 100])
    with pytest.raises(ModelLoadError, match=r"model\.safetensors: corrupt safetensors"):
        load_model(ckpt)


def test_errors_inside_the_file_block_are_not_blamed_on_the_file(ckpt):
    # Placing a tensor on a device can fail (out of memory, no such device): the message must not call the
    # weights corrupt, or the user deletes a good file.
    with pytest.raises(ValueError, match="placing failed"), open_safetensors(ckpt / "model.safetensors") as f:
        assert f.tensor(f.keys()[0]).numel() > 0
        raise ValueError("placing failed")


def test_a_cuda_device_this_machine_lacks_is_named_not_the_weights(reference_checkpoint):
    absent = f"cuda:{torch.cuda.device_count()}"  # one past the last visible device: none on a CPU machine
    with pytest.raises(ModelLoadError, match=rf"^{absent}: no (such )?CUDA device here .*model\.device = \"cpu\""):
        load_model(reference_checkpoint, device=absent)


def test_missing_tokenizer(ckpt):
    (ckpt / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match=r"tokenizer\.json: missing"):
        load_model(ckpt)


def test_missing_directory(tmp_path):
    with pytest.raises(ModelLoadError, match="no such checkpoint directory"):
        load_model(tmp_path / "nope")


def test_repo_id_from_local_hf_cache(reference_checkpoint, tmp_path, monkeypatch):
    repo = tmp_path / "hub" / "models--google--diffusiongemma-26B-A4B-it"
    snap = repo / "snapshots" / "abc123"
    shutil.copytree(reference_checkpoint, snap)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert resolve_model_path("google/diffusiongemma-26B-A4B-it") == snap
    assert load_model("google/diffusiongemma-26B-A4B-it").canvas_length == 6
    with pytest.raises(ModelLoadError, match="never downloads"):
        resolve_model_path("google/other-model")

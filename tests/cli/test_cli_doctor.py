"""doctor, models and bench through the real entry point, on this machine (CUDA hidden) and tiny real checkpoints."""

import re


def _row(stdout: str, check: str) -> tuple[str, str]:
    """(status, result) of the first table row named `check`."""
    for line in stdout.splitlines():
        found = re.match(rf"(ok|FAIL|warn)?\s+{re.escape(check)}\s+(.*)", line)
        if found:
            return found[1] or "", found[2]
    raise AssertionError(f"no {check!r} row in:\n{stdout}")


def test_doctor_missing_model(dcopilot, tmp_path):
    missing = tmp_path / "no-such-model"
    result = dcopilot("doctor", "--model", str(missing))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert _row(result.stdout, "python")[0] == "ok"
    assert _row(result.stdout, "torch")[1].startswith("2.")
    assert _row(result.stdout, "cuda devices")[1].startswith("none")
    assert _row(result.stdout, "device") == ("ok", "auto -> cpu")
    assert "not needed" in _row(result.stdout, "bitsandbytes")[1]
    status, text = _row(result.stdout, "model")
    assert status == "FAIL" and f"{missing}: no such checkpoint directory" in text
    assert "dcopilot cannot serve yet: model:" in result.stdout


def test_doctor_cuda_requested_without_gpu(dcopilot, tmp_path):
    result = dcopilot("doctor", "--model", str(tmp_path), "--device", "cuda:64")
    assert result.returncode == 1
    status, text = _row(result.stdout, "device")
    assert status == "FAIL"
    assert text.startswith("cuda:64: no ") and "CUDA device here (" in text
    assert text.endswith('(set model.device = "cpu" or "auto")')


def test_doctor_checks_bitsandbytes_when_quantizing(dcopilot, tmp_path):
    result = dcopilot("doctor", "--model", str(tmp_path), "--quantize", "nf4")
    status, text = _row(result.stdout, "bitsandbytes")
    assert (status, text.split()[1:]) == ("ok", ["imports;", "used", "for", "nf4"])


def test_doctor_reports_bad_config_in_the_table(dcopilot, tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text("[server]\nlog_level = 'loud'\n")
    result = dcopilot("--config", str(bad), "doctor")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    status, text = _row(result.stdout, "config")
    assert status == "FAIL" and text.startswith(f"{bad}:2: server.log_level: Invalid enum value 'loud'")


def test_doctor_not_a_checkpoint(dcopilot, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "pytorch_model.bin").write_bytes(b"\x80\x04")
    result = dcopilot("doctor", "--model", str(tmp_path / "empty"))
    assert result.returncode == 1
    assert _row(result.stdout, "checkpoint")[0] == "FAIL"
    assert _row(result.stdout, "tokenizer")[0] == "FAIL"


def test_doctor_servable_checkpoint_exits_zero(dcopilot, tiny_checkpoint):
    result = dcopilot("doctor", "--model", str(tiny_checkpoint))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    assert _row(result.stdout, "checkpoint")[1].startswith("DiffusionGemmaForBlockDiffusion, ")
    assert _row(result.stdout, "tokenizer") == ("ok", "loads")
    assert f"dcopilot can serve {tiny_checkpoint}." in result.stdout
    # no score fit of its own: it serves, ungated, and the row says how to fit one
    status, text = _row(result.stdout, "score fit")
    assert status == "warn" and text.startswith(f"{tiny_checkpoint} has no score fit of its own (score_fit.json)")


def test_doctor_score_fit_rows(dcopilot, tiny_checkpoint, tmp_path):
    import shutil

    from dcopilot.engine.runtime.loader import EMBEDDED_DIR

    assert _row(dcopilot("doctor").stdout, "score fit") == (
        "ok",
        f"{EMBEDDED_DIR / 'score_fit.json'}: completion.min_score gates this model's completions",
    )
    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, broken)
    (broken / "score_fit.json").write_text('{"weights": {"confidence": 1.0}, "bias": 0}')
    result = dcopilot("doctor", "--model", str(broken))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    status, text = _row(result.stdout, "score fit")
    assert status == "FAIL" and text.startswith(f"{broken / 'score_fit.json'}: not a score fit (fitted for other")
    # serving it fails the same way, before any request: a corrupt fit is not silently replaced by another
    src = tmp_path / "m.py"
    src.write_text("x = 1\n")
    r = dcopilot("complete", str(src), "--line", "1", "--col", "5", "--model", str(broken))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "cannot load the model: " in r.stderr and "not a score fit" in r.stderr


def test_doctor_corrupt_weights(dcopilot, tiny_checkpoint, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_checkpoint, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    result = dcopilot("doctor", "--model", str(broken))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert _row(result.stdout, "checkpoint")[0] == "FAIL"
    assert f"{weights}: corrupt safetensors file" in result.stdout


def test_models_lists_cache_without_network(dcopilot, hf_cache):
    result = dcopilot("models", "--model", "tiny-org/diffusiongemma-tiny")
    assert result.returncode == 0, result.stderr
    snapshot = hf_cache / "models--tiny-org--diffusiongemma-tiny" / "snapshots" / "0123abcd"
    assert f"configured      tiny-org/diffusiongemma-tiny -> {snapshot}" in result.stdout
    assert f"Hugging Face cache {hf_cache}: 1 DiffusionGemma-like checkpoint\n" in result.stdout
    assert "  tiny-org/diffusiongemma-tiny\n" in result.stdout
    assert "DiffusionGemmaForBlockDiffusion (2 layers, 32 hidden, 4 experts)" in result.stdout
    assert "llama" not in result.stdout.lower()


def test_models_names_unmerged_revisions(dcopilot, hf_cache):
    (hf_cache / "models--tiny-org--diffusiongemma-tiny" / "refs" / "main").write_text("ffff")
    result = dcopilot("models")
    assert "  tiny-org/diffusiongemma-tiny@0123abcd\n" in result.stdout
    assert "embedded model  " in result.stdout


def test_models_repo_missing_from_cache(dcopilot, hf_cache):
    result = dcopilot("models", "--model", "google/not-downloaded")
    assert result.returncode == 0
    assert (
        "google/not-downloaded -> unusable: google/not-downloaded: not found in the local Hugging Face cache"
        in result.stdout
    )


def test_bench_on_tiny_checkpoint(dcopilot, tiny_checkpoint):
    result = dcopilot("bench", "--model", str(tiny_checkpoint), "--repeats", "2", "--prompt-tokens", "8")
    assert result.returncode == 0, result.stderr
    for label in ("hardware", "software", "settings", "load", "encode", "denoise", "complete"):
        assert re.search(rf"^{label}\s+\S", result.stdout, re.M), f"no {label} line:\n{result.stdout}"
    assert "canvas 16 tokens x 2 hypotheses" in result.stdout  # completion.max_tokens and .hypotheses: CPU's
    assert re.search(r"complete\s+\d+ ms, [1-4] steps", result.stdout)  # max_denoising_steps is 4


def test_bench_missing_model(dcopilot, tmp_path):
    result = dcopilot("bench", "--model", str(tmp_path / "nothing"))
    assert result.returncode == 1
    assert "dcopilot bench: cannot load the model: " in result.stderr
    assert "no such checkpoint directory" in result.stderr and "Traceback" not in result.stderr


def test_complete_on_a_cuda_device_this_machine_lacks(dcopilot, tiny_checkpoint, tmp_path):
    # The device is named as the problem, not the weights ("corrupt safetensors file" sent users to delete them).
    src = tmp_path / "f.py"
    src.write_text("def f():\n    return 1\n")
    result = dcopilot(
        "complete", str(src), "--line", "2", "--col", "5", "--model", str(tiny_checkpoint), "--device", "cuda:64"
    )
    assert result.returncode == 1
    assert "dcopilot: cannot load the model: cuda:64: no " in result.stderr
    assert "corrupt" not in result.stderr and "Traceback" not in result.stderr

"""The Neovim plugin with the real embedded model behind `dcopilot serve` (no deterministic stand-in).

Skipped until the embedded model is built (engine/embedded/model.safetensors)."""

import json

import pytest

from editors_harness import HERE, ROOT, run_scenario

MODEL = ROOT / "engine" / "embedded" / "model.safetensors"


@pytest.mark.skipif(not MODEL.exists(), reason="embedded model not built yet (engine/embedded/model.safetensors)")
@pytest.mark.timeout(320)
def test_nvim_with_real_model(nvim, dcopilot_cmd, tmp_path):
    env = {"DCOPILOT_TEST_CMD": json.dumps(dcopilot_cmd + ["serve", "--device", "cpu"]), "OMP_NUM_THREADS": "2"}
    outcome = run_scenario(nvim, HERE / "nvim" / "model_spec.lua", tmp_path, env, timeout=300)
    assert outcome.ok, f"{outcome.error}\n{outcome.log}"

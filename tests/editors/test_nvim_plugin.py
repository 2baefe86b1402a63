"""The Neovim plugin in a headless Neovim against the real `dcopilot serve` (deterministic backend)."""

import json

from editors_harness import HERE, ROOT, run_scenario


def test_nvim_plugin_with_server(nvim, dcopilot_cmd, tmp_path):
    env = {
        "DCOPILOT_TEST_SERVICE": "editors_backend:make",
        "PYTHONPATH": f"{HERE}:{ROOT}",
        "DCOPILOT_TEST_CMD": json.dumps([*dcopilot_cmd, "serve"]),
    }
    outcome = run_scenario(nvim, HERE / "nvim" / "plugin_spec.lua", tmp_path, env, timeout=120)
    assert outcome.ok, f"{outcome.error}\n{outcome.log}"

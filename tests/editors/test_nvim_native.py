"""The Neovim plugin on Neovim 0.12, where core's vim.lsp.inline_completion draws the ghost text, against the
real `dcopilot serve` (deterministic backend). Neovim 0.12 comes from .ci/editors.sh; missing, the test fails."""

import json

import real_editors
from editors_harness import HERE, ROOT, run_scenario


def test_nvim_012_native_inline_completion(dcopilot_cmd, tmp_path):
    env = {
        "DCOPILOT_TEST_SERVICE": "editors_backend:make",
        "PYTHONPATH": f"{HERE}:{ROOT}",
        "DCOPILOT_TEST_CMD": json.dumps([*dcopilot_cmd, "serve"]),
    }
    outcome = run_scenario(real_editors.nvim_012(), HERE / "nvim" / "native_spec.lua", tmp_path, env, timeout=120)
    assert outcome.ok, f"{outcome.error}\n{outcome.log}"

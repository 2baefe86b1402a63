"""Table tests of the Neovim plugin's pure Lua (text helpers, option validation), run in `nvim -l`."""

import subprocess

from editors_harness import HERE, PLUGIN


def test_nvim_pure_lua(nvim, tmp_path):
    script = HERE / "nvim" / "units_spec.lua"
    proc = subprocess.run(
        [nvim, "--clean", "--cmd", f"set rtp^={PLUGIN}", "-l", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")

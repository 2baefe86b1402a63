"""The VS Code extension's own checks, run from the project's test command: unit tests in Node (no VS Code;
test_vscode_real.py runs the package in a real one), the type-checked bundle, and the .vsix package."""

import json
import os
import shutil
import subprocess
import zipfile

import pytest

from editors_harness import HERE, ROOT

EXT = ROOT / "editors" / "vscode"

pytestmark = pytest.mark.skipif(shutil.which("npm") is None, reason="npm (Node 20+) not installed")


def npm(*args: str, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["npm", *args],
        cwd=EXT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, f"npm {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.mark.timeout(900)
def test_vscode_extension_tests_build_and_package(dcopilot_cmd, tmp_path):
    if not (EXT / "node_modules").is_dir():
        npm("ci", "--no-audit", "--no-fund", timeout=600)
    # src/test/server.test.ts talks to the real server, with the deterministic backend of the nvim tests.
    server = {
        "DCOPILOT_TEST_CMD": json.dumps([*dcopilot_cmd, "serve"]),
        "DCOPILOT_TEST_SERVICE": "editors_backend:make",
        "PYTHONPATH": f"{HERE}:{ROOT}",
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    out = npm("test", timeout=180, env=server).stdout
    assert "# fail 0" in out and "# skipped 0" in out and "# pass 0" not in out, out[-2000:]
    npm("run", "package", timeout=300)  # type-check + bundle + vsce
    with zipfile.ZipFile(EXT / "dcopilot.vsix") as vsix:
        names = set(vsix.namelist())
    assert {"extension/package.json", "extension/out/extension.js"} <= names, names
    assert not any("node_modules" in n or n.endswith(".ts") for n in names), names

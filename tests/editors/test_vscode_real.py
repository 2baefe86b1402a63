"""The VS Code extension in a real VS Code (code-server 4.139.1 = VS Code 1.139.1), installed from the .vsix
that `npm run package` builds, with `dcopilot serve` running the embedded model on the CPU.

What a user does and sees: open a Python file, the status item goes from starting/loading to ready (no popups),
type, ghost text appears, Tab accepts exactly that text, save puts it on disk; "Rewrite selection" shows a
diff preview and Apply puts exactly the previewed text in the file; a wrong model path turns the status item to
an error. The embedded model is weak, so the test types at a few spots and uses the first where ghost text
shows (none anywhere fails: a real regression). Screenshots of each step are kept under the test's tmp folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import real_editors
from editors_harness import ROOT
from vscode_session import Page, VSCode

EXT = ROOT / "editors" / "vscode"
MODEL = ROOT / "engine" / "embedded" / "model.safetensors"

FIXTURE = [
    "import os",
    "",
    "",
    "def add(a, b):",
    "    return a + b",
    "",
    "",
    "def is_even(n):",
    "    return",
    "",
    "",
    "def read_text(path):",
    "    with open(path) as f:",
    "        return f",
    "",
    "",
    "def main()",
    "    name = os.path",
    "    print(",
]
# (0-based line, what the user types at its end): spots where code is clearly missing once that is typed.
SPOTS = [(8, " "), (13, "."), (17, "."), (16, ":")]


@pytest.fixture(scope="module")
def vsix(tmp_path_factory) -> Path:
    """The extension exactly as shipped: `npm run package` (type-check, bundle, vsce)."""
    npm = shutil.which("npm")
    assert npm, "npm (Node 20+) not found: it builds the extension (apt-get install nodejs npm)"
    steps = ([] if (EXT / "node_modules").is_dir() else [["ci", "--no-audit", "--no-fund"]]) + [["run", "package"]]
    for args in steps:
        proc = subprocess.run([npm, *args], cwd=EXT, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, f"npm {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    out = tmp_path_factory.mktemp("vsix") / "dcopilot.vsix"
    shutil.copy(EXT / "dcopilot.vsix", out)
    return out


@pytest.fixture(scope="module")
def browser():
    sync_playwright = real_editors.playwright_sync()
    executable = real_editors.chromium()
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def settings(dcopilot: str, **extra) -> dict:
    return {
        "dcopilot.server.path": dcopilot,
        "dcopilot.model.device": "cpu",
        # Smaller runs keep the test short on a shared CPU; the plumbing under test is the same.
        "dcopilot.maxTokens": 16,
        "dcopilot.hypotheses": 1,
        "dcopilot.debounceMs": 20,
        # Tab must go to the ghost text, not to a completion menu that "." or ":" might open.
        "editor.quickSuggestions": {"other": False, "comments": False, "strings": False},
        "editor.suggestOnTriggerCharacters": False,
        "editor.wordBasedSuggestions": "off",
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "chat.disableAIFeatures": True,
        "extensions.ignoreRecommendations": True,
        "telemetry.telemetryLevel": "off",
        **extra,
    }


def _dcopilot_exe() -> str:
    exe = Path(sys.executable).parent / "dcopilot"
    assert exe.exists(), f"{exe} missing: install the package (pip install -e '.[dev]')"
    return str(exe)


@pytest.mark.skipif(not MODEL.exists(), reason="embedded model not built (engine/embedded/model.safetensors)")
@pytest.mark.timeout(900)
def test_vscode_with_the_real_server(vsix, browser, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    ws = tmp_path / "ws"
    ws.mkdir()
    demo = ws / "demo.py"
    demo.write_text("\n".join(FIXTURE) + "\n")
    serve_log = tmp_path / "serve.log"
    env = {
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),  # no user config.toml
        "DCOPILOT_SERVER_LOG_FILE": str(serve_log),
        "DCOPILOT_SERVER_LOG_LEVEL": "debug",
        "OMP_NUM_THREADS": "2",
    }
    vscode = VSCode(tmp_path, vsix, settings(_dcopilot_exe()), env)
    page = None
    try:
        page = Page(browser, vscode.start(ws), shots)
        page.shot("workbench")
        page.open_file("demo.py")
        page.shot("opened")
        ready = page.wait_status("ready", 240)
        page.shot("ready")
        states = page.states()
        assert any("starting" in s or "loading" in s for s in states[: states.index(ready)]), states
        assert "cpu" in ready, ready
        popups = page.notifications()
        assert not popups, f"popups at start-up: {popups}"

        lines = list(FIXTURE)
        shown = ""
        tried = []
        for line, typed in SPOTS:
            page.goto_line_end(line)
            page.page.keyboard.type(typed)
            lines[line] += typed
            deadline = time.monotonic() + 20
            while not (shown := page.ghost_text()) and time.monotonic() < deadline:
                time.sleep(0.2)
            tried.append((line, typed, shown))
            if shown:
                break
            page.page.keyboard.press("Escape")
        page.shot("ghost-text")
        assert shown, f"no ghost text at any spot {tried} (model-quality regression?)"
        assert "\n" not in shown or lines[line].strip(), shown

        page.page.keyboard.press("Tab")
        first, *rest = shown.split("\n")
        lines[line : line + 1] = [lines[line] + first, *rest]
        _wait(lambda: page.ghost_text() != shown, "the accepted ghost text to go")
        page.shot("accepted")
        page.page.keyboard.press("Control+s")
        expected = "\n".join(lines) + "\n"
        _wait(lambda: demo.read_text() == expected, f"the file on disk to be\n{expected}\nit is\n{demo.read_text()}")
        page.shot("saved")

        _rewrite(page, demo)

        # A wrong model path: the server fails to load it, the status item says so.
        vscode.write_settings(settings(_dcopilot_exe(), **{"dcopilot.model.path": str(tmp_path / "no-such-model")}))
        restart = page.page.get_by_role("button", name="Restart")
        restart.wait_for(timeout=30_000)
        page.shot("restart-asked")
        restart.click()
        error = page.wait_status("error", 120)
        page.shot("error")
        assert "no-such-model" in error or "not found" in error.lower() or "no such" in error.lower(), error
    except BaseException as exc:
        if page:
            try:
                page.shot("failure")
            except Exception:
                pass
        listing = "\n".join(str(p) for p in (page.shots if page else []))
        log = serve_log.read_text(errors="replace")[-3000:] if serve_log.exists() else "(no server log)"
        raise AssertionError(
            f"{exc}\nscreenshots:\n{listing}\nstatus states: {page.states() if page else []}\n"
            f"server log (tail):\n{log}\ncode-server log (tail):\n{vscode.log_tail()}"
        ) from exc
    finally:
        if page:
            page.context.close()
        vscode.stop()


def _rewrite(page: Page, demo: Path) -> None:
    """Select `def add` and rewrite it: a diff preview, then Apply puts exactly the previewed text in the file."""
    keys = page.page.keyboard
    page.goto_line_end(3)
    keys.press("Home")
    keys.press("Shift+ArrowDown")
    keys.press("Shift+End")
    keys.press("Control+Alt+r")
    page.page.wait_for_selector(".quick-input-widget input", state="visible", timeout=30_000)
    page.shot("rewrite-instruction")
    keys.press("Enter")
    diff = page.page.locator(".monaco-diff-editor")
    no_change = page.page.locator(".notification-toast", has_text="no change")
    _wait(lambda: diff.count() > 0 or no_change.count() > 0, "the rewrite preview", timeout_s=180)
    page.shot("rewrite-preview")
    if no_change.count():
        pytest.fail(f"the model proposed no change for the selection: {page.notifications()}")
    apply = page.page.get_by_role("button", name="Apply")
    apply.wait_for(timeout=30_000)
    proposed = page.page.evaluate(
        """() => [...document.querySelectorAll('.monaco-diff-editor .editor.modified .view-line')]
             .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top))
             .map(e => e.textContent).join('\\n')"""
    ).replace("\u00a0", " ")
    before = demo.read_text()
    apply.click()
    _wait(lambda: diff.count() == 0, "the preview to close")
    page.page.keyboard.press("Control+s")
    _wait(lambda: demo.read_text() != before, "the rewrite saved to disk")
    page.shot("rewrite-applied")
    assert demo.read_text().rstrip("\n") == proposed.rstrip("\n"), (demo.read_text(), proposed)


def _wait(condition, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)

"""A real VS Code (code-server) with the packaged extension, shown in Chromium and driven through playwright.

Each step can be photographed (`shot`); the PNG paths are listed in a failing test's message."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import real_editors

# Every change of the status item's accessible label (what a screen reader says: the server's state), from the
# first paint on, so a state shorter than one poll is still seen.
_RECORD_STATUS = """
window.__dcopilotStates = [];
new MutationObserver(() => {
  const item = document.getElementById('dcopilot.dcopilot');
  const label = item && (item.querySelector('[aria-label]') || item).getAttribute('aria-label');
  const seen = window.__dcopilotStates;
  if (label && seen[seen.length - 1] !== label) seen.push(label);
}).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['aria-label'] });
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VSCode:
    """code-server on a loopback port with its own user data and extensions folders under `tmp`."""

    def __init__(self, tmp: Path, vsix: Path, settings: dict, env: dict[str, str]):
        self.tmp = tmp
        self.exe, node = real_editors.code_server()
        self.env = {**os.environ, **env, "PATH": f"{node}:{os.environ['PATH']}"}
        self.data = tmp / "vscode-user"
        self.extensions = tmp / "vscode-extensions"
        self.shots: list[Path] = []
        self.proc: subprocess.Popen | None = None
        (self.data / "User").mkdir(parents=True, exist_ok=True)
        self.write_settings(settings)
        installed = subprocess.run(
            [str(self.exe), "--install-extension", str(vsix), "--extensions-dir", str(self.extensions),
             "--user-data-dir", str(self.data)],
            capture_output=True, text=True, env=self.env, timeout=180, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert installed.returncode == 0, f"installing {vsix} failed:\n{installed.stdout}\n{installed.stderr}"

    def write_settings(self, settings: dict) -> None:
        (self.data / "User" / "settings.json").write_text(json.dumps(settings, indent=2))

    def start(self, folder: Path) -> str:
        port = free_port()
        self.log = (self.tmp / "code-server.log").open("w")
        self.proc = subprocess.Popen(
            [str(self.exe), "--bind-addr", f"127.0.0.1:{port}", "--auth", "none", "--disable-telemetry",
             "--disable-update-check", "--disable-workspace-trust", "--disable-getting-started-override",
             "--extensions-dir", str(self.extensions), "--user-data-dir", str(self.data), str(folder)],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=2).read()
                return f"{url}/?folder={folder}"
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"code-server did not come up:\n{self.log_tail()}") from None
                time.sleep(0.5)

    def log_tail(self) -> str:
        path = self.tmp / "code-server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"

    def stop(self) -> None:
        # code-server forks an extension host and watchers: end the whole process group.
        if self.proc and self.proc.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=10)
                    break
                except subprocess.TimeoutExpired:
                    continue


def server_commands(marker: str) -> list[list[str]]:
    """Command lines of the running processes whose environment holds `marker` (e.g. this test's log path):
    the `dcopilot serve` that the extension started, as VS Code launched it."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
                if "serve" in argv:
                    found.append(argv)
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


class Page:
    """The browser tab showing VS Code, with the few user actions the tests need."""

    def __init__(self, browser, url: str, shots_dir: Path):
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.context.add_init_script(_RECORD_STATUS)
        self.page = self.context.new_page()
        self.shots_dir = shots_dir
        self.shots: list[Path] = []
        self.page.goto(url)
        self.page.wait_for_selector(".monaco-workbench", timeout=120_000)

    def shot(self, name: str) -> Path:
        path = self.shots_dir / f"{len(self.shots) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path))
        self.shots.append(path)
        return path

    def states(self) -> list[str]:
        return self.page.evaluate("window.__dcopilotStates || []")

    def status(self) -> str:
        states = self.states()
        return states[-1] if states else ""

    def wait_status(self, word: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if word in self.status():
                return self.status()
            time.sleep(0.2)
        raise AssertionError(f"the status item never said {word!r}; it said, in order: {self.states()}")

    def open_file(self, name: str) -> None:
        row = self.page.locator(f'.explorer-folders-view .monaco-list-row[aria-label^="{name}"]').first
        row.wait_for(timeout=60_000)
        row.dblclick()
        self.page.wait_for_selector(f'.tab[aria-label^="{name}"]', timeout=30_000)
        self.page.locator(".editor-instance .monaco-editor .view-lines").first.click()

    def set_setting(self, key: str, value: str) -> None:
        """Type `value` into the setting `key` in the Settings editor (Ctrl+,), then leave the field."""
        keys = self.page.keyboard
        keys.press("Control+Comma")
        self.page.locator(".settings-editor .suggest-input-container").first.wait_for(timeout=30_000)
        keys.type(key)
        field = self.page.locator(".settings-editor .setting-item input").first
        field.wait_for(timeout=30_000)
        self.shot("settings")
        deadline = time.monotonic() + 30
        while not field.evaluate("e => e === document.activeElement"):  # the list re-renders while it filters
            assert time.monotonic() < deadline, f"could not focus the field of {key}"
            field.click()
            time.sleep(0.3)
        keys.type(value)
        keys.press("Tab")

    def goto_line_end(self, line: int) -> None:
        """Cursor at the end of 0-based `line` of the active editor."""
        keys = self.page.keyboard
        keys.press("Control+Home")
        for _ in range(line):
            keys.press("ArrowDown")
        keys.press("End")

    def ghost_text(self) -> str:
        """The ghost text on screen ('' when none): the cursor line's part, then any further lines."""
        # The cursor line's part can come as several decorations (VS Code colours ghost text token by token):
        # they join without a break; each further line is one view line.
        inline = self.page.eval_on_selector_all(
            ".monaco-editor .ghost-text-decoration", "els => els.map(e => e.textContent)"
        )
        below = self.page.eval_on_selector_all(
            ".monaco-editor .ghost-text .view-line", "els => els.map(e => e.textContent)"
        )
        return "\n".join(["".join(inline), *below] if below else ["".join(inline)]).replace("\u00a0", " ")

    def notifications(self) -> list[str]:
        toasts = self.page.locator(".notification-toast .notification-list-item-message")
        return [text.replace("\u00a0", " ") for text in toasts.all_inner_texts()]

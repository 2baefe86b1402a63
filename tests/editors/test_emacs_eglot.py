"""The Emacs/eglot snippet of editors/README.md, run verbatim in a batch Emacs against `dcopilot serve`
(deterministic backend). Fails, saying so, where Emacs with eglot is missing: `bash .ci/editors.sh` installs it
(Debian: emacs-nox elpa-eglot)."""

import json
import os
import re
import shutil
import subprocess

import pytest

from editors_harness import HERE, ROOT

README = ROOT / "editors" / "README.md"


def _eglot_available() -> bool:
    if shutil.which("emacs") is None:
        return False
    probe = subprocess.run(["emacs", "--batch", "--eval", "(require 'eglot)"], capture_output=True, timeout=60)
    return probe.returncode == 0


def _snippet() -> str:
    section = README.read_text().split("## Emacs", 1)[1]
    return re.search(r"```elisp\n(.*?)```", section, re.S)[1]


@pytest.fixture(scope="module")
def results(tmp_path_factory, dcopilot_cmd):
    if not _eglot_available():
        pytest.fail(
            "Emacs with eglot not found; install it with `bash .ci/editors.sh` (Debian: emacs-nox elpa-eglot)",
            pytrace=False,
        )
    tmp = tmp_path_factory.mktemp("eglot")
    (tmp / "snippet.el").write_text(_snippet())
    if not dcopilot_cmd[0].endswith("dcopilot"):
        pytest.skip("the snippet runs a `dcopilot` executable; none is installed")
    bin_dir = os.path.dirname(dcopilot_cmd[0])
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",  # the snippet runs plain `dcopilot`
        "DCOPILOT_TEST_SERVICE": "editors_backend:make",
        "PYTHONPATH": f"{HERE}:{ROOT}",
        "XDG_CONFIG_HOME": str(tmp),
        "HOME": str(tmp),
        "DCOPILOT_SNIPPET": str(tmp / "snippet.el"),
        "DCOPILOT_TEST_DIR": str(tmp),
    }
    proc = subprocess.run(
        ["emacs", "--batch", "-l", str(HERE / "emacs" / "eglot_check.el")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    found = dict(re.findall(r"^RESULT (\S+) (.*)$", proc.stdout, re.M))
    assert proc.returncode == 0 and "rewritten" in found, proc.stdout[-3000:] + proc.stderr[-3000:]
    return found


def test_eglot_starts_the_server(results):
    assert results["server"] == '"dcopilot"'


def test_eglot_lists_suggestions_in_completion(results):
    assert '"_value = 1"' in results["after-space"]


def test_eglot_applies_the_rewrite_code_action(results):
    assert json.loads(results["rewritten"]) == "def bar(a, b):\n    ret"


def test_eglot_keeps_suggestions_after_a_partial_word(results):
    # The item repeats the typed `ret` (its edit replaces it), so Emacs' own filtering keeps it.
    assert '"return a + b"' in results["after-word"]

"""The deterministic backend of tests/lsp/det_backend.py with the answers the editor-client tests assert.

`dcopilot serve` loads it with DCOPILOT_TEST_SERVICE=editors_backend:make (PYTHONPATH=tests/editors), so the
editor plugin talks to the real LSP server, scheduler, worker thread and service; only the model is replaced,
because the plugin tests must assert exact buffer text. The tests against the real model are in
test_nvim_model.py.

Completions answer at once; a selection containing `#SLOW` takes about two seconds to edit (to edit the buffer
while the model works).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lsp"))

from dcopilot.copilot.service import EngineService

from det_backend import DetBackend, Script

SCRIPT = Script(
    name="editors-test",
    words={"ret": "urn a + b", "hel": "lo(name):\n    print(name)", "foo(": "a, b)"},
    default="_value = 1",
    step_s=0.0,
    first_number=2,
    slow_edits_only=True,
    loading=((0.5, "loading the test model"),),
    load_s=0.0,
)


def make(config):
    return EngineService(DetBackend(SCRIPT))

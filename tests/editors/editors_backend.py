"""A deterministic engine backend for the editor-client tests: known suggestions through the real server.

`dcopilot serve` loads it with DCOPILOT_TEST_SERVICE=editors_backend:make (PYTHONPATH=tests/editors), so the
editor plugin talks to the real LSP server, scheduler, worker thread and service; only the model is replaced,
because the plugin tests must assert exact buffer text. The tests against the real model are in
test_nvim_model.py.

Suggestions: the first entry of WORDS whose key ends the line before the cursor; anything else gets DEFAULT.
Edits: `foo` -> `bar` in the selection; with an instruction, the instruction appended as a comment.
A selection containing `#SLOW` takes about two seconds (to edit the buffer while the model works).
"""

import re
import time

from copilot.service import EngineService
from lsp.service import Cancelled, EditResult, Suggestion, TextEdit

WORDS = {
    "ret": "urn a + b",
    "hel": "lo(name):\n    print(name)",
    "foo(": "a, b)",
}
DEFAULT = "_value = 1"


class EditorsBackend:
    def load(self, progress):
        progress(0.5, "loading the test model")
        return self

    def describe(self, model):
        return "editors-test", "cpu"

    def complete(self, model, req, cancel):
        if cancel():
            raise Cancelled("cancelled")
        line = req.text[: req.offset].rsplit("\n", 1)[-1]
        text = next((t for w, t in WORDS.items() if line.endswith(w)), DEFAULT)
        return [
            Suggestion(text=text if i == 0 else f"{text}  # {i + 1}", start=req.offset, end=req.offset, score=1.0 - i / 10)
            for i in range(req.candidates)
        ]

    def edit(self, model, req, cancel):
        old = req.text[req.start : req.end]
        if "#SLOW" in old:
            for _ in range(200):
                if cancel():
                    raise Cancelled("cancelled")
                time.sleep(0.01)
        new = re.sub(r"\bfoo\b", "bar", old) if not req.instruction else old + f"  # {req.instruction}"
        if new == old:
            return EditResult(edits=[], message="no change")
        return EditResult(edits=[TextEdit(start=req.start, end=req.end, new_text=new)])


def make(config):
    return EngineService(EditorsBackend())

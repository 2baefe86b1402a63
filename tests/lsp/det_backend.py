"""The deterministic backend for protocol and editor tests: exact, known suggestions through the real worker and
service, so tests can assert exact text. Only the model is replaced.

Selected with DCOPILOT_TEST_SERVICE=det_backend:make (tests/lsp; tests/editors/editors_backend.py runs the same
class with its own `Script`). The "model" takes `steps` denoising steps of `step_s` seconds and checks its cancel
flag between them, like dcopilot.engine.runtime.sampler.sample; a request whose text contains the marker `#SLOW` takes
200 steps (for cancellation tests) and `#BOOM` raises like a CUDA out-of-memory error.
Suggestions: the first entry of `words` whose key ends the line before the cursor; anything else gets `default`.
Edits: `foo` -> `bar` in the selection; with an instruction, the instruction appended as a comment.
"""

import os
import re
import time
from dataclasses import dataclass, field

from dcopilot.copilot.service import EngineService
from dcopilot.lsp.service import Cancelled, EditResult, Suggestion, TextEdit

STEPS = 4
STEP_S = float(os.environ.get("DET_STEP_MS", "2")) / 1000
WORDS = {
    "pri": "nt('hello')",
    "ret": "urn total",
    "foo(": "a, b)",
    "数据": "处理()",
    "x😀": " = 1",
    "emo": "ji = '😀😀'",
}
DEFAULT = "_value = compute(x)"


@dataclass(frozen=True)
class Script:
    """What the deterministic model answers, and how slowly."""

    name: str = "deterministic"
    words: dict[str, str] = field(default_factory=lambda: WORDS)
    default: str = DEFAULT
    steps: int = STEPS  # denoising steps per request (200 with #SLOW)
    step_s: float = STEP_S
    first_number: int = 1  # extra candidates read "<text>  # N" from this N on
    slow_edits_only: bool = False  # #SLOW counts only inside an edit's selection (completions never wait)
    loading: tuple[tuple[float, str], ...] = tuple((i / 3, f"loading deterministic model ({i}/3)") for i in range(3))
    load_s: float = 0.05  # per loading message


class DetBackend:
    def __init__(self, script: Script = Script()):
        self.script = script

    def load(self, progress):
        for fraction, message in self.script.loading:
            progress(fraction, message)
            time.sleep(self.script.load_s)
        if os.environ.get("DET_FAIL_LOAD"):
            raise FileNotFoundError("model.safetensors: no such file (simulated)")
        return self

    def describe(self, model):
        return self.script.name, "cpu"

    def _steps(self, text: str, cancel, steps: int) -> None:
        slow = "#SLOW" in text
        for _ in range(200 if slow else steps):
            if cancel():
                raise Cancelled("stopped between steps")
            time.sleep(0.01 if slow else self.script.step_s)
        if "#BOOM" in text:
            raise RuntimeError("CUDA out of memory (simulated)")

    def complete(self, model, req, cancel):
        s = self.script
        if s.slow_edits_only:
            self._steps("", cancel, 1)  # one cancellation check, no wait
        else:
            self._steps(req.text, cancel, s.steps)
        line = req.text[: req.offset].rsplit("\n", 1)[-1]
        text = next((t for w, t in s.words.items() if line.endswith(w)), s.default)
        return [
            Suggestion(
                text=text if i == 0 else f"{text}  # {i - 1 + s.first_number}",
                start=req.offset,
                end=req.offset,
                score=1.0 - i / 10,
            )
            for i in range(req.candidates)
        ]

    def edit(self, model, req, cancel):
        old = req.text[req.start : req.end]
        if self.script.slow_edits_only:
            self._steps(old, cancel, 0)
        else:
            self._steps(req.text, cancel, self.script.steps)
        new = re.sub(r"\bfoo\b", "bar", old) if not req.instruction else old + f"  # {req.instruction}"
        if new == old:
            return EditResult(edits=[], message="no change")
        return EditResult(edits=[TextEdit(start=req.start, end=req.end, new_text=new)])


def make(config):
    return EngineService(DetBackend())

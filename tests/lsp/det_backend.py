"""A deterministic backend for protocol tests: exact, known suggestions through the real worker and service.

Selected with DCOPILOT_TEST_SERVICE=det_backend:make. The "model" takes STEPS denoising steps of STEP_S seconds
and checks its cancel flag between them, like engine.sampler.sample; documents containing the marker `#SLOW`
take 200 steps (for cancellation tests) and `#BOOM` raises like a CUDA out-of-memory error.
Suggestions: WORDS maps the word before the cursor to its completion; anything else gets DEFAULT.
"""

import os
import re
import time

from copilot.service import EngineService
from lsp.service import Cancelled, EditResult, Suggestion, TextEdit

STEPS = 4
STEP_S = float(os.environ.get("DET_STEP_MS", "2")) / 1000
WORDS = {"pri": "nt('hello')", "ret": "urn total", "foo(": "a, b)", "数据": "处理()", "x😀": " = 1", "emo": "ji = '😀😀'"}
DEFAULT = "_value = compute(x)"


def suggestion_for(prefix: str) -> str:
    line = prefix.rsplit("\n", 1)[-1]
    for word, text in WORDS.items():
        if line.endswith(word):
            return text
    return DEFAULT


class DetBackend:
    def load(self, progress):
        for i in range(3):
            progress(i / 3, f"loading deterministic model ({i}/3)")
            time.sleep(0.05)
        if os.environ.get("DET_FAIL_LOAD"):
            raise FileNotFoundError("model.safetensors: no such file (simulated)")
        return self

    def describe(self, model):
        return "deterministic", "cpu"

    def _steps(self, text: str, cancel) -> None:
        steps = 200 if "#SLOW" in text else STEPS
        for _ in range(steps):
            if cancel():
                raise Cancelled("stopped between steps")
            time.sleep(STEP_S if steps == STEPS else 0.01)
        if "#BOOM" in text:
            raise RuntimeError("CUDA out of memory (simulated)")

    def complete(self, model, req, cancel):
        self._steps(req.text, cancel)
        text = suggestion_for(req.text[: req.offset])
        return [
            Suggestion(text=text if i == 0 else f"{text}  # {i}", start=req.offset, end=req.offset, score=1.0 - i / 10)
            for i in range(req.candidates)
        ]

    def edit(self, model, req, cancel):
        self._steps(req.text, cancel)
        old = req.text[req.start : req.end]
        new = re.sub(r"\bfoo\b", "bar", old) if not req.instruction else old + f"  # {req.instruction}"
        if new == old:
            return EditResult(edits=[], message="no change")
        return EditResult(edits=[TextEdit(start=req.start, end=req.end, new_text=new)])


def make(config):
    return EngineService(DetBackend())

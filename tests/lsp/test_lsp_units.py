"""Pure parts of lsp/ and copilot/worker.py, tested with tables and against naive references."""

import asyncio
import random
import subprocess
import sys
import threading
import time

import pytest
from dcopilot.copilot.worker import Worker
from dcopilot.lsp import encoding as enc
from dcopilot.lsp import items
from dcopilot.lsp.documents import Change, Document, DocumentStore
from dcopilot.lsp.scheduler import Scheduler
from dcopilot.lsp.server import relative_path
from dcopilot.lsp.service import Cancelled, CompletionRequest, Status, Suggestion
from dcopilot.lsp.settings import Settings, update
from dcopilot.lsp.stats import Metrics, percentiles


def test_lsp_and_daemon_never_import_torch():
    code = (
        "import sys, dcopilot.lsp.server, dcopilot.lsp.transport, dcopilot.copilot.daemon;"
        " print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _reference_apply(text: str, change: Change, encoding: str) -> str:
    """Naive: walk the text line by line, clamp like LSP, splice."""

    def offset(line: int, character: int) -> int:
        lines = enc.split_lines(text)
        if line >= len(lines):
            return len(text)
        start = sum(len(x) for x in lines[:line])
        content = enc.line_content(lines[line])
        best = 0
        for i in range(len(content) + 1):
            if enc.length(content[:i], encoding) <= character:
                best = i
        return start + best

    a, b = offset(*change.start), offset(*change.end)
    a, b = min(a, b), max(a, b)
    return text[:a] + change.text + text[b:]


@pytest.mark.parametrize("encoding", enc.SUPPORTED)
def test_incremental_edits_match_a_naive_reference(encoding):
    rng = random.Random(7)
    pieces = ["a", "😀", "数", "\n", "\r\n", "\r", "\t", " ", "xyz", ""]
    text = "".join(rng.choice(pieces) for _ in range(40))
    doc = Document("u", "py", 1, text)
    for _ in range(400):
        start = (rng.randint(0, 8), rng.randint(0, 12))
        end = (rng.randint(0, 8), rng.randint(0, 12)) if rng.random() < 0.5 else start
        change = Change("".join(rng.choice(pieces) for _ in range(rng.randint(0, 4))), start, end)
        text = _reference_apply(text, change, encoding)
        doc.apply(change, encoding)
        assert doc.text == text
        assert doc.size == len(text)
        assert doc.lines == enc.split_lines(text)


def test_snapshot_positions_and_huge_line_excerpt():
    doc = Document("u", "py", 3, "x" * 100_000 + "😀ab\nnext")
    snap = doc.snapshot(0, 100_000 + 2 + 1, "utf-16")  # after "😀a"
    assert snap.text[snap.offset - 3 : snap.offset] == "x😀a"
    assert len(snap.text) < 80_000  # the line was cut around the cursor
    assert snap.position(snap.offset) == (0, 100_003)
    assert snap.version == 3


def test_store_caps_and_refusals():
    store = DocumentStore(max_chars=10, max_documents=2)
    assert store.open("a", "py", 1, "x" * 11) is not None and "a" not in store
    assert store.open("b", "py", 1, "ok") is None
    assert "stale" in store.change("b", 1, [Change("zz", (0, 0), (0, 0))], "utf-16")
    assert "not open" in store.change("nope", 2, [Change("z", (0, 0), (0, 0))], "utf-16")
    assert "cap" in store.change("b", 2, [Change("y" * 20, (0, 0), (0, 0))], "utf-16") and "b" not in store
    for uri in "cde":
        store.open(uri, "py", 1, "")
    assert len(store) == 2  # least recently used documents go first


def _req(text: str, offset: int, **kw) -> CompletionRequest:
    return CompletionRequest(key="u", uri="u", path="", language_id="py", version=1, text=text, offset=offset, **kw)


class _CountingService:
    def __init__(self, delay: float = 0.0):
        self.calls = 0
        self.delay = delay

    async def complete(self, req):
        self.calls += 1
        await asyncio.sleep(self.delay)
        return [Suggestion(text="return x", start=req.offset, end=req.offset)]


def test_scheduler_cache_typed_through_and_newest_wins():
    async def main():
        svc = _CountingService(delay=0.05)
        sched = Scheduler(svc)
        first = await sched.complete(_req("    ", 4))
        assert not first.cached and svc.calls == 1
        again = await sched.complete(_req("    re", 6))
        assert again.cached and again.suggestions[0].text == "turn x" and svc.calls == 1
        older = asyncio.ensure_future(sched.complete(_req("x = ", 4)))
        await asyncio.sleep(0.01)
        newer = await sched.complete(_req("y = ", 4))
        with pytest.raises(asyncio.CancelledError):
            await older
        assert newer.suggestions[0].text == "return x"

    asyncio.run(main())


def test_adaptive_debounce_follows_typing_speed():
    sched = Scheduler(_CountingService())
    base = 0.075
    assert sched.delay("u", base) == base
    for i in range(10):
        sched.typed("u", now=i * 0.15)  # 150 ms between keystrokes
    assert sched.delay("u", base) == pytest.approx(0.15)
    for i in range(10):
        sched.typed("v", now=i * 0.02)  # a burst faster than the base: never below it
    assert sched.delay("v", base) == base
    for i in range(10):
        sched.typed("w", now=i * 1.5)  # slow typing: capped at 4 x base
    assert sched.delay("w", base) == 4 * base


def _snap(text: str, offset: int):
    return Document("u", "py", 1, text).snapshot(*_pos(text, offset), "utf-16")


def _pos(text: str, offset: int):
    head = text[:offset]
    return head.count("\n"), len(head.rsplit("\n", 1)[-1])


@pytest.mark.parametrize(
    "text, offset, suggestion, end",
    [
        ("foo()", 4, "a, b)", 5),  # absorbs the auto-closed paren
        ("foo()", 4, "a, b", 4),  # does not repeat it: plain insertion
        ("x = [", 5, "1]", 5),  # nothing right of the cursor
        ("s = ''", 5, "abc'", 6),
        ("foo(bar)", 4, "a)", 4),  # real text right of the cursor: never replaced
        ("foo()\nnext", 4, "a,\n b)", 4),  # multi-line suggestion: insertion only
    ],
)
def test_absorb_line_end(text, offset, suggestion, end):
    s = items.absorb_line_end(_snap(text, offset), Suggestion(text=suggestion, start=offset, end=offset))
    assert s.end == end


@pytest.mark.parametrize(
    "line, suggestion, encoding, new_text, label, start_col",
    [
        ("    ret", "urn a + b", "utf-16", "return a + b", "return a + b", 4),  # the typed word is replaced
        ("    x = ", "_value = 1", "utf-16", "_value = 1", "_value = 1", 8),  # no word typed: insert at the cursor
        ("foo(", "a, b)", "utf-16", "a, b)", "a, b)", 4),  # punctuation is not part of the word
        ("x😀 = self.re", "sult", "utf-16", "result", "result", 11),  # the emoji is 2 UTF-16 units
        ("x😀 = self.re", "sult", "utf-8", "result", "result", 13),  # ... and 4 UTF-8 bytes
        ("x😀 = self.re", "sult", "utf-32", "result", "result", 10),
        ("数据处", "理()", "utf-8", "数据处理()", "数据处理()", 0),  # non-ASCII identifier characters
        ("    de", "f f(x):\n    pass", "utf-16", "def f(x):\n    pass", "def f(x):", 4),
    ],
)
def test_completion_item_replaces_the_typed_word(line, suggestion, encoding, new_text, label, start_col):
    text = "a = 1\n" + line
    doc = Document("u", "py", 1, text)
    snap = doc.snapshot(1, enc.length(line, encoding), encoding)
    assert snap.offset == len(text)
    item = items.completion_item(snap, Suggestion(text=suggestion, start=snap.offset, end=snap.offset), "id", 0)
    assert item.text_edit.new_text == new_text and item.label == label
    assert item.filter_text == label  # starts with the typed word, so a client's filter keeps it
    end_col = enc.length(line, encoding)
    assert (item.text_edit.range.start.line, item.text_edit.range.start.character) == (1, start_col)
    assert (item.text_edit.range.end.line, item.text_edit.range.end.character) == (1, end_col)


def test_settings_update_keeps_previous_on_error():
    s, problem = update(Settings(), {"dcopilot": {"debounceMs": 20, "unknownKey": 1}})
    assert problem is None and s.debounce_ms == 20
    s2, problem = update(s, {"maxTokens": -5})
    assert problem and s2 == s
    assert update(s, "nonsense")[1]


@pytest.mark.parametrize(
    "uri, roots, path",
    [
        ("file:///home/u/proj/pkg/mod.py", ["/home/u/proj"], "pkg/mod.py"),
        ("file:///home/u/proj/pkg/mod.py", ["/home/u", "/home/u/proj/"], "pkg/mod.py"),  # innermost root
        ("file:///tmp/other.py", ["/home/u/proj"], "other.py"),
        ("file:///home/u/projects/x.py", ["/home/u/proj"], "x.py"),  # a sibling with a common prefix
        ("untitled:Untitled-1", ["/home/u/proj"], ""),
    ],
)
def test_relative_path_for_the_model(uri, roots, path):
    assert relative_path(uri, roots) == path


def test_percentiles_and_metrics():
    assert percentiles([]).count == 0
    p = percentiles([i / 1000 for i in range(1, 101)])
    assert (p.p50_ms, p.p95_ms, p.p99_ms) == (50.0, 95.0, 99.0)
    m = Metrics(window=3)
    for t in (0.1, 0.2, 0.3, 0.4):
        m.answered(total=t, debounce=0.05, model=0.01, cached=False, empty=False)
    assert len(m.latency) == 3  # bounded
    m.offered("s", "0123456789")
    m.add("shown")
    m.accepted("s", 4)
    snap = m.snapshot()
    assert snap.partially_accepted == 1 and snap.accepted_chars == 4 and snap.acceptance_rate == 1.0


def _worker(load=lambda progress: "model"):
    w = Worker(load, max_pending=2)
    statuses: list[Status] = []
    ready = threading.Event()

    def on_status(s):
        statuses.append(s)
        if s.state != "loading":
            ready.set()

    w.start(on_status)
    assert ready.wait(10)
    return w, statuses


def test_worker_runs_jobs_and_stops_running_ones_between_steps():
    w, statuses = _worker()
    assert statuses[-1].state == "ready"
    assert w.submit("a", lambda model, cancel: model + "!").future.result(5) == "model!"
    started = threading.Event()

    def slow(model, cancel):
        started.set()
        for _ in range(500):
            if cancel():
                raise Cancelled("stopped")
            time.sleep(0.01)
        return "finished"

    job = w.submit("doc", slow)
    assert started.wait(5)
    newer = w.submit("doc", lambda model, cancel: "newer")  # same key: supersedes the running job
    with pytest.raises(Cancelled):
        job.future.result(5)
    assert newer.future.result(5) == "newer"
    assert w.status().engine_cancelled == 1
    w.close()


def test_worker_queue_is_bounded_and_errors_do_not_kill_it():
    w, _ = _worker()
    gate = threading.Event()
    w.submit("block", lambda m, c: gate.wait(5))
    jobs = [w.submit(f"k{i}", lambda m, c, i=i: i) for i in range(5)]
    gate.set()
    done = [j for j in jobs if not j.future.cancelled()]
    assert len(done) == 2 and [j.future.result(5) for j in done] == [3, 4]  # oldest pending dropped
    boom = w.submit("e", lambda m, c: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        boom.future.result(5)
    assert w.submit("after", lambda m, c: "alive").future.result(5) == "alive"
    assert "ZeroDivisionError" in w.status().message
    w.close()


def test_worker_load_failure_is_a_status_not_a_crash():
    def load(progress):
        progress(0.5, "reading")
        raise FileNotFoundError("model.safetensors missing")

    w, statuses = _worker(load)
    assert statuses[-1].state == "error" and "model.safetensors missing" in statuses[-1].message
    job = w.submit("x", lambda m, c: 1)
    with pytest.raises(Cancelled):
        job.future.result(5)

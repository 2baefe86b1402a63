"""Event-loop time the language server spends ranking workspace snippets, per keystroke, before and after ranking
moved behind the debounce and onto per-document identifier indexes, at the server's cap of open documents.

20 open documents of 5,000 lines of real Python (the interpreter's standard library, read from this machine)
fill dcopilot.lsp.workspace's cap; a real DocumentStore takes a typing session of real code into one of them
(bench/lsp_latency.py's human timings, seeded), with the Scheduler's adaptive debounce deciding which keystrokes'
requests survive to the model. Side by side, on the same store and the same keystrokes:

- before: every keystroke's request ranks on arrival, with rank() over every window of every other document
  (the ranking the server used to run; rank_indexed is defined as choosing exactly what it chooses);
- after: only a request that survives the debounce ranks, through WorkspaceContext's indexes (rank_indexed).

Both are timed in-process around WorkspaceContext.snippets: that call runs on the server's event loop, so its
time is time during which no other message is read. Every surviving request gets the same snippets both ways
(checked). Also shown: the one-off cost of indexing all documents (the first request after opening them) and of
re-indexing one document that changed (the first request after a neighbouring tab is edited).

    python bench/snippet_ranking.py
    python bench/snippet_ranking.py --keys 400 --docs 20 --lines 5000 --seed 1
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import sysconfig
import time
from contextlib import contextmanager
from itertools import chain, islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from dcopilot.engine.tasks import context  # noqa: E402
from dcopilot.lsp import encoding as enc  # noqa: E402
from dcopilot.lsp.documents import Change, DocumentStore  # noqa: E402
from dcopilot.lsp.scheduler import Scheduler  # noqa: E402
from dcopilot.lsp.settings import Settings  # noqa: E402
from dcopilot.lsp.workspace import MAX_DOCUMENTS, MAX_LINES, WorkspaceContext  # noqa: E402
from lsp_latency import keystroke_gaps  # noqa: E402


def sources(lines: int) -> list[str]:
    """Texts of exactly `lines` lines of real code, each from its own standard-library files (sorted, so the
    same interpreter gives the same texts)."""
    skip = {"site-packages", "dist-packages", "test", "tests", "idlelib"}
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = [p for p in sorted(stdlib.rglob("*.py")) if not skip & set(p.relative_to(stdlib).parts)]
    files = [p for p in files if p.stat().st_size > 10_000]
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in files]
    out, pool = [], iter(texts)
    for first in pool:
        text = first
        for more in pool:
            if text.count("\n") >= lines:
                break
            text += more
        if text.count("\n") >= lines:
            out.append("\n".join(text.split("\n")[:lines]) + "\n")
    return out


@contextmanager
def ranking_every_window():
    """The ranking before indexes: rank() over every window of every candidate, in the same order."""
    indexed = context.rank_indexed

    def rank_all(around, indexes, limit=context.SNIPPETS, min_similarity=context.MIN_SIMILARITY):
        return context.rank(around, chain.from_iterable(ix.windows for ix in indexes), limit, min_similarity)

    context.rank_indexed = rank_all
    try:
        yield
    finally:
        context.rank_indexed = indexed


def timed(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args)
    return (time.perf_counter() - start) * 1000, out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--docs", type=int, default=MAX_DOCUMENTS, help="open documents (the cursor's one included)")
    p.add_argument("--lines", type=int, default=MAX_LINES, help="lines per document")
    p.add_argument("--keys", type=int, default=200, help="characters typed")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    texts = sources(args.lines)
    if len(texts) < args.docs + 1:
        sys.exit(f"only {len(texts)} texts of {args.lines} lines in this interpreter's standard library")
    store = DocumentStore(max_total_chars=1 << 40)
    uris = [f"file:///ws/pkg/mod{i:02}.py" for i in range(args.docs)]
    for uri, text in zip(uris, texts[: args.docs], strict=True):
        store.open(uri, "python", 1, text)
    cursor_uri = uris[-1]
    typed = texts[args.docs][: args.keys]  # real code from a file no document holds
    line = args.lines // 2
    rng = random.Random(args.seed)
    gaps = keystroke_gaps(typed, rng, 1.0)
    base = Settings().debounce_ms / 1000
    path_of = lambda uri: uri.removeprefix("file:///ws/")  # noqa: E731

    before_ctx, after_ctx = WorkspaceContext(), WorkspaceContext()
    doc = store.get(cursor_uri)
    assert doc is not None
    snap = doc.snapshot(line, 0, enc.UTF16)
    cold, _ = timed(after_ctx.snippets, store, snap, path_of)  # indexes every other document once
    cut = 0.0  # what the first request cost before: cutting the windows, no postings
    for d in store.recent():
        if d.uri != cursor_uri:
            cut += timed(context.windows, path_of(d.uri), list(islice(d.lines_from(0, 1), args.lines)))[0]
    with ranking_every_window():
        before_ctx.snippets(store, snap, path_of)  # cuts windows once, as the server always did

    scheduler = Scheduler(service=None)  # type: ignore[arg-type]  # only its typing rhythm is used
    clock, row, col, version = 0.0, line, 0, 1
    before_ms, after_ms, survivors = [], [], 0
    for i, ch in enumerate(typed):
        clock += gaps[i]
        version += 1
        store.change(cursor_uri, version, [Change(ch, (row, col), (row, col))], enc.UTF16)
        row, col = (row + 1, 0) if ch == "\n" else (row, col + 1)
        scheduler.typed(cursor_uri, now=clock)
        delay = scheduler.delay(cursor_uri, base)
        snap = store.get(cursor_uri).snapshot(row, col, enc.UTF16)  # type: ignore[union-attr]
        with ranking_every_window():
            ms, old = timed(before_ctx.snippets, store, snap, path_of)
        before_ms.append(ms)
        next_gap = gaps[i + 1] if i + 1 < len(gaps) else float("inf")
        if next_gap > delay:  # the request outlived its debounce: it reaches the model and ranks
            survivors += 1
            ms, new = timed(after_ctx.snippets, store, snap, path_of)
            after_ms.append(ms)
            assert new == old, f"keystroke {i}: different snippets"
    windows = sum(len(after_ctx.index_of(d, path_of(d.uri))[0].windows) for d in store.recent() if d.uri != cursor_uri)

    other = store.get(uris[0])
    assert other is not None
    store.change(other.uri, 2, [Change("# edited\n", (0, 0), (0, 0))], enc.UTF16)
    reindex, _ = timed(after_ctx.snippets, store, snap, path_of)

    keys = len(typed)
    spent_before, spent_after = sum(before_ms), sum(after_ms)
    print(
        f"snippet ranking: {args.docs} documents x {args.lines} lines ({windows} windows of other documents), "
        f"{keys} keystrokes typed at human speed (seed {args.seed}), debounce base {base * 1000:.0f} ms; "
        f"Python {platform.python_version()}, {platform.machine()}"
    )
    print(f"{'':34}{'before':>12}{'after':>12}{'ratio':>9}")
    rows = [
        ("rankings per keystroke", keys / keys, survivors / keys, "{:12.2f}"),
        ("ms per ranking, p50", statistics.median(before_ms), statistics.median(after_ms or [0]), "{:12.2f}"),
        ("ms per ranking, p95", pct(before_ms, 95), pct(after_ms, 95), "{:12.2f}"),
        ("event-loop ms per keystroke", spent_before / keys, spent_after / keys, "{:12.2f}"),
        ("event-loop ms, whole session", spent_before, spent_after, "{:12.0f}"),
    ]
    for name, b, a, fmt in rows:
        ratio = f"{b / a:8.1f}x" if a else "       -"
        print(f"{name:34}{fmt.format(b)}{fmt.format(a)} {ratio}")
    print(f"same snippets for all {survivors} surviving requests: yes")
    print(f"one-off: the first request indexes {args.docs - 1} documents in {cold:.0f} ms (cutting their windows,")
    print(f"  all that happened before, takes {cut:.0f} ms of it); ", end="")
    print(f"after another document changed, the next request re-indexes it in {reindex:.1f} ms (ranking included)")


if __name__ == "__main__":
    main()

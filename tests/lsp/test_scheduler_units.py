"""The scheduler's pure parts (lsp/scheduler.py): cache keys and windows, typed-through, the LRU and its
per-document index, and the typing rhythm behind the adaptive debounce. The asyncio orchestration (newest wins,
speculation, cancellation) is exercised against a real server in the protocol tests."""

import time

import pytest
from dcopilot.lsp import scheduler as sch
from dcopilot.lsp.scheduler import Scheduler, _Entry, typed_through, windows
from dcopilot.lsp.service import CompletionRequest, Suggestion

# Survivors of `python scripts/mutation.py lsp/scheduler.py` that cannot change behaviour: (function, mutated
# line, why). The runner marks a survivor equivalent only when it is listed here.
_FILTER = "two cheap filters before the exact window comparison, which alone decides"
_TYPED = "and before[: len(before) - k].endswith(entry.before[{}:])"
EQUIVALENT_MUTANTS = [
    ("typed_through", _TYPED.format("+64"), _FILTER),
    ("typed_through", _TYPED.format("-65"), _FILTER),
    ("store", "old, _ = self._cache.popitem(last=None)", "None is as false as False"),
]

W = sch.CACHE_WINDOW


class NoService:
    async def complete(self, req):  # the pure parts never call it
        raise AssertionError("the service was called")


def req(text: str, offset: int, uri: str = "u", candidates: int = 1) -> CompletionRequest:
    return CompletionRequest(
        key=uri, uri=uri, path="", language_id="py", version=1, text=text, offset=offset, candidates=candidates
    )


def sugg(text: str, start: int, end: int, score: float = 0.0) -> Suggestion:
    return Suggestion(text=text, start=start, end=end, score=score)


def test_windows_are_cut_at_the_cache_window():
    text = "".join(chr(ord("a") + i % 26) for i in range(3 * W))
    assert windows(req(text, W + 10)) == (text[10 : W + 10], text[W + 10 : 2 * W + 10])
    assert windows(req(text, 7)) == (text[:7], text[7 : W + 7])
    assert windows(req(text, len(text))) == (text[-W:], "")


@pytest.mark.parametrize(
    "typed, after, expected",
    [
        ("ret", "\n", [("urn x", 0.7)]),  # typed the first three characters
        ("r", "\n", [("eturn x", 0.7)]),
        ("return ", "\n", [("x", 0.7)]),
        ("", "\n", []),  # nothing typed: an exact-key hit, not typed-through
        ("rex", "\n", []),  # diverged from the suggestion
        ("ret", ")\n", []),  # the text after the cursor changed
        ("return x", "\n", []),  # typed all of it: nothing left to offer
    ],
)
def test_typed_through(typed, after, expected):
    before = "def f():\n    "
    # an item that replaced text before the cursor comes first: it is skipped, the others still looked at
    entry = _Entry(before=before, after="\n", items=(("pass", 3, 0, 0.1), ("return x", 0, 2, 0.7)))
    offset = 100 + len(before + typed)
    found = typed_through(entry, before + typed, after, offset=offset)
    assert [(s.text, s.score) for s in found] == expected
    assert all((s.start, s.end) == (offset, offset + 2) for s in found)  # keeps what it replaced after the cursor


def test_typed_through_needs_the_same_text_before_the_typing():
    entry = _Entry(before="x = ", after="", items=(("foo()", 0, 0, 0.0),))
    assert typed_through(entry, "y = fo", "", 6) == []
    assert typed_through(entry, "zx = fo", "", 7) == []  # same 64-character anchor, different window
    assert [s.text for s in typed_through(entry, "x = fo", "", 6)] == ["o()"]


def test_typed_through_with_a_full_window_slides_it():
    before = "".join(chr(ord("a") + i % 26) for i in range(W))  # the window before the cursor is full
    entry = _Entry(before=before, after="\n", items=(("return x", 0, 0, 0.0),))
    now = (before + "ret")[-W:]
    assert [s.text for s in typed_through(entry, now, "\n", 0)] == ["urn x"]
    assert typed_through(entry, before[1:] + "ret", "\n", 0) == []  # one character short of the window


def test_typed_through_several_suggestions_and_the_longest_run():
    long = "y" * (sch.MAX_TYPED + 10)
    entry = _Entry(before="a = ", after="", items=(("yes", 0, 0, 0.5), (long, 0, 0, 0.4), ("yy", 0, 1, 0.3)))
    found = typed_through(entry, "a = y", "", 5)
    assert [(s.text, s.end) for s in found] == [("es", 5), (long[1:], 5), ("y", 6)]
    at_limit = typed_through(entry, "a = " + "y" * sch.MAX_TYPED, "", 0)
    assert [s.text for s in at_limit] == [long[sch.MAX_TYPED :]]
    assert typed_through(entry, "a = " + "y" * (sch.MAX_TYPED + 1), "", 0) == []  # longer runs are not looked for


def test_store_and_exact_lookup():
    s = Scheduler(NoService())
    r = req("def f():\n    re", 13)
    s.store(r, [sugg("turn x", 13, 15, 0.9), sugg("pass", 11, 13, 0.2)])
    hit = s.lookup(req("def f():\n    re", 13))
    assert [(x.text, x.start, x.end, x.score) for x in hit] == [("turn x", 13, 15, 0.9), ("pass", 11, 13, 0.2)]
    # the same windows at another offset (more text beyond the window): offsets move with the cursor
    s.store(req("a" * W + "x = ", W + 4), [sugg("1", W + 2, W + 5)])
    moved = s.lookup(req("b" + "a" * W + "x = ", W + 5))
    assert [(x.start, x.end) for x in moved] == [(W + 3, W + 6)]
    assert s.lookup(req("def f():\n    re", 13, uri="v")) is None  # another document


def test_lookup_refuses_an_entry_with_fewer_candidates_than_wanted():
    s = Scheduler(NoService())
    s.store(req("x = ", 4, candidates=2), [sugg("1", 4, 4)])
    assert s.lookup(req("x = ", 4, candidates=2)) is not None
    assert s.lookup(req("x = ", 4, candidates=1)) is not None
    assert s.lookup(req("x = ", 4, candidates=3)) is None


def test_empty_answers_are_never_cached():
    s = Scheduler(NoService())
    s.store(req("x = ", 4), [])
    assert s.lookup(req("x = ", 4)) is None


def test_typed_through_lookup_uses_the_newest_entries_of_the_document():
    s = Scheduler(NoService())
    s.store(req("x = ", 4), [sugg("foo()", 4, 4)])
    s.store(req("x = ", 4, uri="other"), [sugg("bar()", 4, 4)])
    assert [x.text for x in s.lookup(req("x = fo", 6))] == ["o()"]
    assert [x.text for x in s.lookup(req("x = ba", 6, uri="other"))] == ["r()"]
    assert s.lookup(req("x = ba", 6)) is None
    # storing the same context again replaces it (and keeps one index entry for it)
    s.store(req("x = ", 4), [sugg("fun()", 4, 4)])
    assert [x.text for x in s.lookup(req("x = fu", 6))] == ["n()"]
    assert list(s._recent["u"]).count(("u", "x = ", "")) == 1


def test_typed_through_looks_at_the_last_entries_per_document_only():
    s = Scheduler(NoService())
    s.store(req("first = ", 8), [sugg("alpha", 8, 8)])
    for i in range(sch.RECENT_PER_DOC):
        s.store(req(f"v{i} = ", 5), [sugg("zzz", 5, 5)])
    assert s.lookup(req("first = ", 8)) is not None  # still cached
    assert s.lookup(req("first = al", 10)) is None  # but too old for typed-through


def test_lru_evicts_the_least_recently_used_and_its_index():
    s = Scheduler(NoService(), cache_entries=2)
    s.store(req("a = ", 4, uri="one"), [sugg("1", 4, 4)])
    s.store(req("b = ", 4, uri="two"), [sugg("2", 4, 4)])
    assert s.lookup(req("a = ", 4, uri="one")) is not None  # used: now the most recent
    s.store(req("c = ", 4, uri="two"), [sugg("3", 4, 4)])
    assert s.lookup(req("b = ", 4, uri="two")) is None  # evicted
    assert s.lookup(req("a = ", 4, uri="one")) is not None
    assert list(s._recent["two"]) == [("two", "c = ", "")]
    s.store(req("d = ", 4, uri="two"), [sugg("4", 4, 4)])
    s.store(req("e = ", 4, uri="two"), [sugg("5", 4, 4)])
    assert "one" not in s._recent  # a document with no entry left has no index
    assert len(s._cache) == 2


def test_typing_rhythm_is_a_moving_average_of_short_gaps():
    s = Scheduler(NoService())
    base = 0.05
    s.typed("u", now=10.0)
    assert s.delay("u", base) == base  # one keystroke: no rhythm yet
    s.typed("u", now=10.1)
    assert s.delay("u", base) == pytest.approx(0.1)
    s.typed("u", now=10.4)
    assert s.delay("u", base) == pytest.approx(0.7 * 0.1 + 0.3 * 0.3)
    s.typed("u", now=10.4 + sch.TYPING_GAP)  # a pause, not part of the rhythm
    assert s.delay("u", base) == pytest.approx(0.16)
    s.typed("u", now=10.5 + sch.TYPING_GAP)
    assert s.delay("u", base) == pytest.approx(0.7 * 0.16 + 0.3 * 0.1)
    assert s.delay("other", base) == base


@pytest.mark.parametrize("gap, delay", [(0.01, 0.05), (0.12, 0.12), (0.5, 0.2), (1.99, 0.2)])
def test_delay_is_clamped_to_base_and_four_times_base(gap, delay):
    s = Scheduler(NoService())
    s.typed("u", now=1.0)
    s.typed("u", now=1.0 + gap)
    assert s.delay("u", 0.05) == pytest.approx(delay)


def test_typed_uses_the_monotonic_clock_by_default():
    s = Scheduler(NoService())
    s.typed("u")
    s.typed("u", now=time.monotonic() + 0.1)
    assert 0.1 <= s.delay("u", 0.05) < 0.2


def test_lookup_says_where_an_answer_came_from():
    s = Scheduler(NoService())
    s.store(req("x = ", 4), [sugg("foo()", 4, 4)])
    assert s._lookup(req("x = ", 4))[1] == "cache"
    assert s._lookup(req("x = f", 5))[1] == "typed-through cache"
    assert s._lookup(req("y = ", 4)) == (None, "")


def test_defaults_and_a_fresh_scheduler():
    svc = NoService()
    s = Scheduler(svc)
    assert (s.service, s.cache_entries, s.max_in_flight, s.in_flight()) == (svc, 256, 16, 0)
    for i in range(257):
        s.store(req(f"v{i} = ", 5, uri=f"d{i}"), [sugg("1", 5, 5)])
    assert s.lookup(req("v0 = ", 5, uri="d0")) is None and s.lookup(req("v1 = ", 5, uri="d1")) is not None


def test_evicting_entries_of_a_forgotten_document():
    s = Scheduler(NoService(), cache_entries=1)
    s.store(req("a = ", 4), [sugg("1", 4, 4)])
    s.forget("u")  # the document closed; its entry ages out of the LRU later
    s.store(req("b = ", 4, uri="w"), [sugg("2", 4, 4)])
    assert s.lookup(req("a = ", 4)) is None and s.lookup(req("b = ", 4, uri="w")) is not None

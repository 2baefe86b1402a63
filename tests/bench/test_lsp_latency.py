"""bench/lsp_latency.py's figures: keystroke-to-answer latency, pause coverage and prompt-cache reuse (tables)."""

import asyncio
import math

import pytest
from latency_levers import PINNED, VARIANTS, server_env
from lsp_latency import Keystroke, outcome, pause_es, pct, prefix_reuse, suggestion, summarize

INF = float("inf")
OK = {"result": {"items": [{"insertText": "x + 1"}]}}
EMPTY = {"result": {"items": []}}
NULL = {"result": None}
CANCELLED = {"error": {"code": -32800, "message": "superseded"}}
FAILED = {"error": {"code": -32603, "message": "boom"}}


def key(sent, answer=None, received=None, gap=INF, next_sent=INF, ahead=""):
    """A keystroke sent at `sent` whose request got `answer` at `received` (None: never answered)."""
    future = asyncio.Future(loop=LOOP)
    if answer is not None:
        future.set_result((received, answer))
    return Keystroke(sent, future, gap_after=gap, next_sent=next_sent, ahead=ahead)


LOOP = asyncio.new_event_loop()


@pytest.mark.parametrize(
    "answer, received, expected",
    [
        (OK, 1.25, ("answered", 0.25, True)),
        (EMPTY, 1.5, ("answered", 0.5, False)),
        (NULL, 1.1, ("answered", 0.1, False)),
        (CANCELLED, 1.2, ("cancelled", None, False)),
        (FAILED, 1.2, ("error", None, False)),
        (None, None, ("unanswered", None, False)),
        ({"result": {"items": [{"insertText": ""}]}}, 1.3, ("answered", 0.3, False)),
    ],
)
def test_outcome_table(answer, received, expected):
    state, latency, nonempty = outcome(key(1.0, answer, received))
    assert (state, nonempty) == (expected[0], expected[2])
    assert latency == (None if expected[1] is None else pytest.approx(expected[1]))


def test_summarize_counts_latency_from_didchange_and_covers_only_pauses_answered_in_time():
    keys = [
        key(0.0, CANCELLED, 0.1, gap=0.12, next_sent=0.12),  # superseded while typing
        key(0.12, OK, 0.2, gap=0.10, next_sent=0.22),  # answered between keystrokes, no pause
        key(0.22, OK, 0.5, gap=0.6, next_sent=0.82),  # pause covered: answer at 0.5 < next key at 0.82
        key(0.82, OK, 1.9, gap=0.5, next_sent=1.32),  # pause missed: answered after the next keystroke
        key(1.32, EMPTY, 1.5, gap=0.9, next_sent=2.22),  # pause missed: nothing to show
        key(2.22, CANCELLED, 2.3, gap=0.31, next_sent=2.53),  # pause missed: cancelled
        key(2.53, None, None, gap=0.3, next_sent=2.83),  # exactly 300 ms: not a pause; never answered
        key(2.83, OK, 3.0),  # the last keystroke: no next one, not a pause
    ]
    s = summarize(keys)
    assert (s["keystrokes"], s["cancelled"], s["pauses"], s["pauses_covered"]) == (8, 2, 4, 1)
    assert s["answered"] == pytest.approx([80.0, 280.0, 1080.0, 180.0, 170.0])
    assert s["shown"] == pytest.approx([80.0, 280.0, 1080.0, 170.0])


def said(text):
    return {"result": {"items": [{"insertText": text}]}}


@pytest.mark.parametrize(
    "text,ahead,es",
    [
        ("x + 1", "x + 1\nmore()\n", 1.0),  # one line: judged against the rest of the line only
        ("x + 1\nmore()", "x + 1\nmore()\nlast", 1.0),  # two lines: against two
        ("x + 2", "x + 1\n", 0.8),
        ("x", "", 0.0),  # the end of the typed text
        ("abc", "xyz", 0.0),
    ],
)
def test_pause_es_table(text, ahead, es):
    assert pause_es(text, ahead) == pytest.approx(es)


@pytest.mark.parametrize(
    "answer,text",
    [(said("a(b)"), "a(b)"), (EMPTY, ""), (NULL, ""), (CANCELLED, ""), (said(""), ""), (None, "")],
)
def test_suggestion_table(answer, text):
    assert suggestion(key(0.0, answer, 0.1)) == text


def test_summarize_judges_only_covered_pauses_against_what_comes_next():
    keys = [
        key(0.0, said("total + 1"), 0.2, gap=0.5, next_sent=0.5, ahead="total + 1)\n"),  # useful (0.9)
        key(0.5, said("nothing like it"), 0.7, gap=0.5, next_sent=1.0, ahead="x)\n"),  # noise
        key(1.0, said("total + 2"), 1.2, gap=0.5, next_sent=1.5, ahead="total)\n"),  # neither (0.56)
        key(1.5, said("total + 1)"), 2.2, gap=0.5, next_sent=2.0, ahead="total + 1)"),  # too late: not seen
        key(2.0, said("total + 1)"), 2.1, gap=0.1, next_sent=2.1, ahead="total + 1)"),  # no pause
        key(2.1, said("q"), 2.2),
    ]
    s = summarize(keys)
    assert (s["pauses"], s["pauses_covered"], s["pauses_useful"], s["pauses_noise"]) == (4, 3, 1, 1)


def test_summarize_pause_threshold_is_a_parameter():
    keys = [key(0.0, OK, 0.15, gap=0.2, next_sent=0.2), key(0.2, OK, 0.3)]
    assert summarize(keys)["pauses"] == 0
    assert (summarize(keys, pause_s=0.1)["pauses"], summarize(keys, pause_s=0.1)["pauses_covered"]) == (1, 1)


def test_prefix_reuse_reads_the_servers_debug_lines():
    log = (
        "DEBUG dcopilot.service: infill for file:///a.py: 80 ms, 3 steps, reused 150 of 160 prompt tokens, 2 hyp\n"
        "DEBUG dcopilot.lsp: c4 debounce 75 ms\n"
        "DEBUG dcopilot.service: infill for file:///a.py: 95 ms, 4 steps, reused 0 of 170 prompt tokens, 2 hyp\n"
    )
    assert prefix_reuse(log) == {"runs": 2, "hits": 1, "reused_tokens": 150, "prompt_tokens": 330}
    assert prefix_reuse("") == {"runs": 0, "hits": 0, "reused_tokens": 0, "prompt_tokens": 0}


@pytest.mark.parametrize(
    "values, p, expected",
    [
        ([], 0.5, math.nan),
        ([5.0], 0.95, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),
        ([float(i) for i in range(1, 21)], 0.95, 19.0),
    ],
)
def test_pct_is_nearest_rank(values, p, expected):
    got = pct(values, p)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


def test_lever_variants_change_what_they_say_against_the_pinned_base():
    assert server_env("shipped") == PINNED
    assert server_env("hyp2") == PINNED | {"DCOPILOT_COMPLETION_HYPOTHESES": "2"}
    defaults = server_env("defaults")  # every pin removed: the server's own defaults
    assert set(defaults) == set(PINNED) and all(v is None for v in defaults.values())
    assert server_env("defaults+debounce0")["DCOPILOT_COMPLETION_DEBOUNCE_MS"] == "0"
    assert all(set(env) <= set(PINNED) for _, env in VARIANTS.values())

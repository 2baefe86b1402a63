"""Window building: budgets, line cuts, unicode, CRLF, tabs, empty documents, cursor at the edges."""

import re

import pytest
from dcopilot.engine.tasks.window import (
    build_window,
    cursor_window,
    head_lines_within,
    split_lines,
    tail_text_budget,
)
from hypothesis import given
from hypothesis import strategies as st

# Survivors of `python scripts/mutation.py engine/tasks/window.py` that cannot change behaviour: (function, mutated
# line, why). The runner marks a survivor equivalent only when it is listed here.
EQUIVALENT_MUTANTS = [
    (
        "head_lines_within",
        "mid = (lo + hi + 2) // 2",
        "while lo < hi this mid is still in lo + 1..hi, so the search stays a correct bisection of the same range",
    ),
    ("build_window", "if first >= 0 and first % snap:", "0 % snap is 0: the first line 0 never snaps either way"),
    (
        "build_window",
        "if len(after_side.counts) < len(tail_lines) and (last + 1) / snap:",
        "when (last + 1) % snap is 0 the drop below is 0 lines, so testing the quotient instead changes nothing",
    ),
]


def words(text: str) -> int:
    """A stand-in tokenizer: one token per whitespace-separated word plus one per line break."""
    return len(text.split()) + text.count("\n")


DOC = "".join(f"line{i} a b\n" for i in range(40))  # every line costs 4 tokens


def check_invariants(text, w):
    assert text[w.start : w.cursor] == w.prefix
    assert text[w.cursor : w.end] == w.suffix
    assert 0 <= w.start <= w.cursor <= w.end <= len(text)


@pytest.mark.parametrize(
    "text,cursor,budget",
    [
        ("", 0, 16),
        ("x", 0, 16),
        ("x", 1, 16),
        (DOC, 0, 16),
        (DOC, len(DOC), 16),
        (DOC, len(DOC) // 2, 16),
        (DOC, len(DOC) // 2, 10_000),
        ("héllo wörld 🙂\nzweite Zeile ✓\n", 8, 4),
        ("a\r\nb\r\nc\r\n", 4, 100),
        ("\tif x:\n\t\ty = 1\n", 9, 100),
    ],
)
def test_window_slices_the_document(text, cursor, budget):
    w = build_window(text, cursor, budget, words, snap_lines=1)
    check_invariants(text, w)
    assert w.prefix_tokens + w.suffix_tokens <= budget


def test_whole_document_when_it_fits():
    w = build_window(DOC, 100, 10_000, words)
    assert (w.start, w.end) == (0, len(DOC))


def test_prefix_is_favoured_and_cut_at_line_starts():
    cursor = DOC.index("line20")
    w = build_window(DOC, cursor, 40, words, prefix_share=0.75, snap_lines=1)
    assert w.prefix_tokens == 28 and w.suffix_tokens == 8  # 30 / 10 split in whole 4-token lines
    assert w.prefix.startswith("line13") and w.suffix.endswith("line21 a b\n")
    assert w.start == 0 or DOC[w.start - 1] == "\n"


def test_suffix_does_not_follow_the_prefix_while_typing():
    ends = set()
    for extra in range(0, 12):
        text = DOC[: DOC.index("line30")] + "z " * extra + DOC[DOC.index("line30") :]
        cursor = DOC.index("line30") + 2 * extra
        w = build_window(text, cursor, 60, words, snap_lines=1)
        ends.add(len(text) - w.end)
    assert len(ends) == 1


def test_unused_suffix_budget_goes_to_the_prefix():
    w = build_window(DOC, len(DOC), 40, words, snap_lines=1)
    assert w.suffix == "" and w.prefix_tokens == 40


def test_unused_prefix_budget_goes_to_the_suffix():
    w = build_window(DOC, 0, 40, words, snap_lines=1)
    assert w.prefix == "" and w.suffix_tokens == 40


def test_cursor_line_is_cut_inside_only_when_it_alone_is_too_long():
    line = " ".join(f"w{i}" for i in range(100))
    text = f"before\n{line}\nafter\n"
    cursor = text.index("w50")
    w = build_window(text, cursor, 20, words, snap_lines=1)
    check_invariants(text, w)
    assert w.prefix_tokens <= 15 and w.prefix.endswith("w49 ")
    assert "before" not in w.prefix  # not contiguous with a cut line


def test_snapping_keeps_the_start_while_typing():
    starts = set()
    for extra in range(0, 12):
        text = DOC[: DOC.index("line30")] + "z " * extra + DOC[DOC.index("line30") :]
        cursor = DOC.index("line30") + 2 * extra
        w = build_window(text, cursor, 60, words, snap_lines=8)
        check_invariants(text, w)
        starts.add(text[: w.start].count("\n") % 8)
    assert starts == {0}


def test_crlf_and_tabs_survive_intact():
    text = "def f():\r\n\treturn 1\r\n\r\nx = f()\r\n"
    cursor = text.index("return") + 3
    w = build_window(text, cursor, 1000, words)
    assert w.prefix == text[:cursor] and w.suffix == text[cursor:]
    assert w.line_prefix == "\tret" and w.line_suffix == "urn 1"


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="outside the document"):
        build_window("abc", 4, 10, words)
    with pytest.raises(ValueError, match="outside the document"):
        build_window("abc", -1, 10, words)
    with pytest.raises(ValueError, match="budget"):
        build_window("abc", 1, 0, words)


def test_split_lines_only_breaks_on_newline():
    assert split_lines("a\x0cb\u2028c\r\nd") == ["a\x0cb\u2028c\r\n", "d"]
    assert "".join(split_lines("x\n\ny")) == "x\n\ny"
    assert split_lines("") == []


# -- against a reference ---------------------------------------------------------------------------------------
# The documented algorithm written out plainly, line numbers instead of lists: keep the cursor line (its tail
# before the cursor / head after it when it alone exceeds a side's share), add whole lines outwards greedily, move
# a side's leftover across only when that side reached the document's edge, then snap the outer edges.


def _fits_tail(s: str, budget: int, count) -> str:
    return next(s[j:] for j in range(len(s) + 1) if count(s[j:]) <= budget)


def _fits_head(s: str, budget: int, count) -> str:
    return next(s[:j] for j in range(len(s), -1, -1) if count(s[:j]) <= budget)


def reference(text, cursor, budget, share, snap, count=words) -> tuple[int, int, int, int]:
    """(start, end, prefix tokens, suffix tokens)."""
    starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    ends = [*starts[1:], len(text)]  # line k is text[starts[k]:ends[k]], with its break
    lines = [text[a:b] for a, b in zip(starts, ends, strict=True)]
    if lines and not lines[-1]:
        lines.pop()  # the empty "line" after a final break
    row = text[:cursor].count("\n")
    line_start = starts[row]
    line_end = ends[row] if row < len(ends) else len(text)
    pb = max(1, int(budget * share))
    sb = budget - pb
    partial, rest = text[line_start:cursor], text[cursor:line_end]
    pk, rk = _fits_tail(partial, pb, count), _fits_head(rest, sb, count)
    p, s = (count(pk) if pk else 0), (count(rk) if rk else 0)  # an empty piece costs nothing
    first, last = row, row  # first kept line, last kept line

    def grow_prefix(limit):
        nonlocal p, first
        while pk == partial and first > 0 and p + count(lines[first - 1]) <= limit:
            first -= 1
            p += count(lines[first])

    def grow_suffix(limit):
        nonlocal s, last
        while rk == rest and last + 1 < len(lines) and s + count(lines[last + 1]) <= limit:
            last += 1
            s += count(lines[last])

    grow_prefix(pb)
    prefix_at_edge = pk == partial and first == 0
    grow_suffix(budget - p if prefix_at_edge else sb)
    if rk == rest and last + 1 >= len(lines):
        grow_prefix(budget - s)
    while first % max(1, snap) and first < row:  # snap the first line up to a multiple of `snap`
        p -= count(lines[first])
        first += 1
    if last + 1 < len(lines):
        while (last + 1) % max(1, snap) and last > row:  # ... and the line after the last one
            s -= count(lines[last])
            last -= 1
    start = starts[first] if first < row else cursor - len(pk)
    end = ends[last] if last > row else cursor + len(rk)
    return start, end, p, s


def varied_doc(costs: list[int], crlf: bool = False) -> str:
    """Lines of different token costs: a line of cost c has c - 1 words and its break."""
    brk = "\r\n" if crlf else "\n"
    return "".join(" ".join(f"w{i}x{j}" for j in range(c - 1)) + brk for i, c in enumerate(costs))


def pieces(text: str) -> int:
    """A counter with a cost per piece of text, so an empty piece is not free unless the window says so."""
    return words(text) + 1


def two_per_char(text: str) -> int:
    return 2 * len(text)  # a single character can exceed a one-token share


@given(
    st.lists(st.integers(1, 7), min_size=1, max_size=30),
    st.booleans(),
    st.floats(0, 1),
    st.booleans(),
    st.integers(2, 50),
    st.sampled_from([0.25, 0.5, 0.75, 0.9]),
    st.integers(0, 8),
    st.sampled_from([words, pieces, two_per_char]),
)
def test_window_matches_the_reference(costs, crlf, where, at_line_start, budget, share, snap, count):
    text = varied_doc(costs, crlf) + "tail end"
    cursor = int(where * len(text))
    if at_line_start:
        cursor = text.rfind("\n", 0, cursor) + 1
    w = build_window(text, cursor, budget, count, prefix_share=share, snap_lines=snap)
    check_invariants(text, w)
    assert (w.start, w.end, w.prefix_tokens, w.suffix_tokens) == reference(text, cursor, budget, share, snap, count)
    assert w.prefix_tokens + w.suffix_tokens <= budget
    lines = r"[^\n]*\n|[^\n]+"
    assert w.prefix_tokens == sum(map(count, re.findall(lines, w.prefix)))  # counted line by line
    assert w.suffix_tokens == sum(map(count, re.findall(lines, w.suffix)))


@pytest.mark.parametrize(
    "text,cursor,budget,count,prefix,suffix",
    [
        ("a bc", 4, 2, words, " bc", ""),  # dropping one character is enough: the cut keeps the rest
        ("x\nab cd", 2, 2, words, "", "ab "),  # the suffix share (1 token) holds one word
        ("abc\n", 0, 2, two_per_char, "", ""),  # not even one character fits the suffix's single token
        ("ab", 2, 3, two_per_char, "b", ""),  # the prefix's 2 tokens hold exactly one
    ],
)
def test_cursor_line_cut_at_the_share(text, cursor, budget, count, prefix, suffix):
    w = build_window(text, cursor, budget, count, snap_lines=1)
    assert (w.prefix, w.suffix) == (prefix, suffix)
    assert w.prefix_tokens + w.suffix_tokens <= budget


def test_default_snap_is_eight_lines():
    text = varied_doc([3] * 60)
    cursor = text.index("w30x0") + 3
    w = build_window(text, cursor, 60, words, prefix_share=0.5)
    first, after_last = text[: w.start].count("\n"), text[: w.end].count("\n")
    assert (first % 8, after_last % 8) == (0, 0) and 0 < first < 30 < after_last < 60


def test_leftover_moves_across_with_the_cursor_mid_document():
    # lines cost 2, 5, 3, 4, 2, 6, 1, 3 (words + break); cursor in the middle of line 6 (cost 1 as a whole)
    text = varied_doc([2, 5, 3, 4, 2, 6, 3]) + "ab cd"
    cursor = text.index("ab") + 1  # "a|b cd": partial "a" (1 token), rest "b cd" (2 tokens) at the document end
    w = build_window(text, cursor, 20, words, prefix_share=0.5, snap_lines=1)
    # the suffix reaches the end with 2 of its 10 tokens; the prefix may then use 20 - 2 = 18: "a" + 3 + 6 + 2 + 4
    assert (w.prefix_tokens, w.suffix_tokens) == (16, 2)
    assert w.prefix.startswith("w3x0") and w.suffix == "b cd"
    w = build_window(text, text.index("w1x0") + 2, 12, words, prefix_share=0.5, snap_lines=1)
    # near the start: the prefix ("w1" plus line 0, 2 tokens) reaches the edge and leaves 12 - 3 = 9 for the
    # suffix (more than its share of 6): the rest of line 1 (5) and line 2 (3); line 3 (4) would make 12
    assert (w.start, w.prefix_tokens, w.suffix_tokens) == (0, 3, 8)
    assert w.suffix.endswith("w2x1\n")


@pytest.mark.parametrize("row", range(10, 18))  # every position of the window's last line within a block
def test_suffix_end_snaps_to_a_block_boundary(row):
    text = varied_doc([3] * 40)
    cursor = text.index(f"w{row}x0") + 2
    w = build_window(text, cursor, 60, words, prefix_share=0.5, snap_lines=8)
    check_invariants(text, w)
    assert text[: w.end].count("\n") % 8 == 0 and w.end < len(text)
    assert text[: w.start].count("\n") % 8 == 0 and w.start > 0
    assert (w.start, w.end, w.prefix_tokens, w.suffix_tokens) == reference(text, cursor, 60, 0.5, 8)


def test_line_prefix_and_suffix_with_text_after_the_cursor():
    w = build_window("x = 1\r\nfoo(a, b)\r\nz\r\n", 11, 100, words)
    assert (w.line_prefix, w.line_suffix) == ("foo(", "a, b)")
    w = build_window("x\nfoo(a)", 6, 100, words)  # last line, no break after it
    assert (w.line_prefix, w.line_suffix) == ("foo(", "a)")


@pytest.mark.parametrize("budget,share", [(2, 0.1), (2, 0.5), (3, 0.99)])
def test_smallest_budgets_and_shares_are_accepted(budget, share):
    text = varied_doc([2, 3, 2])
    w = build_window(text, text.index("w1x1"), budget, words, prefix_share=share)
    check_invariants(text, w)
    assert w.prefix_tokens + w.suffix_tokens <= budget


@pytest.mark.parametrize("share", [0.0, 1.0, -0.5, 1.5])
def test_prefix_share_must_be_a_fraction(share):
    with pytest.raises(ValueError, match="prefix_share"):
        build_window("abc", 1, 10, words, prefix_share=share)


def test_budget_of_one_is_refused():
    with pytest.raises(ValueError, match="at least 2 tokens"):
        build_window("abc", 1, 1, words)


@pytest.mark.parametrize(
    "text,budget,kept",
    [
        ("", 5, ""),
        ("a b\nc d\ne\n", 0, ""),
        ("a b\nc d\ne\n", 3, "a b\n"),  # whole leading lines
        ("a b\nc d\ne\n", 5, "a b\n"),
        ("a b\nc d\ne\n", 6, "a b\nc d\n"),
        ("a b\nc d\ne\n", 8, "a b\nc d\ne\n"),
        ("a b\nc d\ne", 7, "a b\nc d\ne"),  # no final line break
        ("a b c d\ne\n", 2, "a b "),  # the first line alone is over: its head
        ("a b c d\ne\n", 1, "a "),
    ],
)
def test_head_lines_within_table(text, budget, kept):
    assert head_lines_within(text, budget, words) == kept


def test_tail_text_budget_holds_twice_k_and_a_margin():
    assert [tail_text_budget(k) for k in (0, 1, 8)] == [8, 10, 24]


@pytest.mark.parametrize("cursor", [0, 41, len(DOC) // 2, len(DOC)])
def test_cursor_window_shares_the_budget_only_with_a_suffix_in_the_prompt(cursor):
    assert cursor_window(DOC, cursor, True, 40, 4, words) == build_window(DOC, cursor, 40, words)
    expected = build_window(DOC, cursor, 40 + 16, words, prefix_share=40 / 56)
    assert cursor_window(DOC, cursor, False, 40, 4, words) == expected


@given(st.lists(st.sampled_from(["a\n", "a b\n", "a b c d e\n", "\n", "x"]), max_size=12), st.integers(0, 30))
def test_head_lines_within_is_the_longest_fitting_run_of_lines(lines, budget):
    text = "".join(lines)
    count = len  # characters: every line counts, its break included
    whole = split_lines(text)
    fitting = [n for n in range(len(whole) + 1) if count("".join(whole[:n])) <= budget]
    kept = head_lines_within(text, budget, count)
    if max(fitting) > 0:
        assert kept == "".join(whole[: max(fitting)])
    else:
        assert kept == (whole[0][:budget] if whole else "")

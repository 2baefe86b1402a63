"""Window building: budgets, line cuts, unicode, CRLF, tabs, empty documents, cursor at the edges."""

import pytest

from engine.window import build_window, split_lines


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

"""Post-processing tables: each row is (input..., expected)."""

import pytest

from engine import postprocess as pp


@pytest.mark.parametrize(
    "setting,line_prefix,line_suffix,expected",
    [
        ("auto", "x = foo(", ")", True),
        ("auto", "x = ", "", True),
        ("auto", "    ", "", True),
        ("auto", "x = foo(", "a, b)", False),
        ("auto", "", "    return x", True),  # column 0: whole lines go above
        ("never", "", "", False),
        ("always", "x(", "y)", True),
    ],
)
def test_decide_multiline(setting, line_prefix, line_suffix, expected):
    assert pp.decide_multiline(setting, line_prefix, line_suffix) is expected


def test_decide_multiline_rejects_unknown_setting():
    with pytest.raises(ValueError, match="auto, always or never"):
        pp.decide_multiline("sometimes", "", "")


@pytest.mark.parametrize(
    "text,line_prefix,expected",
    [
        # cursor line opens a block: stop at the next line back at the opener's level
        ("\n    return x\n\ndef g():\n    pass", "def f(x):", "\n    return x\n"),
        # brace block: the closing line at the opener's indent is kept
        ("\n    a();\n}\nint g() {", "void f() {", "\n    a();\n}"),
        # plain statement inside a body: stop when the completion dedents below the cursor line
        ("x = 1\n    y = 2\nz = 3", "    ", "x = 1\n    y = 2"),
        ("a\n        b\n    c\n", "    ", "a\n        b\n    c\n"),
        ("only one line", "    ", "only one line"),
    ],
)
def test_stop_at_block_end(text, line_prefix, expected):
    assert pp.stop_at_block_end(text, line_prefix) == expected


@pytest.mark.parametrize(
    "text,suffix,expected",
    [
        ("a = 1\nreturn a\n", "\nreturn a\n", "a = 1\n"),
        ("a = 1\n    b = 2", "\n\n    b = 2\n", "a = 1\n"),
        ("a = 1\nb = 2", "\nc = 3\n", "a = 1\nb = 2"),
        ("a = 1", "", "a = 1"),
    ],
)
def test_cut_at_suffix_line(text, suffix, expected):
    assert pp.cut_at_suffix_line(text, suffix) == expected


@pytest.mark.parametrize(
    "text,suffix,expected",
    [
        ("    a = 1\n    b = 2\n    c = 3\n", "    b = 2\n    c = 3\n", "    a = 1\n"),
        ("    b = 2\n", "    b = 2\n", ""),
    ],
)
def test_cut_at_suffix_line_at_column_0(text, suffix, expected):
    assert pp.cut_at_suffix_line(text, suffix, at_line_start=True) == expected


@pytest.mark.parametrize(
    "text,prefix,expected",
    [
        ("x)", "foo(", "x)"),  # closes the bracket opened before the cursor
        ("x))", "foo(", "x)"),  # the second one closes nothing
        ("a[0])", "f(", "a[0])"),
        ("a]", "f(", "a"),  # wrong kind
        ("')'", "f(", "')'"),  # inside a string
        ("x)", "s = '('  # (\n", "x"),  # brackets in strings and comments do not count
        ("{a}}", "", "{a}"),
    ],
)
def test_cut_unmatched_closer(text, prefix, expected):
    assert pp.cut_unmatched_closer(text, prefix) == expected


@pytest.mark.parametrize(
    "text,line_suffix,expected",
    [
        ("x)", ")", 1),
        ("x", ")", 0),
        ("x])", "])", 2),
        ("x]", "])", 1),
        ("a) + 1", ") + 1", 5),
        ("b, c):", "):", 2),
        ("", ")", 0),
        ("x)", "", 0),
    ],
)
def test_auto_closed_length(text, line_suffix, expected):
    assert pp.auto_closed_length(text, line_suffix) == expected


@pytest.mark.parametrize(
    "text,suffix,expected",
    [
        ("c = 2\n    b", "    b\n", "c = 2\n"),
        ("return x", "return x\n", ""),  # pure repetition of what follows
        ("a\n", "\n", "a\n"),  # whitespace-only overlap is not a repetition
        ("x = 1", "1\n", "x = 1"),  # overlap inside a line is left alone
    ],
)
def test_trim_suffix_overlap(text, suffix, expected):
    assert pp.trim_suffix_overlap(text, suffix) == expected


@pytest.mark.parametrize(
    "doc,expected",
    [
        ("def f():\n    return 1\n", "    "),
        ("if x {\n  y\n  if z {\n    w\n  }\n}\n", "  "),
        ("func f() {\n\treturn\n}\n", "\t"),
        ("x = 1\n", "    "),
    ],
)
def test_detect_indent(doc, expected):
    assert pp.detect_indent(doc) == expected


@pytest.mark.parametrize(
    "text,unit,line_prefix,expected",
    [
        ("if x:\n    y\n        z", "\t", "", "if x:\n\ty\n\t\tz"),
        ("if x:\n\ty", "    ", "", "if x:\n    y"),
        ("if x:\n    y\n        z", "  ", "", "if x:\n  y\n    z"),
        ("if x:\n    y", "    ", "", "if x:\n    y"),
        ("one line", "\t", "", "one line"),
    ],
)
def test_normalize_indent(text, unit, line_prefix, expected):
    assert pp.normalize_indent(text, unit, line_prefix) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("x = 1\nx = 1\nx = 1\n", True),
        ("abcabcabcabc", True),
        ("))))))))))))", True),
        ("for i in range(10):", False),
        ("a\nb\na\nb", False),
        ("ab", False),
    ],
)
def test_is_repetitive(text, expected):
    assert pp.is_repetitive(text) is expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("```python\nx = 1\n```", "x = 1"),
        ("```\nx = 1\n", "x = 1\n"),
        ("x = 1", "x = 1"),
    ],
)
def test_strip_fences(text, expected):
    assert pp.strip_fences(text) == expected


def ctx(prefix, suffix, multiline=None, indent="    ", chat=False):
    lp, ls = pp.line_prefix_of(prefix), pp.line_suffix_of(suffix)
    ml = pp.decide_multiline("auto", lp, ls) if multiline is None else multiline
    return pp.Context(prefix=prefix, suffix=suffix, multiline=ml, indent=indent, chat=chat)


@pytest.mark.parametrize(
    "raw,prefix,suffix,expected_text,expected_replace,reject",
    [
        # mid-line with code to the right: one line, and the duplicated rest of line is cut
        ("a, b)\nprint(y)", "y = foo(", "c)\n", "a, b", 0, None),
        # auto-closed bracket: the completion replaces it
        ("x + 1)\n", "print(", ")\n", "x + 1)", 1, None),
        # multi-line body stops at the block end
        ("\n    return x\n\ndef g():\n", "def f(x):", "\n", "\n    return x", 0, None),
        # column 0 with code to the right: whole line, break kept, nothing replaced
        ("    for i in x:\n        y\n", "def f():\n", "        y\n", "    for i in x:\n", 0, None),
        # repeats what follows the cursor: nothing left
        ("return x", "def f(x):\n    ", "return x\n", "", 0, "empty"),
        ("   \n  ", "x = ", "\n", "", 0, "empty"),
        ("foo foo foo foo foo foo", "x = ", "\n", "", 0, "repetitive"),
        # CRLF documents get CRLF completions
        ("\n    return x\nz", "def f(x):\r\n    pass\r\ndef g(x):", "\r\n", "\r\n    return x", 0, None),
        # chat answers lose code fences
        ("```python\nreturn x\n```", "def f(x):\n    ", "\n", "return x", 0, None),
    ],
)
def test_finish(raw, prefix, suffix, expected_text, expected_replace, reject):
    chat = raw.startswith("```")
    out = pp.finish(raw, ctx(prefix, suffix, chat=chat))
    assert (out.text, out.replace, out.reject) == (expected_text, expected_replace, reject)

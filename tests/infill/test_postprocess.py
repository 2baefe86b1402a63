"""Post-processing tables: each row is (input..., expected)."""

import pytest
from dcopilot.engine.tasks import postprocess as pp

# Survivors of `python scripts/mutation.py engine/tasks/postprocess.py` that cannot change behaviour: (function, mutated
# line, why). The runner marks a survivor equivalent only when it is listed here.
_VOTES = "every vote counting 2 instead of 1 keeps the ranking"
_NO_QUOTE = 'None and "" are both false: outside a string either way'
EQUIVALENT_MUTANTS = [
    ("detect_indent", "tabs = spaces = 1", "only tabs > spaces is asked: the same offset on both sides"),
    ("detect_indent", "steps[width - prev] += 2", _VOTES),
    ("detect_indent", 'return " " * steps.most_common(None)[0][0]', "the first of all is the first of one"),
    ("detect_indent", 'return " " * steps.most_common(2)[0][0]', "the first of two is the first of one"),
    ("_open_stack", 'quote = None  # the quote character of the string being read, "" outside strings', _NO_QUOTE),
    ("_open_stack", "quote = None", _NO_QUOTE),
    ("cut_unmatched_closer", "quote = None", _NO_QUOTE),
    ("finish", "text = first_line(text, None)", "trim_trailing puts the final line break back when keep_break holds"),
]


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
    assert pp.cut_at_suffix_line(text, suffix, at_line_start=False) == expected


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
    assert pp.cut_unmatched_closer(text, prefix, "") == expected


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
        # a block's first line whose body is not below: half a construct
        ("try:", "def f():\n    ", "\n    return 1\n", "", 0, "no body"),
        ("try:", "def f():\n    ", "\n        return 1\n", "try:", 0, None),  # the body is there
        ("x = 1\n    if x:", "def f():\n    ", "\n    return 1\n", "", 0, "no body"),  # a block's last line too
        # whole lines above the code right of a column-0 cursor: that code is the next line
        ("try:\n", "def f():\n", "    return 1\n", "try:\n", 0, None),
        ("    try:\n", "def f():\n", "    return 1\n", "", 0, "no body"),
        # code right of the cursor stays on the line: the text does not end it
        ("if x", "def f():\n    ", ":\n    return 1\n", "if x", 0, None),
        ("if x", "def f():\n    ", " {\n    return 1\n", "if x", 0, None),
        ("foo(", "    x = ", "a)\n    y = 1\n", "foo(", 0, None),
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


@pytest.mark.parametrize(
    "text,line_prefix,below,expected",
    [
        ("try:", "    ", "    return 1", True),  # the next line is no deeper: no body
        ("try:", "    ", "return 1", True),  # shallower
        ("try:", "    ", "        return 1", False),  # deeper: the body is there
        ("try:", "    ", "\n\n        return 1", False),  # blank lines skipped
        ("try:", "    ", "", False),  # nothing below to judge by
        ("try:", "    ", "\n  \n", False),
        ("if x {", "\t", "\t}", False),  # an empty body closed at the opener's indent
        ("if x {", "\t", "}", True),  # that closer belongs to the block around it
        ("if x {", "\t", "\tfoo()", True),
        ("f(", "    x = ", "    )", False),
        ("f(", "    x = ", "    y = 1", True),
        ("f(a)", "    x = ", "    y = 1", False),  # opens nothing
        ("(x) =>", "  ", "  y", True),
        ("x.each do", "  ", "  end", True),  # only bracket closers count as closing
        ("# Example:", "    ", "    x = 1", False),  # a comment opens nothing
        ("// see:", "  ", "  x()", False),
        ("a\nb:", "    ", "c", True),  # the last line is judged with its own indent (0)
        ("a\nb:", "    ", "    c", False),
        ("case 1:", "\t\t", "\t\tx := 2", True),
        ("case 1:", "\t\t", "\t\tcase 2:", False),  # cases that share the next one's body
        ("case 1:", "\t\t", "\t\tdefault:", False),
        ("default:", "\t\t", "\t}", True),
        ("else:   ", "    ", "    pass", True),  # trailing blanks do not hide the colon
    ],
)
def test_opens_without_body(text, line_prefix, below, expected):
    assert pp.opens_without_body(text, line_prefix, below) is expected


# -- the pieces one by one, with non-empty line suffixes, indented cursors and several indent steps ---------------


@pytest.mark.parametrize(
    "prefix,line_prefix", [("a\nb = (", "b = ("), ("abc", "abc"), ("x\n", ""), ("", ""), ("a\r\n  b", "  b")]
)
def test_line_prefix_of(prefix, line_prefix):
    assert pp.line_prefix_of(prefix) == line_prefix


@pytest.mark.parametrize(
    "suffix,line_suffix",
    [("a)\r\nz", "a)"), ("a)\nz", "a)"), ("xy", "xy"), ("xy\r", "xy"), ("\n", ""), ("", ""), ("a\rb\n", "a\rb")],
)
def test_line_suffix_of(suffix, line_suffix):
    assert pp.line_suffix_of(suffix) == line_suffix


def test_context_exposes_the_cursor_line():
    c = pp.Context(prefix="def f():\n    x = g(", suffix="a)\r\nnext\n", multiline=False, indent="    ")
    assert (c.line_prefix, c.line_suffix, c.chat) == ("    x = g(", "a)", False)


@pytest.mark.parametrize(
    "line,indent", [(" \t x = 1", " \t "), ("x", ""), ("    ", "    "), ("\t\ty ", "\t\t"), ("", "")]
)
def test_indent_of(line, indent):
    assert pp.indent_of(line) == indent


@pytest.mark.parametrize(
    "line_prefix,line_suffix,expected",
    [("", "code()", True), ("", "   ", False), ("", "", False), ("x = ", "code", False), ("  ", "y", False)],
)
def test_keeps_line_break(line_prefix, line_suffix, expected):
    assert pp.keeps_line_break(line_prefix, line_suffix) is expected


@pytest.mark.parametrize(
    "line_prefix,line_suffix,expected",
    [
        ("x = foo(", ")];", True),
        ("x = foo(", "\"',:`", True),
        ("x = foo(", "a)", False),
        ("    ", "  \t", True),
        ("x", "x", False),
    ],
)
def test_decide_multiline_auto(line_prefix, line_suffix, expected):
    assert pp.decide_multiline("auto", line_prefix, line_suffix) is expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("  ```c++ \nint x;\n```\n", "int x;"),
        ("```objective-c\na\nb\n```", "a\nb"),
        ("```c#\nx```", "x"),
        ("```\n\n```", ""),
        ("say ```\nx\n```", "say ```\nx\n```"),  # not a fence at the start
        ("```py x\ny\n```", "```py x\ny\n```"),  # a word after the language: not an opening fence
    ],
)
def test_strip_fences_variants(text, expected):
    assert pp.strip_fences(text) == expected


@pytest.mark.parametrize(
    "text,line_prefix,expected",
    [
        ("    return x", "    ret", "urn x"),  # the chat model repeated the typed part of the line
        ("return x", "  ret", "urn x"),
        ("x = 1", "", "x = 1"),
        ("x = 1", "    ", "x = 1"),
        ("  other()", "    ret", "  other()"),
    ],
)
def test_strip_prefix_echo(text, line_prefix, expected):
    assert pp.strip_prefix_echo(text, line_prefix) == expected


@pytest.mark.parametrize(
    "text,keep_break,expected",
    [("a\nb", False, "a"), ("a\nb", True, "a\n"), ("ab", True, "ab"), ("\nb", False, ""), ("\nb", True, "\n")],
)
def test_first_line(text, keep_break, expected):
    assert pp.first_line(text, keep_break) == expected


@pytest.mark.parametrize(
    "text,line_prefix,expected",
    [
        # the completion's first line finishes the opener: the body is deeper than the indented cursor line
        (":\n        y = 1\n\n        z\n    w = 2", "    if x", ":\n        y = 1\n\n        z"),
        # a closing bracket back at the opener's indent ends the block and is kept; code after it is not
        ("\n        1,\n    ]\n    b = 2", "    a = [", "\n        1,\n    ]"),
        ("\n    a\nend\nputs 1", "x.each do", "\n    a"),  # " do" opens; "end" is not a bracket: cut there
        ("\n  a\nb", "f = () =>", "\n  a"),
        ("\n  a\nb", "if x then", "\n  a"),
        ("\n  a\nb", "call(", "\n  a"),
        # not an opener: lines at the cursor line's indent stay, a dedent ends it; blank lines never do
        ("a\n    b\n\n  \n    c\n  d", "    ", "a\n    b\n\n  \n    c"),
        ("x\n\tb\n  c", "\t", "x\n\tb"),  # a tab is 4 columns
        ("x\n\tb\n    c\n  d", "\t", "x\n\tb\n    c"),
    ],
)
def test_stop_at_block_end_more(text, line_prefix, expected):
    assert pp.stop_at_block_end(text, line_prefix) == expected


@pytest.mark.parametrize(
    "text,suffix,at_line_start,expected",
    [
        # the rest of the cursor line is not the target; the next non-blank line is
        ("x\n    b = 2\nmore", "rest)\n\n    b = 2\n", False, "x\n"),
        ("b = 2\nc", "\nb = 2", False, "b = 2\nc"),  # the first line continues the cursor line: never a match
        ("a = 1\nrest)", "rest)\nz", True, "a = 1\n"),  # at column 0 the code right of the cursor is the target
        ("a = 1\nb", "\n  \n", False, "a = 1\nb"),  # nothing but blank lines follow
    ],
)
def test_cut_at_suffix_line_more(text, suffix, at_line_start, expected):
    assert pp.cut_at_suffix_line(text, suffix, at_line_start=at_line_start) == expected


@pytest.mark.parametrize(
    "text,prefix,line_suffix,expected",
    [
        ("x))", "f(a)(", "", "x)"),  # brackets closed in the prefix do not count
        ("x)]", "f[(a]", "", "x)]"),  # a mismatched closer in the prefix closes nothing: both stay open
        ("x)]", "f[(a)", "", "x"),
        ("x)", 's = "a\\"(" + f(', "", "x)"),  # an escaped quote does not end the string
        ("x))", "t = `(` + f(", "", "x)"),
        ("x)", "f( // (\n", "", "x)"),
        ("x)", "g(  # (\nh(", "", "x)"),  # each line's comment ends at its line
        ("x)", "s = '(\n", "", "x"),  # an unterminated quote ends with its line
        ("a)", "foo(bar(", "x), y)", "a"),  # the rest of the line closes both brackets
        ("a))", "foo(bar(", "x)", "a)"),  # ... or one of them
        ("a)", "foo(", "(b) c)", "a"),  # a bracket the rest of the line opens and closes itself
        ("a)", "foo(", "(b", "a)"),
        ("a))", "foo((", ")]", "a))"),  # only auto-inserted closers after the cursor: the completion may close
        ("(a]", "", "", "(a"),  # wrong kind inside the completion
        ('"x)" + y)', "f(", "", '"x)" + y)'),
        ("'ab\n)", "", "", "'ab\n"),  # a quote in the completion ends at a line break
        ("X))", "f(", "", "X)"),  # X is no quote
        ("a))", "foo(bar(", "((a)) b)", "a)"),  # nested pairs in the rest of the line close nothing
        ("a))", "foo(bar(", "xy)", "a)"),
        ("[a])", "f(", "", "[a])"),
        ("x]", "f(", "", "x"),  # the open bracket is of another kind
    ],
)
def test_cut_unmatched_closer_more(text, prefix, line_suffix, expected):
    assert pp.cut_unmatched_closer(text, prefix, line_suffix) == expected


@pytest.mark.parametrize(
    "text,line_suffix,expected",
    [
        ("x)  ", ")  ", 1),
        ("a)", ")]", 1),  # a leading run of closers, matched as far as it goes
        ("a)]", ")]}", 2),
        ("a)", "); x", 1),
        ("a;", "); x", 0),
        ("   ", ")", 0),
        ("a", "   ", 0),
        ("f(x) + 1", "(x) + 1", 7),  # ends with the whole rest of the line
    ],
)
def test_auto_closed_length_more(text, line_suffix, expected):
    assert pp.auto_closed_length(text, line_suffix) == expected


@pytest.mark.parametrize(
    "text,suffix,expected",
    [
        ("a\nb = 2\nc", "b = 2\nc\n", "a\n"),
        ("zb\nb", "b\nbq", "zb\n"),  # the longest overlap starts mid-line; a shorter one at a line start
        ("x\n  ", "  y", "x\n  "),  # whitespace-only overlap
        ("", "x", ""),
        ("abc", "", "abc"),
    ],
)
def test_trim_suffix_overlap_more(text, suffix, expected):
    assert pp.trim_suffix_overlap(text, suffix) == expected


@pytest.mark.parametrize(
    "doc,expected",
    [
        ("a\n  b\n    c\n      d\n", "  "),  # several steps of 2
        ("a:\n    b\n    c\nd:\n    e\n      f\n", "    "),  # the most common step wins the vote
        ("a\n  b\n    c\nd\n    e\n", "  "),  # two steps of 2 outvote one of 4
        ("\tx\n  y\n", "    "),  # as many tab- as space-indented lines: not tabs; no step up between spaces
        ("a\n\tb\n\t\tc\n  d\n    e\n  f\n", "  "),  # tab lines do not vote for a step
        ("a\n\tb\n\tc\n    d\n", "\t"),
        ("a\n\n   \n   b\n", "   "),  # blank lines are skipped
        ("", "    "),
    ],
)
def test_detect_indent_votes(doc, expected):
    assert pp.detect_indent(doc) == expected


@pytest.mark.parametrize(
    "text,unit,line_prefix,expected",
    [
        # spaces -> tabs, level by level at the completion's own step (2 here); pure tab lines stay
        ("x\n  y\n    z\n\t\tw", "\t", "    ", "x\n\ty\n\t\tz\n\t\tw"),
        ("x\n      a\n    b", "\t", "", "x\n\t\t\ta\n\t\tb"),
        ("x\n\t  a", "\t", "", "x\n\t  a"),  # a tab then spaces: no space-indented line sets a step, 4 assumed
        ("x\n   a\n      b", "\t", "", "x\n\ta\n\t\tb"),
        ("x\ny", "\t", "", "x\ny"),
        # a 4-step completion in a 2-step document, the cursor line indented by a whole model step
        ("x\n            a\n    b", "  ", "        ", "x\n      a\n    b"),  # below the cursor line: as is
        ("x\n    y\n        z", "  ", "  ", "x\n    y\n        z"),  # cursor indent not a model step: as is
        ("x\n   \n  y", "    ", "", "x\n   \n    y"),  # blank lines untouched
        ("x\n\ty", "  ", "", "x\n  y"),  # a tab is one unit of the document
        # widths with no common step above 1 (alignment): left as they are, not multiplied by 4
        ("x\n  y\n   z", "    ", "", "x\n  y\n   z"),
        ("x\n  y\n   z", "\t", "", "x\n  y\n   z"),
    ],
)
def test_normalize_indent_more(text, unit, line_prefix, expected):
    assert pp.normalize_indent(text, unit, line_prefix) == expected


@pytest.mark.parametrize(
    "text,keep_break,expected",
    [
        ("x  \n\n", True, "x\n"),
        ("x  \n\n", False, "x"),
        ("  \n ", True, ""),
        ("", True, ""),
        ("a\n b ", False, "a\n b"),
    ],
)
def test_trim_trailing(text, keep_break, expected):
    assert pp.trim_trailing(text, keep_break) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("abababababab", True),  # exactly the minimum length
        ("ababababab", False),  # shorter than it
        ("abcdeabcdeab", False),  # a pattern seen under three times
        ("abcdabcdabcd", True),  # a pattern of a third of the length
        ("  x\nx  \n x", True),  # lines compared stripped
        ("x\n\nx\n\nx", True),  # blank lines between do not break the run
        ("x\nx\ny\nx", False),
        ("aaaaaaaaaaab", False),
    ],
)
def test_is_repetitive_more(text, expected):
    assert pp.is_repetitive(text) is expected


@pytest.mark.parametrize(
    "raw,prefix,suffix,multiline,chat,expected",
    [
        # a chat answer that repeats the typed part of the line, inside a fence
        ("```python\n    return x\n```", "def f(x):\n    ret", "\n", True, True, pp.Finished("urn x", 0)),
        # CRLF only after the cursor; the auto-closed bracket is replaced; the body keeps its indent
        ("a,\n    b)", "x = foo(", ")\r\ny = 2\r\n", True, False, pp.Finished("a,\r\n    b)", 1)),
        # only the auto-closed bracket again: nothing new
        (")", "foo(", ")\n", False, False, pp.Finished("", 0, "empty")),
        # one line wanted with code after the cursor on the line
        ("x, y\nz = 1", "f(", "a)\n", False, False, pp.Finished("x, y", 0)),
        # the completion ends where the next line of code already is; 2-space document, 4-space completion
        ("\n    a = 1\n    b = 2\nc = 3", "def f():", "\nc = 3\n", True, False, pp.Finished("\n  a = 1\n  b = 2", 0)),
    ],
)
def test_finish_more(raw, prefix, suffix, multiline, chat, expected):
    ctx = pp.Context(
        prefix=prefix, suffix=suffix, multiline=multiline, indent="  " if "c = 3" in suffix else "    ", chat=chat
    )
    assert pp.finish(raw, ctx) == expected


@pytest.mark.parametrize(
    "prefix,stack",
    [
        ("(", ["("]),  # at the very start of a line
        ("fX(", ["("]),
        ('f(a, "x)y", ', ["("]),  # a closer inside a string of several characters
        ("f(a, 'it', [", ["(", "["]),
        ('"\\"" + x(', ["("]),  # an escaped quote, then the real end of the string
        ('f("a\\\\", (', ["(", "("]),  # an escaped backslash does not escape the closing quote
        ("f( // x)", ["("]),  # a // comment, not at the line start
        ("f( # x)", ["("]),
        ("f(\n  'a\n  b)", []),  # a quote ends with its line
        ("f(]", ["("]),
        ("a[b(c)d]e{", ["{"]),
    ],
)
def test_open_stack(prefix, stack):
    assert pp._open_stack(prefix) == stack


@pytest.mark.parametrize("text,keep_break,expected", [("a\nb\nc", False, "a"), ("a\nb\nc", True, "a\n")])
def test_first_line_of_three(text, keep_break, expected):
    assert pp.first_line(text, keep_break) == expected


@pytest.mark.parametrize(
    "text,line_prefix,expected",
    [
        ("  \n    x\ny", "def f():", "  \n    x"),  # blanks after the opener still open a block
        ("x = 1\ny", "    ", "x = 1"),  # the very next line dedents
    ],
)
def test_stop_at_block_end_edges(text, line_prefix, expected):
    assert pp.stop_at_block_end(text, line_prefix) == expected


def test_cut_at_suffix_line_keeps_several_lines():
    assert pp.cut_at_suffix_line("a\nb\nTARGET\nc", "\nTARGET\n", at_line_start=False) == "a\nb\n"


@pytest.mark.parametrize(
    "text,line_suffix,expected",
    [("x)", "  )", 0), ("ax", "x) + y", 0), ("a)x", ")x y", 0), ("ab", "", 0), ("", "", 0)],
)
def test_auto_closed_length_edges(text, line_suffix, expected):
    assert pp.auto_closed_length(text, line_suffix) == expected


@pytest.mark.parametrize(
    "doc,expected",
    [
        ("  a\n  b\n", "  "),  # the first line is indented already
        ("a\n    b\nc\n  d\ne\n  f\n", "  "),  # two votes for 2 beat an earlier one for 4
    ],
)
def test_detect_indent_counts_votes(doc, expected):
    assert pp.detect_indent(doc) == expected


@pytest.mark.parametrize(
    "text,unit,line_prefix,expected",
    [
        ("x\n \ta", "\t", "", "x\n\ta"),  # a space then a tab is 4 columns wide
        ("x\n  b\n\t  a", "\t", "", "x\n\tb\n\t\t\ta"),  # tab and spaces: re-indented at its width
        ("x\n\ta\n  b", "\t", "", "x\n\ta\n\tb"),  # lines after a pure tab line are still converted
        ("x\n        a\n            b", "  ", "        ", "x\n    a\n      b"),  # at the cursor's indent too
        ("x\n  y\n    \n  z", "    ", "", "x\n    y\n    \n    z"),  # blank lines are not rescaled
    ],
)
def test_normalize_indent_edges(text, unit, line_prefix, expected):
    assert pp.normalize_indent(text, unit, line_prefix) == expected


@pytest.mark.parametrize("text,min_len,expected", [("a\nx\nx\nb\nx", 12, False), ("aaa", 3, True), ("aab", 3, False)])
def test_is_repetitive_edges(text, min_len, expected):
    assert pp.is_repetitive(text, min_len) is expected


@pytest.mark.parametrize(
    "raw,prefix,suffix,multiline,expected",
    [
        # CRLF only before the cursor; the model's own CRLF line ends are normalized first
        ("y = 1\r\n    z = 2\r\nw", "if x:\r\n    ", "", True, pp.Finished("y = 1\r\n    z = 2", 0)),
        # the completion's tail repeats the code after the cursor across a CRLF line end
        ("a\nfoo(x)\nbar", "x = 1\r\ny = ", "foo(x)\r\nbar baz\r\n", True, pp.Finished("a", 0)),
        # column 0: the completion reaches the code right of the cursor and goes on
        ("    y = 1\n    return x\n    z = 3", "def f():\n", "    return x\n", True, pp.Finished("    y = 1\n", 0)),
        # column 0, one line wanted: the line break is the completion's
        ("    x = 1\n    z", "def f():\n", "    y\n", False, pp.Finished("    x = 1\n", 0)),
        # column 0 with a closer to the right: nothing is replaced, the line goes above it
        ("x)\n", "f(\n", ")\n", True, pp.Finished("x)\n", 0)),
    ],
)
def test_finish_edges(raw, prefix, suffix, multiline, expected):
    ctx = pp.Context(prefix=prefix, suffix=suffix, multiline=multiline, indent="    ")
    assert pp.finish(raw, ctx) == expected

"""Candidates from context (dcopilot.engine.tasks.retrieve.continuations), as tables: `|` marks the cursor."""

import pytest
from dcopilot.engine.tasks.retrieve import (
    SCAN_LINES,
    SHARED_MAX,
    Match,
    _reindent,
    _renamed_context,
    continuations,
    echo_key,
    rename,
    renaming,
    shape_of,
    shared_before,
)

EQUIVALENT_MUTANTS = [
    (
        "renaming",
        f"for x, y in zip(a[1::2], b[1::2], strict={v}):",
        "the test before returned unless both lines have as many words: strict or not, zip sees equal lengths",
    )
    for v in ("None", "False")
] + [
    (
        "renaming",
        "for x, y in zip(a[1::2], b[1::2], ):",
        "the test before returned unless both lines have as many words: strict or not, zip sees equal lengths",
    ),
    (
        "_bridge",
        "while first < last and not lines[first].strip():",
        "when first == last that line is blank: the next loop steps last below first, and None follows either way",
    ),
    (
        "_bridge",
        "while last > first and not lines[last].strip():",
        "lines[first] is not blank once the loop before has run: last never has to step onto or below it",
    ),
    (
        "_bridge",
        "if first >= last:",
        "a one-line bridge is also the line match at that line, with the same text and facts: the dedup keeps one",
    ),
    (
        "_reindent",
        "if shift > 0:",
        "at a shift of 0 the other branch gives the same line: the whole new indent, then the line without its own",
    ),
    (
        "_reindent",
        "if shift >= 1:",
        "at a shift of 0 the other branch gives the same line: the whole new indent, then the line without its own",
    ),
    (
        "_fit_suffix",
        "return None if at < 0 else text[:at]",
        "a continuation that starts with the suffix is then the empty text, which the final filter drops as blank",
    ),
    (
        "continuations",
        "rest = _fit_suffix(text[end : len(text) if stop <= 0 else stop], line_suffix)",
        "the next line break is found at or after the echo's end, which is past its key: never at 0",
    ),
    (
        "continuations",
        "rest = _fit_suffix(text[end : len(text) if stop < 1 else stop], line_suffix)",
        "the next line break is found at or after the echo's end, which is past its key: never at 0",
    ),
]


def found(doc: str, snippets=(), multiline=True, limit=4) -> list[str]:
    before, after = doc.split("|")
    return [m.text for m in continuations(before, after, snippets, multiline=multiline, limit=limit)]


@pytest.mark.parametrize(
    "doc,expected",
    [
        # an earlier line that starts like the cursor's line continues it
        ("x = load(path)\nprint(x)\nx = lo|\n", ["ad(path)"]),
        # a later line too (the document below the cursor), the nearer first
        ("a = 1\ny = ca|\nb = 2\ny = call(b)\n", ["ll(b)"]),
        ("y = ca|\ny = call(b)\n", ["ll(b)"]),  # the line right below the cursor's
        # the same distance above and below: the texts' order decides; otherwise the nearer line first
        ("y = call(a)\ny = ca|\ny = call(z)\n", ["ll(a)", "ll(z)"]),
        ("y = call(a)\nq\ny = ca|\ny = call(z)\n", ["ll(z)", "ll(a)"]),
        ("y = call(z)\ny = ca|\nq\ny = call(a)\n", ["ll(z)", "ll(a)"]),
        ("y = call(far)\n\n\n\ny = call(near)\ny = ca|", ["ll(near)", "ll(far)"]),
        # the indent does not matter, the typed text does
        ("def f():\n    return g(1)\nreturn g|", ["(1)"]),
        ("X_train = load(path)\nX_train = lo|", ["ad(path)"]),  # only spaces and tabs are indent
        ("  Xab(1)\nq\nXab|", ["(1)"]),  # (the same where no echo finds it: another indent, too few typed)
        ("ab(1)\nq\n\x0cab|", []),  # a form feed is typed text, not indent
        # nothing longer than what is typed: nothing
        ("x = 1\nx = 1|", []),
        ("x = 1\ny|", []),
        # nothing typed: the line after an earlier copy of the previous line (a repeated structure)
        ("if a:\n    run(a)\nif a:\n    |", ["run(a)"]),
        ("if a:\n    run(a)\nif b > 0:\n    |", []),  # previous line differs: no repeat to follow
        ("if a:\n\n    run(a)\nif a:\n    |", ["run(a)"]),  # blank lines between do not break the repeat
        ("if a:\n  \n\n    run(a)\nif a:\n\n    |", ["run(a)"]),
        # more equal lines before the match rank it higher
        ("x0\nif a:\n    one()\nx1\nif a:\n    two()\nx1\nif a:\n    |", ["two()", "one()"]),
    ],
)
def test_continuations_of_the_current_line(doc, expected):
    assert found(doc, multiline=False) == expected


@pytest.mark.parametrize(
    "doc,expected",
    [
        # code right of the cursor: the continuation stops where that code starts
        ("f(alpha, beta)\nf(al|)\n", ["pha, beta"]),
        ("f(alpha, beta)\nf(al|, beta)\n", ["pha"]),
        # the match has no such code after it: another line shape, not offered
        ("f(alpha)\nf(al|, gamma)\n", []),
        ("f(alpha)\nf(alpha, beta)\nf(al|, beta)\n", ["pha"]),  # a line that does not fit leaves the others
        ("  f(alpha)\n  f(alpha, beta)\nf(al|, beta)\n", ["pha"]),  # (also where no echo finds it)
        ("f(a, b)\nf(|, b)\n", ["a"]),  # one character before the code right of the cursor
        ("t = (a, 1), (b, 1)\nt = (|, 1)\n", ["a"]),  # up to the first place that code occurs
    ],
)
def test_code_right_of_the_cursor_bounds_the_continuation(doc, expected):
    assert found(doc) == expected


def test_a_match_that_opens_a_block_also_gives_the_block_reindented():
    doc = "    for k in keys:\n        out[k] = d[k]\n        n += 1\n    done()\nfor k in |"
    assert found(doc) == ["keys:\n    out[k] = d[k]\n    n += 1", "keys:"]
    assert found(doc, multiline=False) == ["keys:"]
    before, after = doc.split("|")
    assert [m.text for m in continuations(before, after)] == found(doc)  # blocks unless told otherwise


@pytest.mark.parametrize(
    "doc,expected",
    [
        # re-indented to the cursor's indent; a blank line inside the body stays empty (no trailing indent), blank
        # lines at its end are dropped
        (
            "for k in keys:\n    a(k)\n\n    b(k)\n\nz()\n  for k in |",
            ["keys:\n      a(k)\n\n      b(k)", "keys:"],
        ),
        ("for k in keys:\n    a(k)\n  \n    b(k)\n  for k in |", ["keys:\n      a(k)\n\n      b(k)", "keys:"]),
        # a line typed in full offers nothing, not even the body after its copy
        ("for k in keys:\n    use(k)\nfor k in keys:|", []),
    ],
)
def test_block_bodies(doc, expected):
    assert found(doc) == expected


BRIDGED = 'if ready:\n    start()\n    log("go")\nrun()\n'


@pytest.mark.parametrize(
    "doc,expected",
    [
        # the lines between a repeat of the line above the cursor and one of the line below, before the first
        # line alone (which has no repeat after it)
        (BRIDGED + "if ready:\n    |\nrun()\n", ['start()\n    log("go")', "start()"]),
        # re-indented to the cursor's indent; blank lines at either end left out, inside kept empty
        (
            'if ready:\n\n        start()\n\n        log("go")\n\nrun()\nclass A:\n  if ready:\n    |\n  run()\n',
            ['start()\n\n    log("go")', "start()"],
        ),
        # the line below the cursor too far down (more than MAX_BLOCK_LINES between): the first line alone
        ("if ready:\n" + "    a()\n" * 7 + "run()\nif ready:\n    |\nrun()\n", ["a()"]),
        (
            "if ready:\n" + "    a()\n" * 6 + "run()\nif ready:\n    |\nrun()\n",
            ["a()\n" + "    a()\n" * 4 + "    a()", "a()"],
        ),
        # nothing (or only blank lines) between the repeats: no bridge, only the line after the repeat above
        ("if ready:\n\nrun()\nif ready:\n    |\nrun()\n", ["run()"]),
        # something typed, or code right of the cursor: the bridge would not fit the line
        (BRIDGED + "if ready:\n    st|\nrun()\n", ["art()"]),
        (BRIDGED + "if ready:\n    |x\nrun()\n", []),
        # nothing below the cursor: nothing to bridge to
        (BRIDGED + "if ready:\n    |", ["start()"]),
        # the line below the cursor right after the repeat above: nothing between (the line there, with its body)
        ("if ready:\nrun()\n    x()\nrun()\nif ready:\n    |\nrun()\n", ["run()\n        x()", "run()"]),
        # the line below the cursor also occurs before the repeat above: only the one after it closes the bridge
        (
            "run()\nif ready:\n    go(1)\n    go(2)\nrun()\nif ready:\n    |\nrun()\n",
            ["go(1)\n    go(2)", "go(1)"],
        ),
        # a repeat of the line above with nothing bridged after it does not end the search
        (
            "if ready:\nrun()\nif ready:\n    go(1)\n    go(2)\nrun()\nif ready:\n    |\nrun()\n",
            ["go(1)\n    go(2)", "go(1)", "run()"],
        ),
    ],
)
def test_bridges_between_repeats_of_the_lines_around_the_cursor(doc, expected):
    assert found(doc) == expected


@pytest.mark.parametrize("after", ["\nend()\nfin()\n", "\nend()\n\nfin()\n", "\nend()\nzzz()\n"])
def test_with_nothing_typed_equal_lines_after_a_match_do_not_make_it_one(after):
    # Measured on the calibration split (bench/RESULTS.md, session 12): offering such lines added as much noise
    # as use at the gate.
    assert continuations("x()\nreturn a\nend()\nfin()\nq\n", after, multiline=False) == []


@pytest.mark.parametrize(
    "line,base,indent,expected",
    [
        ("        x = 1", 4, "  ", "      x = 1"),  # 4 deeper than the block's first line: 4 deeper than the cursor
        ("    x = 1", 4, "  ", "  x = 1"),
        ("  >(", 4, "      ", "    >("),  # 2 shallower: 2 shallower than the cursor, never cut into the code
        ("  >(", 4, "  ", ">("),  # shallower than the new indent allows: column 0
        ("\t\tx", 1, "    ", "    \tx"),
        ("   ", 4, "  ", ""),  # blank: empty, no trailing indent
        ("  \fx", 4, "    ", "  \fx"),  # only blanks and tabs are indentation
        ("  Xy", 4, "    ", "  Xy"),
    ],
)
def test_reindent(line, base, indent, expected):
    assert _reindent(line, base, indent) == expected


def test_a_bridge_keeps_a_line_shallower_than_its_first():
    doc = "f<\n    A,\n  >(\n    x,\n  )\nrun()\nf<\n    |\nrun()\n"
    assert found(doc)[0] == "A,\n  >(\n    x,\n  )"


def test_no_bridge_on_one_line_only():
    assert found(BRIDGED + "if ready:\n    |\nrun()\n", multiline=False) == ["start()"]


def test_lines_after_a_match_that_repeat_those_after_the_cursor():
    # line matches and echoes count them, blank lines skipped, at most CONTEXT_LINES
    doc = "v = f(1)\n\nw = 2\n\nx = 3\ny = 4\nz = 5\nq\n"
    got = continuations(doc + "v = f(", "\nw = 2\nx = 3\n\ny = 4\nz = 5\n", multiline=False)
    assert got == [Match("1)", context=0, typed=6, source=0, distance=8, shared=6, after=3)]
    got = continuations(doc + "v = f(", "\nw = 2\nx = 9\n", multiline=False)
    assert got == [Match("1)", context=0, typed=6, source=0, distance=8, shared=6, after=1)]
    (line,) = continuations("  v = f(1)\n  w = 2\nq\nv = ", "\nw = 2\n", multiline=False)  # no echo: another indent
    assert line == Match("f(1)", context=0, typed=4, source=0, distance=3, shared=4, after=1)
    (echo,) = continuations("q\nr = go(a, b)\nend()\ns = go(a, ", "\nend()\n", multiline=False)
    assert echo == Match("b)", context=0, typed=9, source=0, distance=2, shared=9, after=1)


def test_bridge_facts():
    got = continuations(BRIDGED + "if ready:\n    ", "\nrun()\n")
    assert got == [
        Match('start()\n    log("go")', context=1, typed=0, source=0, distance=4, shared=14, after=1),
        Match("start()", context=1, typed=0, source=0, distance=4, shared=14, after=0),
    ]


def test_the_scan_reaches_scan_lines_below_the_cursor_and_no_further():
    filler = ["pass"] * (SCAN_LINES - 1)
    near = "y = ca|\n" + "\n".join([*filler, "y = call(last)", "y = call(beyond)"]) + "\n"
    assert found(near) == ["ll(last)"]
    far = "y = ca|\n" + "\n".join([*filler, "pass", "y = call(beyond)"]) + "\n"
    assert found(far) == []


def test_snippets_are_searched_after_the_document_and_limit_and_duplicates_apply():
    doc = "total = compute(a)\ntotal = |"
    snippets = ["total = frobnicate(b)\n", "total = compute(a)\ntotal = other()\n"]
    # other() follows a line equal to the cursor's previous line: a repeat outranks a bare prefix match
    assert found(doc, snippets) == ["other()", "compute(a)", "frobnicate(b)"]
    assert found(doc, snippets, limit=2) == ["other()", "compute(a)"]
    assert found("total = |", snippets) == ["frobnicate(b)", "compute(a)", "other()"]  # snippet order
    assert found(doc, snippets, limit=0) == []


def test_match_facts_for_the_score():
    (m,) = continuations("x0\nif a:\n    one()\nx0\nif a:\n    on", "", multiline=False)
    assert m == Match("e()", context=2, typed=2, source=0, distance=3, shared=15)  # "x0\nif a:\n    on"
    snippets = ["v = f(3)\n", "v = f(1)\nv = f(4)\n"]
    got = continuations("v = f(1)\nv = f(", "\nq\nv = f(2)\n", snippets, limit=5)
    assert got == [
        Match("4)", context=1, typed=6, source=2, distance=0, shared=15),  # after a copy of the previous line
        Match("1)", context=0, typed=6, source=0, distance=1, shared=6),  # the document's, not the snippet's copy
        Match("2)", context=0, typed=6, source=0, distance=2, shared=7),  # below the cursor: "\nv = f(" shared
        Match("3)", context=0, typed=6, source=1, distance=0, shared=6),  # 6 or 7 shared: the same rank
    ]


def m(context=0, typed=0, source=0, distance=0, text="x", shared=0, after=0, renamed=0):
    return Match(text, context, typed, source, distance, shared, after, renamed)


@pytest.mark.parametrize(
    "better,worse",
    [
        (m(context=2), m(context=1, typed=9, shared=64)),  # longer repeated context first
        (m(after=1), m(typed=9, shared=64)),  # a repeated line after it counts as one before it
        (m(context=1, after=2), m(context=2, shared=64)),
        (m(context=1), m(context=1, renamed=1, shared=64)),  # then an exact repeat before one under other names
        (m(context=2, renamed=2), m(context=1)),
        (m(shared=8, typed=1), m(shared=7, typed=9)),  # then twice as many characters shared before it
        (m(shared=4), m(shared=3, typed=9)),
        (m(shared=1), m(typed=9)),
        (m(shared=7, typed=3), m(shared=4, typed=2)),  # 4 to 7: one rank, where more typed text wins
        (m(typed=3), m(typed=2)),  # more typed text matched
        (m(source=0, distance=9), m(source=1)),  # the document before snippets
        (m(source=1), m(source=2)),
        (m(distance=1), m(distance=2)),  # the nearest line
        (m(text="a:\n    b"), m(text="a:")),  # a block before its first line alone
        (m(text="a"), m(text="b")),  # then the text, so that the order is total
    ],
)
def test_match_order(better, worse):
    assert sorted([worse, better], key=Match.key) == [better, worse]


@pytest.mark.parametrize(
    "doc,expected",
    [
        # the characters before the cursor occur mid-line elsewhere: the rest of that line continues them
        ("call(a, b)\nreturn call(a, |", ["b)"]),
        ("f(x, timeout=30)\ng(y, timeout=|\n", ["30)"]),
        ("q = 1\nreturn call(a, |\ncall(a, c)", ["c)"]),  # below the cursor too
        # code right of the cursor bounds it, as for a line match; a line where that code does not follow: nothing
        ("f(x, timeout=30)\ng(y, timeout=|)\n", ["30"]),
        ("f(x, timeout=30, retry=2)\ng(y, timeout=|, retry=3)\n", []),
        # nothing typed: the end of the previous line and the indent, repeated after a line that differs
        ("x = f(y)\n    b = 1\nz = g(y)\n    |", ["b = 1"]),
        ("x = f(y)\n    b = 1\nz = g(w)\n    |", []),  # "(w)\n    " occurs nowhere else
        ("x = f(y)\nb = 1\nz += g(y)\n    |", []),  # the indent is part of what must repeat
        # a deeper-indented line after the same key would be mis-indented at the cursor: not offered
        ("x = f(y)\n      b = 1\nz += g(y)\n    |", []),
        ("x = f(y)\n\t\tb = 1\nz += f(y)\n\t|", []),
        ("x = f(y)\n\tb = 1\nz = f(y)\n\t|", ["b = 1"]),
        ("s = 'a   b'\nt = 'a  |", []),  # (a run of blanks in a string too: the echo cut it in two)
        ("a = LIMIT_MAX  # cap\nb = LIMIT_MAX|", ["  # cap"]),  # blanks after a key that ends in a word are kept
        # an echo stays on its line: what follows the line break is not offered
        ("go(a, b\n  more)\ngo(a, |", ["b"]),
        ("ab|", []),  # too little text before the cursor to repeat
    ],
)
def test_echoes_of_the_text_before_the_cursor(doc, expected):
    assert found(doc, multiline=False) == expected


def test_echo_facts():
    # every occurrence (the first at the very start of the text), above and below, ranked by what they share
    got = continuations("go(a, b)\ngo(a, d)\nx\n  y = go(a, ", "\nz\nw = go(a, c)\n")
    assert got == [
        Match("c)", context=0, typed=9, source=0, distance=2, shared=9),  # " = go(a, ": twice as long a repeat
        Match("d)", context=0, typed=6, source=0, distance=2, shared=6),
        Match("b)", context=0, typed=6, source=0, distance=3, shared=6),
    ]
    # an echo that ends with a line break continues on the next line (its distance is that line's)
    assert continuations("x = g(y)\nb = 1\nz += g(y)\n", "") == [
        Match("b = 1", context=0, typed=0, source=0, distance=2, shared=7)
    ]
    assert found("xxxxxxxxa\ny = xxxxxx|") == ["a", "xa", "xxa"]  # overlapping occurrences count each


def test_line_match_facts_where_no_echo_repeats_them():
    # another indent and few typed characters: only the line rule finds these, a block and its first line
    assert continuations("  for k in ks:\n    use(k)\nq\nfor k", "") == [
        Match(" in ks:\n  use(k)", context=0, typed=5, source=0, distance=3, shared=5),
        Match(" in ks:", context=0, typed=5, source=0, distance=3, shared=5),
    ]


def test_an_echo_in_a_snippet_and_its_facts():
    (m,) = continuations("resp = session.get(", "", ["r = session.get(url, timeout=5)\n"])
    # 15 characters shared ("= session.get("); the typed text it matched is the shared part of the line
    assert m == Match("url, timeout=5)", context=0, typed=15, source=1, distance=0, shared=15)
    (m,) = continuations("a = 1\n  b = go(x, ", "\n\n  c = go(x, y)\n")
    assert (m.text, m.context, m.source, m.distance, m.shared) == ("y)", 0, 0, 2, 9)  # " = go(x, " shared


@pytest.mark.parametrize(
    "before,key",
    [
        ("x = lo", "x = lo"),  # six characters, all but one not blank
        ("f(a)(b)", "(a)(b)"),
        ("abc\n    ", "abc\n    "),  # grows until three are not blank
        ("    (", ""),  # too short
        ("ab", ""),
        ("\n" * 80, ""),  # never three non-blank ones within SHARED_MAX
        ("a" + " " * 61 + "bc", "a" + " " * 61 + "bc"),  # the longest key is SHARED_MAX characters
        ("a" + " " * 62 + "bc", ""),
    ],
)
def test_echo_key(before, key):
    assert echo_key(before) == key


@pytest.mark.parametrize(
    "text,at,before,n",
    [
        ("xyz", 3, "..xyz", 3),
        ("axyz!", 4, "bxyz", 3),  # counted back from `at`, up to the first difference
        ("xyz", 0, "xyz", 0),  # nothing before `at`
        ("xyz", 3, "", 0),
        ("a" * 100, 100, "a" * 100, SHARED_MAX),  # at most SHARED_MAX
        ("a" * 100, 100, "b" + "a" * 63, 63),
    ],
)
def test_shared_before(text, at, before, n):
    assert shared_before(text, at, before) == n


def kept(*words):
    return {w: w for w in words}


@pytest.mark.parametrize(
    "seen,want,names,expected",
    [
        ("def monday(self):", "def tuesday(self):", {}, {**kept("def", "self"), "monday": "tuesday"}),
        ("x = f(a, b)", "y = g(a, b)", {}, {**kept("a", "b"), "x": "y", "f": "g"}),  # two words renamed
        ("x = f(a, b)", "y = g(c, b)", {}, None),  # three: more than MAX_RENAMES
        ("f(1)", "f(2)", {}, {"f": "f", "1": "2"}),  # numbers are words too
        ("x = f(a)", "x = f(a)", {}, kept("x", "f", "a")),  # nothing renamed (the caller asks for a rename)
        ("x = f(a)", "x = f(a, b)", {}, None),  # other non-word text
        ("x = f(a)", "x = f[a]", {}, None),
        ("x = f(a)", "x=f(a)", {}, None),  # blanks are non-word text too
        ("a()b", "(a)b", {}, None),  # the same non-word text, elsewhere between the words
        ("use(a)", "use(b)", {"a": "c"}, None),  # a word renamed two ways, here and on a line before
        ("use(a)", "use(b)", {"a": "a"}, None),  # (kept there, renamed here)
        ("use(a)", "use(b)", {"c": "b"}, None),  # two words renamed to one
        ("a + b", "c + c", {}, None),
        ("y = a", "y = y", {}, None),  # (one of them a word kept: y)
        ("use(a)", "use(b)", {"x": "y"}, {"x": "y", "use": "use", "a": "b"}),  # earlier renames carry on
        ("use(a, b)", "use(c, d)", {"x": "y"}, None),  # three in all
        ("a = b", "c = d", {}, None),  # every word renamed: another statement, not a repeat
        ("return None", "return x", {}, None),  # a fixed word (a value or the receiver) never changes
        ("return x", "return None", {}, None),
        ("self.a = 1", "this.a = 1", {}, None),
        ("if x == nil {", "if y == nil {", {}, {"if": "if", "x": "y", "nil": "nil"}),  # kept, it may stay
    ],
)
def test_renaming(seen, want, names, expected):
    assert renaming(seen, want, names) == expected


@pytest.mark.parametrize(
    "text,names,expected",
    [
        ("if day == monday:", {"monday": "tuesday"}, "if day == tuesday:"),
        ('"Scheduling .monday() jobs"', {"monday": "tuesday"}, '"Scheduling .tuesday() jobs"'),  # in strings too
        ("Monday MONDAY monday mondays", {"monday": "tuesday"}, "Tuesday TUESDAY tuesday mondays"),  # whole words
        ("a(b)", {"a": "b", "b": "a"}, "b(a)"),  # all at once, not one after the other
        ("x1 = 1", {"1": "2"}, "x1 = 2"),
        ("a(b)", {}, "a(b)"),
    ],
)
def test_rename(text, names, expected):
    assert rename(text, names) == expected


@pytest.mark.parametrize(
    "line,matches,others",
    [
        ("def monday(self):", ["def tuesday(self):", "  def x(y):  ", "\tdef a1(_):"], ["def f(self, x):", "deff(x):"]),
        ("f(1)", ["g(22)", "f(x)"], ["f(1, 2)", "f()"]),
        ("}", ["}", "   }"], ["})", "} x"]),
        ("a.b", ["c.d"], ["a\n.b", "a. b"]),  # never across a line break
    ],
)
def test_shape_of(line, matches, others):
    # a sieve for renaming(): a line it lets through may still differ (a word renamed two ways); none it stops
    # could be a rename
    shape = shape_of(line)
    assert all(shape.fullmatch(s) for s in matches)
    assert not any(shape.fullmatch(s) for s in others)
    text = "\n".join(["q", *matches, "q"])
    assert [m.group(0).strip() for m in shape.finditer(text)] == [s.strip() for s in matches]


@pytest.mark.parametrize(
    "doc,expected",
    [
        # a repeat of the lines above the cursor under other names: the line after it, renamed alike
        # (then the same line as an echo of the indent after "(self):", which is not renamed)
        (
            "def monday(self):\n    return self.at('monday')\n\ndef tuesday(self):\n    |",
            ["return self.at('tuesday')", "return self.at('monday')"],
        ),
        ("x = a\ny = a\nuse(a)\nx = b\ny = b\n|", ["use(b)", "y = b"]),  # (y = b: after x = a as x = b)
        ("def f(a):\n\n    go(a)\n    q()\ndef f(b):\n    |", ["go(b)"]),  # a blank line between does not matter
        # with a block, the body renamed too, and the first line alone
        (
            "def load(a):\n    for x in a:\n        use(a, x)\ndef save(b):\n    |",
            ["for x in b:\n        use(b, x)", "for x in b:"],
        ),
        # an exact repeat outranks one under other names
        ("if a:\n    one(a)\nif b:\n    two(b)\nif b:\n    |", ["two(b)", "one(b)"]),
        # too many renames, another shape, or a fixed word swapped: no repeat
        ("x = f(a, b)\n    run()\ny = g(c, b)\n|", []),
        ("x = f(a)\n    run()\nx = f(a, b)\n|", []),
        ("x = None\nrun()\nx = z\n|", []),
        # typed text: it still has to start the renamed line
        (
            "def monday(self):\n    return self.at('monday')\n\ndef tuesday(self):\n    return self.|",
            ["at('tuesday')", "at('monday')"],
        ),
    ],
)
def test_repeats_under_other_names(doc, expected):
    assert found(doc) == expected


def test_renamed_repeat_facts():
    # lines before the match count while one set of renames holds: here both (a -> b), then a word kept on one
    # line and renamed on the other (c) ends the run at one line
    assert continuations("x = a\ny = a\nuse(a)\nx = b\ny = b\n", "") == [
        Match("use(b)", context=2, typed=0, source=0, distance=3, shared=1, renamed=1),  # "\n" shared
        Match("y = b", context=1, typed=0, source=0, distance=1, shared=5, renamed=1),
    ]
    assert continuations("c = a\ny = a\nuse(a)\nc = c\ny = c\n", "", multiline=False) == [
        Match("use(c)", context=1, typed=0, source=0, distance=3, shared=1, renamed=1)
    ]


def test_a_block_whose_body_is_already_below_the_cursor_is_not_offered():
    # the match's next line equals the cursor's: its body is written already, the first line alone is offered
    assert found("for k in keys:\n    use(k)\nq\nfor k in |\n    use(k)\n") == ["keys:"]
    assert found("for k in keys:\n    use(k)\nq\nfor k in |\n    other(k)\n") == ["keys:\n    use(k)", "keys:"]


def test_renamed_context_counts_only_repeats_with_a_rename():
    lines = ["x = a", "y = a", "use(a)"]
    assert _renamed_context(lines, 2, ["y = b", "x = b"]) == (2, {"a": "b"})
    assert _renamed_context(lines, 2, ["y = a", "x = a"]) == (0, {})  # an exact repeat: not this function's
    assert _renamed_context(lines, 2, ["y = b", "x = b", "more"]) == (2, {"a": "b"})  # the lines above ran out
    assert _renamed_context(["q", *lines], 3, ["y = b", "x = b", "q"]) == (3, {"a": "b"})
    assert _renamed_context(["q", "q", *lines], 4, ["y = b", "x = b", "q", "q"]) == (3, {"a": "b"})  # CONTEXT_LINES
    assert _renamed_context(lines, 0, ["y = b"]) == (0, {})  # nothing above


def test_renamed_block_facts():
    assert continuations("def load(a):\n    for x in a:\n        use(x)\ndef save(b):\n    ", "") == [
        # two words renamed (load -> save, a -> b); 7 characters shared before it: "):\n    "
        Match("for x in b:\n        use(x)", context=1, typed=0, source=0, distance=3, shared=7, renamed=2),
        Match("for x in b:", context=1, typed=0, source=0, distance=3, shared=7, renamed=2),
    ]


@pytest.mark.parametrize(
    "doc,expected",
    [
        # the lines between a repeat, under other names, of the line above the cursor and one of the line below,
        # renamed alike (then the first line alone)
        (
            'def monday(self):\n    check("monday")\n    go()\n    done()\ndef tuesday(self):\n    |\n    done()\n',
            # (then the same line, not renamed, as an echo of the indent after "(self):")
            ['check("tuesday")\n    go()', 'check("tuesday")', 'check("monday")'],
        ),
        # the line below, renamed alike, closes it too (this bridge is one line: the line match's text, kept once)
        ("def load(a):\n    check(a)\n    use(a)\ndef save(b):\n    |\n    use(b)\n", ["check(b)"]),
        (
            "def load(a):\n    check(a)\n    go()\n    use(a)\ndef save(b):\n    |\n    use(b)\n",
            ["check(b)\n    go()", "check(b)"],
        ),
        # another shape above, or too many renames: no bridge
        ("def monday(self, x):\n    check()\n    done()\ndef tuesday(self):\n    |\n    done()\n", []),
        ("x = f(a, b)\n    check()\n    done()\ny = g(c, d)\n    |\n    done()\n", []),
        # an exact repeat of the line above still bridges as it did, before a renamed one
        (
            "def t(a):\n    one()\n    end()\ndef u(a):\n    two()\n    end()\ndef u(a):\n    |\n    end()\n",
            ["two()", "one()"],
        ),
    ],
)
def test_bridges_between_repeats_under_other_names(doc, expected):
    assert found(doc) == expected


def test_renamed_bridge_facts():
    doc = 'def monday(self):\n    check("monday")\n    go()\n    done()\ndef tuesday(self):\n    '
    got = continuations(doc, "\n    done()\n")
    # one line of context, renamed (monday -> tuesday); the line after it repeats the one below the cursor
    # 15 characters shared before it: "day(self):\n    "
    assert got[0] == Match(
        'check("tuesday")\n    go()', context=1, typed=0, source=0, distance=4, shared=15, after=1, renamed=1
    )

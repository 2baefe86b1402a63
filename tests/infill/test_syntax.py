"""engine/tasks/syntax.py: which texts parse, which hold code, which rewrites may be offered, and how many syntax
errors a completion adds (tables)."""

import pytest
from dcopilot.engine.tasks.syntax import (
    breakage,
    dedent_block,
    error_count,
    errors_added,
    has_code,
    known,
    parses,
    tree,
)

CODEC_CASE = "codec names are case-insensitive: UTF-8 is utf-8"
EQUIVALENT_MUTANTS = [
    ("parses", 'tree = _parser(lang).parse(text.encode("UTF-8", "surrogatepass"))', CODEC_CASE),
    ("has_code", 'stack = [_parser(lang).parse(text.encode("UTF-8", "surrogatepass")).root_node]', CODEC_CASE),
    ("error_count", 'stack = [_parser(lang).parse(text.encode("UTF-8", "surrogatepass")).root_node]', CODEC_CASE),
    (
        "dedent_block",
        'first = next((ln for ln in lines if ln.strip()), "XXXX")',
        "a text with no non-blank line: a default without indent returns the text as it is, as the empty one does",
    ),
]

PARSES = [
    # (language, text, parses)
    ("python", "def add(a, b):\n    return a+b\n", True),
    ("python", "def add(a: int, b: int) -> int:\n    return a + b\n", True),
    ("python", "def add(a, b):\nreturn a+b\n", False),  # body lost its indent
    ("python", "def add(a, b)\n    return a+b\n", False),
    ("python", "x = '\\d'\n", True),  # an invalid escape warns and still parses
    ("python", "x = 1\0\n", False),  # NUL in the source: ast raises ValueError
    ("python", "", True),
    ("py", "x = (", False),  # the CLI's short names work too
    ("js", "let a = (;\n", False),
    ("TS", "let a: number = 1;\n", True),
    ("rs", "fn main() { let x = 1 }\n", False),
    ("sh", "echo hi\n", True),
    # a lone surrogate (an editor can send one) is passed through, not an encoding error
    ("javascript", 'const s = "\ud800";\n', True),
    ("javascript", "function add(a, b) { return a + b; }\n", True),
    ("javascript", "function add(a, b) { return a + ; }\n", False),
    ("javascript", "const x: number = 1;\n", False),  # a type annotation is TypeScript, not JavaScript
    ("typescript", "const x: number = 1;\n", True),
    ("typescript", "function f(a: number { return a }\n", False),
    ("typescriptreact", "const e = <div>{x}</div>;\n", True),
    ("go", "package main\n\nfunc add(a, b int) int {\n\treturn a + b\n}\n", True),
    ("go", "package main\n\nfunc add(a, b int) int {\n\treturn a +\n", False),
    ("rust", "fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n", True),
    ("rust", "fn main() { let x = 1 }\n", False),  # a missing `;` is a MISSING node: an error too
    ("c", "int add(int a, int b) { return a + b; }\n", True),
    ("c", "int add(int a, int b) { return a + b }\n", False),
    ("cpp", "template <typename T> T add(T a, T b) { return a + b; }\n", True),
    ("java", "class A { int add(int a, int b) { return a + b; } }\n", True),
    ("java", "class A { int add(int a, int b) { return a + b; }\n", False),
    ("lua", "local function add(a, b) return a + b end\n", True),
    ("lua", "local function add(a, b) return a + b\n", False),
    ("shellscript", 'if [ -n "$x" ]; then echo hi; fi\n', True),
    ("shellscript", 'if [ -n "$x" ]; then echo hi\n', False),
    ("ruby", "def add(a, b)\n  a + b\nend\n", True),
    ("Python", "x = 1\n", True),  # language ids are case-insensitive
]


@pytest.mark.parametrize(("language", "text", "expected"), PARSES)
def test_parses(language, text, expected):
    assert parses(language, text) is expected


@pytest.mark.parametrize("language", ["python", "Python", "py", "PY", "js", "ts", "rs", "Rs", "sh", "go", "Lua", "tsx"])
def test_known_languages_and_short_names(language):
    assert known(language) is (language != "tsx")  # tsx is a file suffix, not a language id


@pytest.mark.parametrize("language", ["", "plaintext", "markdown", "cobol"])
def test_unknown_languages_are_not_judged(language):
    assert not known(language)
    assert parses(language, "anything (") is None
    assert has_code(language, "anything") is None
    assert breakage(language, "a(", "b)", "a(", "b)") is None
    assert error_count(language, "anything (") is None


HAS_CODE = [
    ("python", "# add a string to b.\n    # a string\n", False),
    ("python", "\n\n", False),
    ("python", "x = 1  # one\n", True),
    ("python", "    return a+b\n", True),  # an indented line alone still holds code
    ("python", "x = (\n", True),  # unfinished code is code
    ("python", '"""an unclosed docstring\n', True),  # the tokenizer fails before the string: code all the same
    ("python", '# c\n"""open\n', True),
    ("py", "# c\n", False),
    ("PY", "x\n", True),
    ("rust", "fn f() {}\n// end\n", True),  # code before a comment
    ("rs", "// c\n", False),
    ("javascript", '// c\nconst s = "\ud800";\n', True),
    ("rust", "// hi\n/* x */\n/// doc\n", False),
    ("rust", "let x = 1;\n", True),
    ("go", "// only words\n", False),
    ("typescript", "/** doc */\nconst x = 1\n", True),
    ("lua", "-- c\n", False),
    ("shellscript", "# c\n", False),
    ("shellscript", "# c\necho hi\n", True),
]


@pytest.mark.parametrize(("language", "text", "expected"), HAS_CODE)
def test_has_code(language, text, expected):
    assert has_code(language, text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("    x = 1\n    y = 2\n", "x = 1\ny = 2\n"),
        ("\n    if x:\n        y()\n", "\nif x:\n    y()\n"),  # blank lines first: the first code line decides
        ("    x = 1\n  y = 2\n", "x = 1\n  y = 2\n"),  # a line indented less keeps its indent
        ("x = 1\n", "x = 1\n"),
        ("\tx\n\ty\n", "x\ny\n"),
        ("", ""),  # no line with code: unchanged
        ("  \n\n", "  \n\n"),
    ],
)
def test_dedent_block(text, expected):
    assert dedent_block(text) == expected


ADD = "def add(a, b):\n    return a+b\n"
BROKEN_DOC = "x = (\n\ndef add(a, b):\n    return a+b\n"  # does not parse, whatever the range becomes
BODY = "    total = a + b\n    return total\n"
BREAKAGE = [
    # (language, before, after, before range, after range, why not or None)
    ("python", ADD, "def add(a: int, b: int) -> int:\n    return a + b\n", ADD, None, None),
    ("python", ADD, "# add a string to b.\n    # a string\n", ADD, None, "deletes the code"),
    ("python", ADD, "def add(a, b) -> int\n    return a+b\n", ADD, None, "breaks the syntax"),
    ("python", ADD, "def add(a, b):\nreturn a+b\n", ADD, None, "breaks the syntax"),
    ("python", "# note\n", "# a better note\n", "# note\n", None, None),  # comments may become comments
    ("python", "# note\n", "", "# note\n", None, None),
    # The document did not parse: the selected block alone (dedented) decides.
    ("python", BROKEN_DOC + BODY, BROKEN_DOC + "    total = a +\n", BODY, "    total = a +\n", "breaks the syntax"),
    ("python", BROKEN_DOC + BODY, BROKEN_DOC + "    return a + b\n", BODY, "    return a + b\n", None),
    # Neither parsed: nothing to keep.
    ("python", "x = (\n", "x = [\n", "x = (\n", "x = [\n", None),
    ("go", "package p\n\nvar x = 1\n", "package p\n\nvar x = \n", "var x = 1\n", "var x = \n", "breaks the syntax"),
    ("rust", "fn f() {}\n", "// gone\n", "fn f() {}\n", None, "deletes the code"),
    ("typescript", "let a = 1;\n", "let a: number = 1;\n", "let a = 1;\n", None, None),
]


@pytest.mark.parametrize(("language", "before", "after", "before_range", "after_range", "why"), BREAKAGE)
def test_breakage(language, before, after, before_range, after_range, why):
    assert breakage(language, before, after, before_range, after if after_range is None else after_range) == why


ERROR_COUNTS = [
    # (language, text, ERROR and MISSING nodes)
    ("python", "def f(x):\n    return x\n", 0),
    ("python", "    return path\n", 0),  # a window starting inside a function is no error by itself
    ("python", "    return path..pathpath\n", 1),
    ("python", "x = (\n", 1),
    ("python", "def f(:\n    x = (\n", 2),  # counted past the first error, where `ast` stops
    ("PY", "x = (\n", 1),
    ("python", "print 'x'\n", 0),  # the grammar knows Python 2's print; `parses` (ast) does not: see below
    ("rust", "fn main() { let x = 1 }\n", 1),  # a MISSING `;`
    ("Rust", "fn a() { let x = 1 }\nfn b() { let y = 2 }\n", 2),
    ("rs", "fn main() { let x = 1; }\n", 0),
    ("typescript", "let a = (;\nlet b = [;\n", 2),
    ("go", "package p\n\nfunc f() {\n\treturn a +\n", 1),
    ("javascript", 'const s = "\ud800";\n', 0),  # a lone surrogate is passed through
    ("javascript", 'const s = "\ud800" +;\n', 1),
    ("python", "", 0),
]


@pytest.mark.parametrize(("language", "text", "expected"), ERROR_COUNTS)
def test_error_count(language, text, expected):
    assert error_count(language, text) == expected


def test_python_still_parses_by_ast_although_its_grammar_counts_errors():
    assert error_count("python", "print 'x'\n") == 0 and parses("python", "print 'x'\n") is False
    assert has_code("python", "# only\n") is False


READ = "def read_lines(path):\n    with open(path) as f:\n        return "
CUT = "a, b)\n    total = a + b\n    return "  # a window that starts inside a call: errors of its own
TS_CUT = "  return a + b;\n}\n\nfunction g("
ERRORS_ADDED = [
    # (language, text before the cursor, inserted text, text after what it replaces, errors added)
    ("python", READ, "f.read().splitlines()", "\n", 0),
    ("python", READ, "path..pathpath", "\n", 1),
    ("python", CUT, "total", "\n", 0),  # the window's own errors cancel
    ("python", CUT, "total..total", "\n", 1),
    ("PY", "x = compute(a, ", "b)", "\ny = 2\n", -1),  # closes what was open: repairs
    ("rust", "fn main() {\n    let x = ", "1;", "\n}\n", -1),
    ("rust", "fn main() {\n    let x = ", "1", "\n}\n", 0),
    ("typescript", TS_CUT, "x: number", ") {\n  return x;\n}\n", 0),
    ("typescript", TS_CUT, "x: number {", ") {\n  return x;\n}\n", 1),
    ("plaintext", "x = (", ")", "", 0),  # no grammar: never judged
]


@pytest.mark.parametrize(("language", "prefix", "text", "suffix", "expected"), ERRORS_ADDED)
def test_errors_added(language, prefix, text, suffix, expected):
    assert errors_added(language, prefix, text, suffix, error_count(language, prefix + suffix)) == expected


@pytest.mark.parametrize(("base", "expected"), [(None, 0), (0, 1), (3, -2)])
def test_errors_added_counts_from_the_base_it_is_given(base, expected):
    assert errors_added("python", "x = ", "(", "\n", base) == expected


@pytest.mark.parametrize(
    "language,source,root",
    [("python", b"x = 1\n", "module"), ("py", b"x = 1\n", "module"), ("Rust", b"fn f() {}\n", "source_file")],
)
def test_tree_parses_with_the_languages_grammar_under_any_of_its_names(language, source, root):
    t = tree(language, source)
    assert t.root_node.type == root and not t.root_node.has_error
    assert t.root_node.end_byte == len(source)

"""Exact refactorings named by an instruction (engine/tasks/refactor.py), as tables: which instructions, and what
each one makes of a range in each language, or why it leaves the range to the model (None)."""

import pytest
from dcopilot.engine.tasks.refactor import AddParameter, Rename, add_parameter, exact, parse_instruction, rename


@pytest.mark.parametrize(
    "instruction,plan",
    [
        ("rename the local variable `count` to `total`", Rename("count", "total")),
        ("Rename count to total", Rename("count", "total")),
        ("rename 'count' as 'total'.", Rename("count", "total")),
        ('rename variable "a" into "b"', Rename("a", "b")),
        ("  rename the parameter x -> y  ", Rename("x", "y")),
        ("rename $el to $node", Rename("$el", "$node")),
        ("rename count to count", None),  # nothing to do
        ("rename count to total and sort", None),  # more than a rename: the model's
        ("rename count", None),
        ("please rename count to total", None),
        ("rename count to 9lives", None),  # not a name
        ("add a parameter `verbose=False` at the end of the parameter list", AddParameter("verbose=False")),
        ("add parameter `verbose bool`", AddParameter("verbose bool")),
        ("Add a new argument `x: i32` to the end.", AddParameter("x: i32")),
        ("add the param ` opts ` at the end of the arguments", AddParameter("opts")),
        ("add a parameter verbose", None),  # only a parameter in backticks is taken as written
        ("add a parameter `verbose` and use it", None),
        ("add type hints", None),
        ("fix the off-by-one error", None),
        ("", None),
    ],
)
def test_parse_instruction(instruction, plan):
    assert parse_instruction(instruction) == plan


PY = 'x = count\ndef f(a, count=1):\n    n = count + a.count + g(count=a)\n    return f"{count}" + n\ny = count\n'
PY_FN = (PY.index("def"), PY.index("y = "))


@pytest.mark.parametrize(
    "language,text,span,old,new,expected",
    [
        # identifiers only: not an attribute, a keyword argument's name, a string; f-string fields are code
        (
            "python",
            PY,
            PY_FN,
            "count",
            "total",
            'def f(a, total=1):\n    n = total + a.count + g(count=a)\n    return f"{total}" + n\n',
        ),
        ("python", PY, None, "n", "k", PY.replace("    n = ", "    k = ").replace("+ n\n", "+ k\n")),  # whole file
        ("python", PY, PY_FN, "count", "n", None),  # the new name is already used in the range
        ("python", PY, PY_FN, "missing", "total", None),  # nothing to rename
        ("python", "def f(:\n    count = 1\n", (0, 20), "count", "total", None),  # a syntax error in the range
        (
            "python",
            PY,
            PY_FN,
            "g",
            "h",
            'def f(a, count=1):\n    n = count + a.count + h(count=a)\n    return f"{count}" + n\n',
        ),
        # TypeScript: property names are other nodes; a shorthand {count} would change the key
        (
            "typescript",
            "function f(count: number) {\n  const o = {count: count};\n  return o.count + count;\n}\n",
            None,
            "count",
            "total",
            "function f(total: number) {\n  const o = {count: total};\n  return o.count + total;\n}\n",
        ),
        ("typescript", "function f(count: number) {\n  return {count};\n}\n", None, "count", "total", None),
        # Go and Rust: fields are field_identifier nodes; Rust's shorthand initializer is refused
        (
            "go",
            "func f(s S) int {\n\tn := s.n\n\treturn n * n\n}\n",
            None,
            "n",
            "total",
            "func f(s S) int {\n\ttotal := s.n\n\treturn total * total\n}\n",
        ),
        ("rust", "fn f() -> S {\n    let n = 1;\n    S { n }\n}\n", None, "n", "m", None),
        (
            "rust",
            "fn f() -> S {\n    let n = 1;\n    S { n: n }\n}\n",
            None,
            "n",
            "m",
            "fn f() -> S {\n    let m = 1;\n    S { n: m }\n}\n",
        ),
        ("cobol", "MOVE A TO B.", None, "A", "C", None),  # no grammar
    ],
)
def test_rename(language, text, span, old, new, expected):
    assert rename(language, text, *(span or (0, len(text))), old, new) == expected


def test_rename_stays_inside_the_range_and_counts_characters_not_bytes():
    text = 'é = "😀"\ncount = 1\nprint(count)\nz = count\n'
    start, end = text.index("count"), text.index("z =")
    assert rename("python", text, start, end, "count", "total") == "total = 1\nprint(total)\n"
    # a range that cuts an `old` at its edge is not renamed in part; one that cuts another name is
    assert rename("python", text, start + 1, end, "count", "total") is None
    assert rename("python", "abc = count\n", 1, 12, "count", "total") == "bc = total\n"
    # names that end where the range starts, or start where it ends, are outside it
    text = "y = count\nz = count\ncount = 2\n"
    start, end = text.index("\n"), text.rindex("count")
    assert rename("python", text, start, end, "count", "total") == "\nz = total\n"
    assert rename("python", "x = count", 0, 9, "count", "total") == "x = total"  # a name ending at the range's end


def test_a_lone_surrogate_in_the_document_is_kept():
    text = 's = "\ud800"\ncount = len(s) + count\n'
    assert rename("python", text, 0, len(text), "count", "n") == 's = "\ud800"\nn = len(s) + n\n'
    assert (
        add_parameter("python", "def f(a):\n    return '\ud800'\n", 0, 29, "b=1")
        == "def f(a, b=1):\n    return '\ud800'\n"
    )


@pytest.mark.parametrize(
    "language,text,param,expected",
    [
        ("python", "def f(a, b=1):\n    return a\n", "verbose=False", "def f(a, b=1, verbose=False):\n    return a\n"),
        ("python", "def f():\n    return 1\n", "verbose=False", "def f(verbose=False):\n    return 1\n"),
        # one parameter per line: a line of its own, with a trailing comma when the list has one
        (
            "python",
            "def f(\n    a,\n    b,\n):\n    pass\n",
            "c=0",
            "def f(\n    a,\n    b,\n    c=0,\n):\n    pass\n",
        ),
        ("python", "def f(\n    a,\n    b\n):\n    pass\n", "c=0", "def f(\n    a,\n    b,\n    c=0\n):\n    pass\n"),
        # a list that wraps after its first item is one line for this purpose
        ("python", "def f(a,\n      b):\n    pass\n", "c=0", "def f(a,\n      b,\n      c=0):\n    pass\n"),
        (
            "go",
            "func (t *T) f(a int) error {\n\treturn nil\n}\n",
            "verbose bool",
            "func (t *T) f(a int, verbose bool) error {\n\treturn nil\n}\n",
        ),
        (
            "rust",
            "fn f(&self, a: u8) -> u8 {\n    a\n}\n",
            "verbose: bool",
            "fn f(&self, a: u8, verbose: bool) -> u8 {\n    a\n}\n",
        ),
        (
            "typescript",
            "function f(a: number): number {\n  return a;\n}\n",
            "verbose = false",
            "function f(a: number, verbose = false): number {\n  return a;\n}\n",
        ),
        ("python", "x = 1\ny = 2\n", "v=0", None),  # no function
        # a comment after the last parameter stays after it
        (
            "python",
            "def f(\n    a,  # first\n    b,  # second\n):\n    pass\n",
            "c=0",
            "def f(\n    a,  # first\n    b,\n    c=0,  # second\n):\n    pass\n",
        ),
        # a lambda's or a closure's bare parameter list is not a bracketed one
        ("python", "f = lambda x, y: x\n", "c=0", None),
        ("rust", "fn main() {\n    let f = |a: u8| a;\n}\n", "b: u8", "fn main(b: u8) {\n    let f = |a: u8| a;\n}\n"),
        ("rust", "let f = |a: u8| a;\n", "b: u8", None),
        ("cobol", "PROCEDURE DIVISION.", "v", None),
    ],
)
def test_add_parameter(language, text, param, expected):
    assert add_parameter(language, text, 0, len(text), param) == expected


def test_add_parameter_goes_to_the_first_function_that_starts_in_the_range():
    text = "def outer(a):\n    def inner(b):\n        return b\n    return inner\n"
    end = text.index("    return inner")
    assert (
        add_parameter("python", text, text.index("    def"), end, "c=0") == "    def inner(b, c=0):\n        return b\n"
    )
    start = text.index("    def inner")
    assert add_parameter("python", text, start, len(text), "c=0").startswith("    def inner(b, c=0):")
    assert add_parameter("python", text, 0, len(text), "c=0").startswith("def outer(a, c=0):\n    def inner(b):")


def test_exact():
    text = "def f(a):\n    n = a\n    return n\n"
    assert exact("python", text, 0, len(text), "rename n to total") == (
        "rename",
        "def f(a):\n    total = a\n    return total\n",
    )
    assert exact("python", text, 0, len(text), "add a parameter `b=2`") == (
        "parameter",
        "def f(a, b=2):\n    n = a\n    return n\n",
    )
    assert exact("python", text, 0, len(text), "rename q to total") is None  # not there: the model's turn
    assert exact("python", "x = 1\n", 0, 6, "add a parameter `b=2`") is None  # no function: the model's turn
    assert exact("python", text, 0, len(text), "add type hints") is None
    # only the range changes
    two = text + "n = 4\ndef g():\n    pass\n"
    assert exact("python", two, 0, len(text), "rename n to k") == (
        "rename",
        text.replace("n =", "k =").replace("n\n", "k\n"),
    )
    assert exact("python", two, len(text) + 6, len(two) - 9, "add a parameter `b=2`") == ("parameter", "def g(b=2):\n")

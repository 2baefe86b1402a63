"""LSP positions <-> code-point indices (lsp/encoding.py), checked against a per-character reference: a code
point is 1 UTF-32 unit, 1 or 2 UTF-16 units (2 above U+FFFF) and 1 to 4 UTF-8 bytes."""

import itertools

import pytest
from dcopilot.lsp import encoding as enc
from hypothesis import given
from hypothesis import strategies as st

from unit_width import units

# Survivors of `python scripts/mutation.py lsp/encoding.py` that cannot change behaviour: (function, mutated
# line, why). The runner marks a survivor equivalent only when it is listed here.
EQUIVALENT_MUTANTS = [
    (
        "column_to_index",
        "if character < 0:",
        "column 0 then takes the general path, which also answers 0 (min(0, n) or an empty decoded prefix)",
    ),
    (
        "_has_surrogate",
        "return not text.isascii() or _LONE_SURROGATE.search(text) is not None",
        "the isascii test is only a shortcut: ASCII text never matches the surrogate pattern",
    ),
    (
        "sanitize",
        'return _LONE_SURROGATE.sub("\\ufffd", text) if (_has_surrogate(text)) or True else text',
        "the check only skips a scan: a substitution without a match returns the very same string",
    ),
    ("column_to_index", 'data = content.encode("UTF-16-LE")', "codec names are case-insensitive"),
    ("column_to_index", 'data = content.encode("UTF-8")', "codec names are case-insensitive"),
    ("split_lines", "start = None", "text[None:end] is text[0:end]"),
]


def ref_column(content: str, index: int, encoding: str) -> int:
    return sum(units(c, encoding) for c in content[: max(0, index)])


def ref_index(content: str, character: int, encoding: str) -> int:
    """The last code point boundary at or before `character` units (LSP: inside a character rounds down)."""
    best, col = 0, 0
    for i, c in enumerate(content):
        col += units(c, encoding)
        if col > character:
            break
        best = i + 1
    return best


@pytest.mark.parametrize(
    "offered, chosen",
    [
        (None, "utf-16"),
        ([], "utf-16"),
        (["utf-8"], "utf-8"),
        (["utf-32", "utf-16"], "utf-32"),
        (["latin-1", "utf-8", "utf-32"], "utf-8"),
        (["ebcdic"], "utf-16"),
    ],
)
def test_choose_takes_the_first_supported(offered, chosen):
    assert enc.choose(offered) == chosen


@pytest.mark.parametrize(
    "line, character, encoding, index",
    [
        ("abc", 0, "utf-16", 0),
        ("abc", 1, "utf-8", 1),
        ("abc", 2, "utf-16", 2),
        ("abc", 99, "utf-16", 3),  # past the end of the line: the end
        ("abc", -4, "utf-8", 0),
        ("a😀b", 0, "utf-16", 0),
        ("a😀b", 1, "utf-16", 1),
        ("a😀b", 2, "utf-16", 1),  # inside the surrogate pair: rounds down
        ("a😀b", 3, "utf-16", 2),
        ("a😀b", 9, "utf-16", 3),
        ("a😀b", 2, "utf-32", 2),
        ("a😀b", 9, "utf-32", 3),
        ("a😀b", 3, "utf-8", 1),  # inside the 4-byte sequence
        ("a😀b", 5, "utf-8", 2),
        ("a😀b", 6, "utf-8", 3),
        ("数据x", 1, "utf-8", 0),
        ("数据x", 3, "utf-8", 1),
        ("数据x", 6, "utf-8", 2),
        ("数据x", 2, "utf-16", 2),
        ("\tx", 1, "utf-16", 1),
        ("é", 1, "utf-8", 0),
        ("é", 2, "utf-8", 1),
    ],
)
def test_column_to_index(line, character, encoding, index):
    assert enc.column_to_index(line, character, encoding) == index


@pytest.mark.parametrize(
    "line, index, encoding, column",
    [
        ("abc", 2, "utf-8", 2),
        ("abc", -1, "utf-16", 0),
        ("abc", 9, "utf-8", 3),
        ("a😀b", 0, "utf-16", 0),
        ("a😀b", 2, "utf-16", 3),
        ("a😀b", 2, "utf-8", 5),
        ("a😀b", 2, "utf-32", 2),
        ("a😀b", 9, "utf-16", 4),
        ("a😀b", -2, "utf-8", 0),
        ("数据x", 3, "utf-8", 7),
    ],
)
def test_index_to_column(line, index, encoding, column):
    got = enc.index_to_column(line, index, encoding)
    assert got == column and type(got) is int


CONTENT = st.text(alphabet=st.sampled_from("ab \t数é😀𝄞"), max_size=12)
ENCODING = st.sampled_from(enc.SUPPORTED)


@given(CONTENT, st.integers(-3, 40), ENCODING)
def test_columns_match_the_per_character_reference(content, n, encoding):
    assert enc.column_to_index(content, n, encoding) == ref_index(content, n, encoding)
    column = enc.index_to_column(content, n, encoding)
    assert column == ref_column(content, min(n, len(content)), encoding) and type(column) is int
    assert enc.length(content, encoding) == ref_column(content, len(content), encoding)


@given(CONTENT, ENCODING)
def test_index_column_round_trip_and_monotone(content, encoding):
    columns = [enc.index_to_column(content, i, encoding) for i in range(len(content) + 1)]
    assert columns == sorted(set(columns))  # strictly increasing
    for i, column in enumerate(columns):
        assert enc.column_to_index(content, column, encoding) == i


@pytest.mark.parametrize(
    "line, content",
    [
        ("ab\r\n", "ab"),
        ("ab\n", "ab"),
        ("ab\r", "ab"),
        ("ab", "ab"),
        ("\r\n", ""),
        ("\n", ""),
        ("", ""),
        ("a\rb\n", "a\rb"),
    ],
)
def test_line_content_drops_only_the_terminator(line, content):
    assert enc.line_content(line) == content


@pytest.mark.parametrize(
    "text, lines",
    [
        ("", [""]),
        ("a\nb", ["a\n", "b"]),
        ("a\r\nb\r\n", ["a\r\n", "b\r\n", ""]),
        ("a\rb", ["a\r", "b"]),
        ("\n\r\n\r", ["\n", "\r\n", "\r", ""]),
        ("a\x0bb\u2028c\x85d\x0c", ["a\x0bb\u2028c\x85d\x0c"]),  # not LSP line ends
    ],
)
def test_split_lines_uses_lsp_line_ends_only(text, lines):
    assert enc.split_lines(text) == lines


@given(st.text(alphabet=st.sampled_from("ab\r\n\u2028"), max_size=30))
def test_split_lines_laws(text):
    lines = enc.split_lines(text)
    assert "".join(lines) == text
    for line in lines[:-1]:
        assert enc.line_content(line) + line[len(enc.line_content(line)) :] == line
        assert "\n" not in line[:-1] and "\r" not in line.removesuffix("\r\n")[:-1]
        assert line.endswith(("\n", "\r"))
    assert not lines[-1].endswith(("\n", "\r"))
    assert all(not (a.endswith("\r") and b.startswith("\n")) for a, b in itertools.pairwise(lines))  # CRLF is one end


@pytest.mark.parametrize(
    "text, clean",
    [
        ("a\ud800b😀", "a\ufffdb😀"),
        ("\udfff", "\ufffd"),
        ("plain", "plain"),
        ("数据", "数据"),
        ("x\ud83d\ude00", "x\ufffd\ufffd"),  # a pair of surrogate code points is two lone ones in a str
    ],
)
def test_sanitize_replaces_lone_surrogates_only(text, clean):
    out = enc.sanitize(text)
    assert out == clean and len(out) == len(text)

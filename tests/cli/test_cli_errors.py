"""Bad command lines and bad input files get one clear line on stderr and exit 2, before any model loads."""

import sys

import pytest
from dcopilot.copilot import cli


def _fails_cleanly(result, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "demo.py"
    path.write_text("def f(x):\n    return x\n", encoding="utf-8")  # lines: 9, 12 and 0 characters
    return path


def test_complete_missing_file(dcopilot, tmp_path):
    result = dcopilot("complete", str(tmp_path / "nope.py"), "--line", "1", "--col", "1")
    _fails_cleanly(result, "nope.py: no such file")


def test_complete_directory(dcopilot, tmp_path):
    _fails_cleanly(dcopilot("complete", str(tmp_path), "--line", "1", "--col", "1"), "is a directory")


def test_complete_line_past_end(dcopilot, source):
    result = dcopilot("complete", str(source), "--line", "4", "--col", "1")
    _fails_cleanly(result, "line 4 is past the end", "(3 lines)")


def test_complete_column_past_end(dcopilot, source):
    result = dcopilot("complete", str(source), "--line", "2", "--col", "14")
    _fails_cleanly(result, "column 14 is past the end of line 2", "(12 characters)")


@pytest.mark.parametrize("value", ["0", "-1", "x", "1.5"])
def test_complete_line_must_be_positive(dcopilot, source, value):
    result = dcopilot("complete", str(source), "--line", value, "--col", "1")
    _fails_cleanly(result, "--line", "expected a whole number >= 1")


def test_complete_requires_position(dcopilot, source):
    _fails_cleanly(dcopilot("complete", str(source)), "--line", "required")


def test_complete_non_utf8(dcopilot, tmp_path):
    path = tmp_path / "latin1.py"
    path.write_bytes(b"s = '\xe9t\xe9'\n")
    _fails_cleanly(dcopilot("complete", str(path), "--line", "1", "--col", "1"), "not UTF-8 text")


@pytest.mark.parametrize("bad", ["1:2-3", "1-2", "a:b-c:d", "1:1:1-2:2", ""])
def test_edit_bad_range_syntax(dcopilot, source, bad):
    _fails_cleanly(dcopilot("edit", str(source), "--range", bad), "bad --range", "L1:C1-L2:C2")


def test_edit_range_backwards(dcopilot, source):
    _fails_cleanly(dcopilot("edit", str(source), "--range", "2:3-1:1"), "start comes after the end")


def test_edit_range_zero(dcopilot, source):
    _fails_cleanly(dcopilot("edit", str(source), "--range", "0:1-1:1"), "start at 1")


def test_edit_range_past_end(dcopilot, source):
    _fails_cleanly(dcopilot("edit", str(source), "--range", "1:1-9:1"), "line 9 is past the end")


def test_edit_missing_file(dcopilot, tmp_path):
    _fails_cleanly(dcopilot("edit", str(tmp_path / "x.py"), "--range", "1:1-1:2"), "no such file")


def test_eval_missing_cases(dcopilot, tmp_path):
    _fails_cleanly(dcopilot("eval", "--cases", str(tmp_path / "cases.jsonl")), "cases.jsonl: no such file")


def test_eval_bad_layout(dcopilot, tmp_path):
    _fails_cleanly(dcopilot("eval", "--cases", "x.jsonl", "--layout", "D"), "invalid choice: 'D'")


@pytest.mark.parametrize("port", ["0", "65536", "http"])
def test_serve_bad_port(dcopilot, port):
    _fails_cleanly(dcopilot("serve", "--tcp", port), "expected a port number 1-65535")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1:1-1:1", (1, 1, 1, 1)),
        ("3:1-5:10", (3, 1, 5, 10)),
        (" 2:4 - 2:9 ", (2, 4, 2, 9)),
        ("10:2-11:1", (10, 2, 11, 1)),  # compared as (line, col), not digit by digit
    ],
)
def test_parse_range(text, expected):
    assert cli.parse_range(text) == expected


@pytest.mark.parametrize(
    "line, col, error",
    [
        (1, 1, None),
        (1, 10, None),  # just after the last character of "def f(x):"
        (1, 11, "column 11 is past the end of line 1"),
        (3, 1, None),  # the empty line after the final newline
        (3, 2, "column 2 is past the end of line 3"),
        (4, 1, "line 4 is past the end"),
    ],
)
def test_check_position(source, line, col, error):
    path, lines = cli._read_source(str(source))
    if error is None:
        cli._check_position(path, lines, line, col)
    else:
        with pytest.raises(cli.UsageError, match=error):
            cli._check_position(path, lines, line, col)


def test_crlf_and_cr_count_as_line_breaks(tmp_path):
    path = tmp_path / "crlf.py"
    path.write_bytes(b"ab\r\ncd\rxyz")
    assert cli._read_source(str(path))[1] == ["ab", "cd", "xyz"]


def test_missing_module_is_not_available(tmp_path, monkeypatch):
    with pytest.raises(cli.Unavailable, match=r"not available yet \(copilot.no_such_part is not part"):
        cli._load("copilot.no_such_part", "main")


def test_module_with_missing_dependency_is_not_available(tmp_path, monkeypatch):
    (tmp_path / "half_written_part.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(cli.Unavailable, match="needs no_such_dependency_xyz, which is missing"):
        cli._load("half_written_part", "main")
    sys.modules.pop("half_written_part", None)


def test_module_without_entry_function_is_not_available():
    with pytest.raises(cli.Unavailable, match=r"has no nothing_here\(\)"):
        cli._load("dcopilot.copilot.logs", "nothing_here")

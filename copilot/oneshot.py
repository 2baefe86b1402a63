"""`dcopilot complete` and `dcopilot edit`: one request against a file, without the LSP server.

Lines and columns on the command line are 1-based (columns count code points); they become Python str offsets
here, the unit engine/ works in. The file is only read: `edit` prints the change (a unified diff, or the edits as
JSON) and leaves the file as it is.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from pathlib import Path

from dcopilot.copilot.requests import edit_request, gate_for, infill_request, load_configured_model, unfitted

_BREAK = re.compile(r"\r\n|\r|\n")


def offset_of(text: str, line: int, col: int) -> int:
    """Offset of 1-based (line, col); lines end at \\n, \\r\\n or \\r like the CLI's checks; col may be one past
    the end of the line (the cursor after its last character)."""
    if line < 1 or col < 1:
        raise ValueError("lines and columns start at 1")
    start = 0
    for _ in range(line - 1):
        m = _BREAK.search(text, start)
        if m is None:
            raise ValueError(f"line {line} is past the end of the file")
        start = m.end()
    m = _BREAK.search(text, start)
    end = m.start() if m else len(text)
    if start + col - 1 > end:
        raise ValueError(f"column {col} is past the end of line {line} ({end - start} characters)")
    return start + col - 1


def position_of(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, col) of an offset (inverse of offset_of)."""
    head = text[:offset]
    breaks = list(_BREAK.finditer(head))
    line_start = breaks[-1].end() if breaks else 0
    return len(breaks) + 1, offset - line_start + 1


def _read(path: Path) -> str:
    # newline="" keeps \r\n as is: offsets must index the file's real text.
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def _language(path: Path) -> str:
    return {
        ".py": "python",
        ".js": "javascript",
        ".ts": "typescript",
        ".rs": "rust",
        ".go": "go",
        ".c": "c",
        ".h": "c",
        ".cpp": "cpp",
        ".java": "java",
        ".lua": "lua",
        ".rb": "ruby",
        ".sh": "shellscript",
    }.get(path.suffix.lower(), "")


def _fail(message: str, code: int = 1) -> int:
    print(f"dcopilot: {message}", file=sys.stderr)
    return code


def complete_main(config, path, line: int, col: int, as_json: bool) -> int:
    from dcopilot.copilot.gate import gate, why_hidden
    from dcopilot.engine.tasks.infill import run_infill

    path = Path(path)
    try:
        text = _read(path)
        cursor = offset_of(text, line, col)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return _fail(f"{path}: {e}", 2)
    try:
        model = load_configured_model(config)
    except Exception as e:  # the loader's errors are one-line messages
        return _fail(f"cannot load the model: {e}")
    min_score = gate_for(model, config.completion.min_score)
    if min_score is None:
        print(f"note: {unfitted(model.path)}", file=sys.stderr)
    req = infill_request(
        config, text=text, cursor=cursor, language=_language(path), path=path.name, min_score=min_score
    )
    result = run_infill(model, req)
    candidates = gate(result.candidates, min_score)
    hidden = why_hidden(result.candidates, min_score, result.unwritten)
    if as_json:
        out = []
        for cand in candidates:
            (sl, sc), (el, ec) = position_of(text, cand.start), position_of(text, cand.end)
            out.append(
                {
                    "text": cand.text,
                    "start": {"line": sl, "col": sc},
                    "end": {"line": el, "col": ec},
                    "score": round(cand.score, 4),
                }
            )
        print(
            json.dumps(
                {
                    "candidates": out,
                    "steps": result.steps,
                    "seconds": round(result.seconds, 4),
                    "prompt_tokens": result.prompt_tokens,
                    "layout": result.layout,
                    "prompt_format": result.prompt_format,
                    "hidden": hidden,
                },
                ensure_ascii=False,
            )
        )
        return 0
    if not candidates:
        print(f"(no completion: {hidden})" if hidden else "(no completion)", file=sys.stderr)
        return 0
    best = candidates[0]
    if best.end > best.start:
        print(f"(replaces {text[best.start : best.end]!r})", file=sys.stderr)
    sys.stdout.write(best.text + ("" if best.text.endswith("\n") else "\n"))
    return 0


def edit_main(config, path, text_range, instruction: str | None, as_json: bool) -> int:
    from dcopilot.engine.tasks.edit import EditTooLong, rewrite
    from dcopilot.engine.tasks.textdiff import apply_edits

    path = Path(path)
    try:
        text = _read(path)
        start = offset_of(text, text_range.start_line, text_range.start_col)
        end = offset_of(text, text_range.end_line, text_range.end_col)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return _fail(f"{path}: {e}", 2)
    if start >= end:
        return _fail("the range is empty", 2)
    try:
        model = load_configured_model(config)
    except Exception as e:
        return _fail(f"cannot load the model: {e}")
    req = edit_request(
        config, text=text, start=start, end=end, instruction=instruction or "", language=_language(path), path=path.name
    )
    try:
        result = rewrite(model, req)
    except EditTooLong as e:
        return _fail(str(e), 2)
    if as_json:
        edits = []
        for edit in result.edits:
            (sl, sc), (el, ec) = position_of(text, edit.start), position_of(text, edit.end)
            edits.append({"start": {"line": sl, "col": sc}, "end": {"line": el, "col": ec}, "text": edit.text})
        score = None if result.score is None else round(result.score, 4)
        out = {"edits": edits, "canvases": result.canvases, "steps": result.steps, "score": score}
        print(json.dumps({**out, "refused": result.refused}, ensure_ascii=False))
        return 0
    if result.refused:
        # Nothing on stdout: a diff is printed only for a rewrite that may be applied.
        print(f"({result.refused})", file=sys.stderr)
        return 0
    new = apply_edits(text, result.edits)
    diff = difflib.unified_diff(
        text.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=str(path), tofile=f"{path} (edited)"
    )
    sys.stdout.writelines(diff)
    if not result.edits:
        print("(the model kept the range as it is)", file=sys.stderr)
    return 0

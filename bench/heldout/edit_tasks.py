"""Held-out in-line edit tasks: known refactorings of functions from the held-out sources, each with a known result.

A task selects one whole function (3-8 lines of ASCII) in a file of bench/heldout/sources.json.gz and asks for
one refactoring; `expected` is what the selection must become:
- rename:     rename a local variable (declared in the function) to a name the file does not use;
- parameter:  add a parameter at the end of a one-line parameter list (in the language's own form);
- hints:      add type hints (Python, TypeScript): the task strips the signature's annotations, the original
              is the answer;
- off_by_one: fix an off-by-one: the task flips one comparison (< and <=, > and >=), the original is the answer.
Functions are found with tree-sitter (the same grammars as engine/tasks/syntax.py). Files split into calibration
and test as for the completion cases (cases.split_of), so a threshold chosen on calibration never saw a test file.
Deterministic for a seed.
"""

from __future__ import annotations

import importlib
import random
from dataclasses import dataclass
from functools import cache

from cases import split_of

KINDS = ("rename", "parameter", "hints", "off_by_one")
LANGUAGES = {".py": "python", ".ts": "typescript", ".go": "go", ".rs": "rust"}
FUNCTIONS = {
    "python": {"function_definition"},
    "typescript": {"function_declaration", "method_definition"},
    "go": {"function_declaration", "method_declaration"},
    "rust": {"function_item"},
}
PARAMETER = {"python": "verbose=False", "typescript": "verbose = false", "go": "verbose bool", "rust": "verbose: bool"}
INSTRUCTIONS = {
    "rename": "rename the local variable `{old}` to `{new}`",
    "parameter": "add a parameter `{param}` at the end of the parameter list",
    "hints": "add type hints",
    "off_by_one": "fix the off-by-one error",
}
NEW_NAMES = ("result", "value", "current", "total", "item", "entry", "acc", "tmp_value")
FLIP = {"<": b"<=", "<=": b"<", ">": b">=", ">=": b">"}  # an injected off-by-one
MIN_LINES, MAX_LINES = 3, 8


@dataclass(frozen=True)
class EditTask:
    id: str
    language: str
    kind: str
    split: str
    file: str  # key into the sources
    instruction: str
    document: str  # the file as the editor holds it (with the task's input in the selection)
    start: int  # the selection, code points, end exclusive (whole lines)
    end: int
    expected: str  # what document[start:end] must become


@cache
def _parser(language: str):
    import tree_sitter

    module, fn = {
        "python": ("tree_sitter_python", "language"),
        "typescript": ("tree_sitter_typescript", "language_typescript"),
        "go": ("tree_sitter_go", "language"),
        "rust": ("tree_sitter_rust", "language"),
    }[language]
    return tree_sitter.Parser(tree_sitter.Language(getattr(importlib.import_module(module), fn)()))


def _walk(node):
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


Edit = tuple[int, int, bytes]  # byte span relative to the function, replacement


def _apply(text: bytes, edits: list[Edit]) -> bytes:
    for s, e, new in sorted(edits, reverse=True):
        text = text[:s] + new + text[e:]
    return text


def _declared(language: str, node) -> bool:
    """Whether identifier `node` is declared here as a local variable."""
    p = node.parent
    if p is None:
        return False
    if language == "python":
        return p.type == "assignment" and p.child_by_field_name("left") == node
    if language == "typescript":
        return p.type == "variable_declarator" and p.child_by_field_name("name") == node
    if language == "go":
        return p.type == "expression_list" and p.parent is not None and p.parent.type == "short_var_declaration"
    return p.type == "let_declaration" and p.child_by_field_name("pattern") == node


def _rename(language: str, fn, base: int, source: bytes, rng: random.Random) -> tuple[list[Edit], dict] | None:
    nodes = list(_walk(fn))
    names = sorted({n.text.decode() for n in nodes if n.type == "identifier" and _declared(language, n)})
    rng.shuffle(names)
    for old in names:
        uses = [n for n in nodes if n.type == "identifier" and n.text.decode() == old]
        # Shorthands ({x}, S { x }, f(x=...)) and names inside strings would need more than a textual rename.
        awkward = any(n.type.startswith("shorthand") and n.text.decode() == old for n in nodes) or any(
            u.parent is not None
            and (u.parent.type in ("keyword_argument", "shorthand_field_initializer"))
            and u.parent.child_by_field_name("name") in (u, None)
            for u in uses
        )
        if awkward or len(uses) < 2 or f"{{{old}".encode() in fn.text:
            continue
        new = next((c for c in NEW_NAMES if c.encode() not in source), None)
        if new is None:
            return None
        return [(u.start_byte - base, u.end_byte - base, new.encode()) for u in uses], {"old": old, "new": new}
    return None


def _parameter(language: str, fn, base: int) -> tuple[list[Edit], dict] | None:
    params = fn.child_by_field_name("parameters")
    if params is None or params.start_point[0] != params.end_point[0]:
        return None
    inner = params.text[1:-1].strip()
    if b"*" in inner or b"..." in inner or b"?" in inner or inner.endswith(b","):
        return None
    param = PARAMETER[language]
    insert = (b", " if inner else b"") + param.encode()
    at = params.end_byte - 1 - base
    return [(at, at, insert)], {"param": param}


def _hints(language: str, fn, base: int) -> list[Edit] | None:
    """Edits that strip the signature's type annotations (the task's input); None when it has none."""
    params = fn.child_by_field_name("parameters")
    if params is None or language not in ("python", "typescript"):
        return None
    edits: list[Edit] = []
    for p in params.children:
        if language == "python" and p.type == "typed_parameter":
            edits.append((p.children[0].end_byte - base, p.end_byte - base, b""))
        elif language == "python" and p.type == "typed_default_parameter":
            name, value = p.child_by_field_name("name"), p.child_by_field_name("value")
            if name is None or value is None:
                return None
            edits.append((p.start_byte - base, p.end_byte - base, name.text + b"=" + value.text))
        elif language == "typescript" and p.type in ("required_parameter", "optional_parameter"):
            edits.extend(
                (c.start_byte - base, c.end_byte - base, b"") for c in p.children if c.type == "type_annotation"
            )
    ret = fn.child_by_field_name("return_type")
    if ret is not None:
        edits.append((params.end_byte - base, ret.end_byte - base, b""))
    return edits or None


def _off_by_one(fn, base: int, rng: random.Random) -> list[Edit] | None:
    body = fn.child_by_field_name("body")
    if body is None:
        return None
    ops = [
        n
        for n in _walk(body)
        if n.type in FLIP and n.parent is not None and n.parent.type in ("comparison_operator", "binary_expression")
    ]
    if not ops:
        return None
    op = rng.choice(ops)
    return [(op.start_byte - base, op.end_byte - base, FLIP[op.type])]


def _functions(language: str, source: bytes):
    """(node, byte span of its whole lines) of each function of MIN..MAX lines, ASCII only, alone on its lines."""
    tree = _parser(language).parse(source)
    if tree.root_node.has_error:
        return
    for n in _walk(tree.root_node):
        if n.type not in FUNCTIONS[language]:
            continue
        start = source.rfind(b"\n", 0, n.start_byte) + 1
        end = source.find(b"\n", n.end_byte)
        end = len(source) if end < 0 else end + 1
        chunk = source[start:end]
        lines = chunk.count(b"\n") + (not chunk.endswith(b"\n"))
        if not MIN_LINES <= lines <= MAX_LINES or not chunk.isascii() or source[start : n.start_byte].strip():
            continue
        yield n, start, end


def build(sources: dict[str, str], per_kind: int, seed: int = 0) -> list[EditTask]:
    """Up to `per_kind` tasks per language, split and kind, at most one per function and kind."""
    from dcopilot.engine.tasks.syntax import parses

    by_lang: dict[str, list[str]] = {}
    for key in sorted(sources):
        lang = next((v for k, v in LANGUAGES.items() if key.endswith(k)), None)
        if lang is not None:
            by_lang.setdefault(lang, []).append(key)
    tasks: list[EditTask] = []
    for lang, keys in by_lang.items():
        functions = {k: list(_functions(lang, sources[k].encode())) for k in keys}  # each file parsed once
        splits = {k: split_of(k, keys) for k in keys}
        for kind in KINDS:
            if kind == "hints" and lang not in ("python", "typescript"):
                continue
            for split in ("calibration", "test"):
                rng = random.Random(f"{seed}:{lang}:{kind}:{split}")
                pool = [(k, f) for k in keys if splits[k] == split for f in functions[k]]
                rng.shuffle(pool)
                made = 0
                for key, (fn, start, end) in pool:
                    if made == per_kind:
                        break
                    task = _task(lang, kind, split, key, sources[key], fn, start, end, rng, parses)
                    if task is not None:
                        tasks.append(task)
                        made += 1
    return tasks


def _task(lang, kind, split, key, text, fn, start, end, rng, parses) -> EditTask | None:
    source = text.encode()
    original = source[start:end]
    fields: dict = {}
    if kind == "rename":
        got = _rename(lang, fn, start, source, rng)
        if got is None:
            return None
        edits, fields = got
        given, expected = original, _apply(original, edits)
    elif kind == "parameter":
        got2 = _parameter(lang, fn, start)
        if got2 is None:
            return None
        edits, fields = got2
        given, expected = original, _apply(original, edits)
    elif kind == "hints":
        strip = _hints(lang, fn, start)
        if strip is None:
            return None
        given, expected = _apply(original, strip), original
    else:
        flip = _off_by_one(fn, start, rng)
        if flip is None:
            return None
        given, expected = _apply(original, flip), original
    document = source[:start] + given + source[end:]
    after = source[:start] + expected + source[end:]
    if given == expected or not parses(lang, document.decode()) or not parses(lang, after.decode()):
        return None
    s = len(source[:start].decode())
    return EditTask(
        id=f"{lang}-{kind}-{split}-{key.rsplit('/', 1)[-1]}-{fn.start_point[0] + 1}",
        language=lang,
        kind=kind,
        split=split,
        file=key,
        instruction=INSTRUCTIONS[kind].format(**fields),
        document=document.decode(),
        start=s,
        end=s + len(given.decode()),
        expected=expected.decode(),
    )

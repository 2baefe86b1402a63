"""Refactorings an instruction names exactly, made with the language's parser instead of the model (pure).

"Rename `count` to `total`" or "add a parameter `verbose=False`" has one right answer, which a parser finds and a
small model rewriting the whole range rarely does. `exact` recognises such an instruction and returns the range's
new text; it returns None whenever the change cannot be made exactly (another instruction, no grammar for the
language, the name not in the range, the new name already there, a shorthand that a rename would change the
meaning of), and the model edits the range as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from dcopilot.engine.tasks import syntax

NAME = r"[A-Za-z_$][\w$]*"
QUOTE = r"[`'\"]?"
# "rename [the local variable] `old` to `new`" ("as", "into" and "->" too); nothing may follow but a full stop.
RENAME = re.compile(
    rf"^\s*rename\s+(?:(?:the|a|this|local|variable|var|parameter|param|argument|identifier|name)\s+)*"
    rf"{QUOTE}(?P<old>{NAME}){QUOTE}\s+(?:to|as|into|->)\s+{QUOTE}(?P<new>{NAME}){QUOTE}\s*\.?\s*$",
    re.IGNORECASE,
)
# "add [a] [new] parameter `p` [at the end [of the parameter list]]": the parameter in backticks, as written.
ADD_PARAMETER = re.compile(
    r"^\s*add\s+(?:an?\s+|the\s+|one\s+)?(?:new\s+)?(?:param|parameter|argument)\s+`(?P<param>[^`\n]+)`"
    r"(?:\s+(?:at|to)\s+the\s+end(?:\s+of\s+(?:the\s+)?(?:parameter|argument)s?(?:\s+list)?)?)?\s*\.?\s*$",
    re.IGNORECASE,
)
# Identifiers a rename must not touch: an attribute after a dot (`obj.count`) and a keyword argument's name
# (`f(count=1)`) name something else than the local; other languages give these their own node types.
NOT_A_LOCAL = {("attribute", "attribute"), ("keyword_argument", "name")}
# Shorthands (`{count}`, `S { count }`): renamed, the key would change with the variable.
SHORTHANDS = {"shorthand_property_identifier", "shorthand_property_identifier_pattern", "shorthand_field_initializer"}
CLOSERS = {"(": ")", "[": "]", "<": ">"}
UTF8 = ("utf-8", "surrogatepass")  # a lone surrogate in the document is kept, as syntax.py keeps it


@dataclass(frozen=True)
class Rename:
    old: str
    new: str


@dataclass(frozen=True)
class AddParameter:
    text: str


def parse_instruction(instruction: str) -> Rename | AddParameter | None:
    """The exact refactoring `instruction` asks for, or None when it asks for something else."""
    if m := RENAME.match(instruction):
        return None if m["old"] == m["new"] else Rename(m["old"], m["new"])
    if m := ADD_PARAMETER.match(instruction):
        return AddParameter(m["param"].strip())
    return None


def _nodes(root) -> Iterator:
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def _inside(node, start: int, end: int) -> bool:
    return start <= node.start_byte and node.end_byte <= end


def _byte_range(text: str, start: int, end: int) -> tuple[bytes, int, int]:
    return text.encode(*UTF8), len(text[:start].encode(*UTF8)), len(text[:end].encode(*UTF8))


def rename(language: str, text: str, start: int, end: int, old: str, new: str) -> str | None:
    """text[start:end] with every identifier `old` in it renamed to `new`; None when there is no grammar, the
    range has a syntax error, holds no identifier `old`, already uses `new`, uses `old` in a shorthand, or cuts
    an `old` at its edge."""
    if not syntax.known(language):
        return None
    source, lo, hi = _byte_range(text, start, end)
    root = syntax.tree(language, source).root_node
    uses, taken = [], False
    for node in _nodes(root):
        if node.end_byte <= lo or node.start_byte >= hi:
            continue
        if (node.is_error or node.is_missing) and _inside(node, lo, hi):
            return None
        if node.child_count or "identifier" not in node.type:
            continue
        name = node.text.decode()  # a name: valid UTF-8
        parent = node.parent
        if name == old and (not _inside(node, lo, hi) or SHORTHANDS & {node.type, parent and parent.type}):
            return None  # cut by the range's edge, or a shorthand
        if not _inside(node, lo, hi):
            continue
        if node.type != "identifier" or any(
            parent is not None and parent.type == p and parent.child_by_field_name(f) == node for p, f in NOT_A_LOCAL
        ):
            continue
        taken = taken or name == new
        if name == old:
            uses.append(node)
    if not uses or taken:
        return None
    out = source
    for node in sorted(uses, key=lambda n: -n.start_byte):
        out = out[: node.start_byte] + new.encode() + out[node.end_byte :]
    return out[lo : hi + len(out) - len(source)].decode(*UTF8)


def add_parameter(language: str, text: str, start: int, end: int, param: str) -> str | None:
    """text[start:end] with `param` added after the last parameter of the first function whose parameter list is
    in it (on a line of its own when the last one has a line of its own); None when there is no grammar or no
    such list in brackets."""
    if not syntax.known(language):
        return None
    source, lo, hi = _byte_range(text, start, end)
    root = syntax.tree(language, source).root_node
    params = next(
        (
            p
            for node in _nodes(root)
            if (p := node.child_by_field_name("parameters")) is not None and _inside(p, lo, hi)
        ),
        None,
    )
    if params is None or CLOSERS.get(params.children[0].type) != params.children[-1].type:
        return None  # a lambda's or a closure's bare list (`x, y`, `|x|`): not this refactoring's
    items = [c for c in params.named_children if "comment" not in c.type]
    if items:
        at = items[-1].end_byte
        head = source[: items[-1].start_byte]
        indent = head[head.rfind(b"\n") + 1 :]
        insert = (b",\n" + indent if not indent.strip() else b", ") + param.encode()
    else:
        at, insert = params.end_byte - 1, param.encode()  # right before the closer, one byte
    out = source[:at] + insert + source[at:]
    return out[lo : hi + len(insert)].decode(*UTF8)


def exact(language: str, text: str, start: int, end: int, instruction: str) -> tuple[str, str] | None:
    """(its kind, "rename" or "parameter"; the new text of text[start:end]) when `instruction` names a refactoring
    made here exactly; None otherwise (the model's turn)."""
    plan = parse_instruction(instruction)
    if isinstance(plan, Rename):
        done = rename(language, text, start, end, plan.old, plan.new)
        return None if done is None else ("rename", done)
    if isinstance(plan, AddParameter):
        done = add_parameter(language, text, start, end, plan.text)
        return None if done is None else ("parameter", done)
    return None

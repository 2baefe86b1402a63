"""Does a text parse? A real parser per language: Python's own `ast`, tree-sitter grammars for the others.

Pure functions on text (no torch): the edit path asks them before offering a rewrite, so an edit never turns
code that parsed into code that does not, nor replaces code with comments alone. The completion score asks how
many syntax errors a candidate adds to the text around the cursor (`error_count`, tree-sitter for every language,
Python too: it counts errors where `ast` stops at the first). A language without a grammar here answers None
(unknown), and callers then judge by other means.
"""

from __future__ import annotations

import ast
import importlib
import io
import tokenize
import warnings
from collections.abc import Callable
from functools import cache

# LSP language ids (and the CLI's names) -> (grammar module, its language function). Both TypeScript grammars
# ship in one module. Python's grammar serves `error_count` only: whether Python parses is `ast`'s answer.
_GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "javascriptreact": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "typescriptreact": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "java": ("tree_sitter_java", "language"),
    "lua": ("tree_sitter_lua", "language"),
    "shellscript": ("tree_sitter_bash", "language"),
    "bash": ("tree_sitter_bash", "language"),
    "ruby": ("tree_sitter_ruby", "language"),
}
_ALIASES = {"py": "python", "js": "javascript", "ts": "typescript", "rs": "rust", "sh": "shellscript"}


def known(language: str) -> bool:
    """Whether `language` has a parser here."""
    lang = _ALIASES.get(language.lower(), language.lower())
    return lang in _GRAMMARS  # Python's grammar is there too, though `ast` judges whether Python parses


@cache
def _parser(language: str):
    """A tree-sitter parser for a language id in _GRAMMARS (grammars load once per process)."""
    import tree_sitter

    module, fn = _GRAMMARS[language]
    grammar: Callable[[], object] = getattr(importlib.import_module(module), fn)
    return tree_sitter.Parser(tree_sitter.Language(grammar()))


def _python_parses(text: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences in strings warn, and still parse
            ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # ValueError: a NUL character in the source
        return False
    return True


def parses(language: str, text: str) -> bool | None:
    """True when `text` is a whole program the language's parser accepts without an error node; None when there
    is no parser for `language`."""
    lang = _ALIASES.get(language.lower(), language.lower())
    if lang == "python":
        return _python_parses(text)
    if lang not in _GRAMMARS:
        return None
    tree = _parser(lang).parse(text.encode("utf-8", "surrogatepass"))
    return not tree.root_node.has_error


def tree(language: str, source: bytes):
    """tree-sitter's parse of `source` (UTF-8) in `language`, which must be `known`."""
    return _parser(_ALIASES.get(language.lower(), language.lower())).parse(source)


def error_count(language: str, text: str) -> int | None:
    """ERROR and MISSING nodes in tree-sitter's parse of `text`; None when there is no grammar for `language`.

    The parser recovers from an error and goes on, so a count compares two texts: text cut mid-construct at both
    ends adds the same errors to each, and what one adds beyond the other is its own.
    """
    lang = _ALIASES.get(language.lower(), language.lower())
    if lang not in _GRAMMARS:
        return None
    errors = 0
    stack = [_parser(lang).parse(text.encode("utf-8", "surrogatepass")).root_node]
    while stack:
        node = stack.pop()
        errors += node.is_error or node.is_missing
        # has_error marks an error and every ancestor of one: a subtree without it is skipped whole
        stack.extend(child for child in node.children if child.has_error)
    return errors


def errors_added(language: str, prefix: str, text: str, suffix: str, base: int | None) -> int:
    """Errors `prefix + text + suffix` has beyond `base`, the count of the text around the cursor with nothing
    inserted (`suffix` starts after what `text` replaces); 0 when there is no grammar (`base` None)."""
    if base is None:
        return 0
    return (error_count(language, prefix + text + suffix) or 0) - base


def _python_has_code(text: str) -> bool:
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type not in skip:
                return True
    except (tokenize.TokenError, SyntaxError):
        return True  # it got as far as something that is not a comment
    return False


def has_code(language: str, text: str) -> bool | None:
    """True when `text` holds something besides comments and white space; None when there is no parser."""
    lang = _ALIASES.get(language.lower(), language.lower())
    if lang == "python":
        return _python_has_code(text)
    if lang not in _GRAMMARS:
        return None
    stack = [_parser(lang).parse(text.encode("utf-8", "surrogatepass")).root_node]
    while stack:
        node = stack.pop()
        if "comment" in node.type:
            continue  # a comment's own tokens (`//`, `/*`) are not code
        if node.child_count == 0 and node.type.strip():
            return True
        stack.extend(node.children)
    return False


def dedent_block(text: str) -> str:
    """`text` with the indent its first non-blank line has removed from every line, so that a selected block
    from inside a function can be parsed on its own. Lines indented less keep what they have."""
    lines = text.splitlines(keepends=True)
    first = next((ln for ln in lines if ln.strip()), "")
    indent = first[: len(first) - len(first.lstrip(" \t"))]
    if not indent:
        return text
    return "".join(ln[len(indent) :] if ln.startswith(indent) else ln for ln in lines)


def breakage(language: str, before: str, after: str, before_range: str, after_range: str) -> str | None:
    """Why replacing `before` (whose edited range was `before_range`) by `after` (`after_range`) must not be
    offered, or None when it may.

    - "breaks the syntax": the whole document parsed and no longer does; or, in a document that did not parse
      anyway, the selected range parsed on its own (after dedenting) and its rewrite does not.
    - "deletes the code": the range held code and its rewrite holds only comments and white space.
    A language without a parser is never judged here (None).
    """
    if not known(language):
        return None
    if has_code(language, before_range) and not has_code(language, after_range):
        return "deletes the code"
    if parses(language, before):
        return None if parses(language, after) else "breaks the syntax"
    if parses(language, dedent_block(before_range)) and not parses(language, dedent_block(after_range)):
        return "breaks the syntax"
    return None

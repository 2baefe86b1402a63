"""Cursor sampling for the held-out quality benchmark: source files -> cases, deterministic for a seed.

A case removes `target` = source[start:end] from a source file; the document the model sees is the rest, with the
cursor at `start`. Four cursor kinds, each what an editor user meets while typing:
- line:   a whole line after its indent (the cursor sits at the first non-blank character);
- rest:   the rest of a line from a token boundary inside it;
- inside: a piece inside a line (1-6 tokens) with more code right of it on the same line;
- block:  2-6 lines, from the first non-blank character of the first line to the end of the last one.
Files are split into calibration and test by a salted hash of their key (every third file of a language, in hash
order, is calibration), so a threshold chosen on calibration never saw a test file.
"""

from __future__ import annotations

import hashlib
import random
import re

import msgspec

KINDS = ("line", "rest", "inside", "block")
SPLITS = ("calibration", "test")
SALT = "dcopilot-quality-v1:"
MAX_LINE_CHARS = 120  # longer lines are mostly data or strings, not what a completion is judged on
MAX_INSIDE_CHARS = 40
MAX_BLOCK_CHARS = 400
MIN_LINE = 3  # a case needs some code above it
TOKEN = re.compile(r"[A-Za-z_][A-Za-z_0-9]*|\d+|\s+|.")
COMMENT_STARTS = ("#", "//", "/*", "*", "*/", '"""', "'''")
TEST_MODULE = re.compile(r"^\s*#\[cfg\(test\)\]")  # Rust unit tests: the rest of the file is tests


class Case(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    language: str
    kind: str
    split: str
    package: str
    file: str  # key into the sources
    start: int  # target span in the source, code points
    end: int
    target: str

    def document(self, source: str) -> tuple[str, int]:
        """(text the editor holds, cursor offset)."""
        return source[: self.start] + source[self.end :], self.start


def split_of(key: str, keys: list[str]) -> str:
    ranked = sorted(keys, key=lambda k: hashlib.sha256((SALT + k).encode()).hexdigest())
    return "calibration" if ranked.index(key) % 3 == 0 else "test"


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for m in re.finditer("\n", text):
        starts.append(m.end())
    return starts


def _codeish(content: str) -> bool:
    return (
        bool(content)
        and len(content) <= MAX_LINE_CHARS
        and not content.startswith(COMMENT_STARTS)
        and any(c.isalnum() for c in content)
    )


def _boundaries(content: str) -> list[int]:
    """Token boundaries strictly inside `content` that a cursor could sit at after typing a token (not inside
    an identifier, not just before a space)."""
    out, pos = [], 0
    for m in TOKEN.finditer(content):
        pos = m.end()
        if 0 < pos < len(content) and not content[pos].isspace():
            out.append(pos)
    return out


def spans(text: str, kind: str, rng: random.Random) -> list[tuple[int, int]]:
    """Every eligible target span of `kind` in `text` (one per line, the in-line cursor drawn with `rng`)."""
    lines = text.split("\n")
    starts = _line_starts(text)
    last = len(lines)
    for i, ln in enumerate(lines):
        if TEST_MODULE.match(ln):
            last = i
            break
    out: list[tuple[int, int]] = []
    for i in range(MIN_LINE, last):
        raw = lines[i].rstrip()
        content = raw.lstrip()
        if not _codeish(content):
            continue
        indent = len(raw) - len(content)
        s0, e0 = starts[i] + indent, starts[i] + len(raw)
        if kind == "line":
            out.append((s0, e0))
        elif kind == "rest":
            cuts = [b for b in _boundaries(content) if len(content) - b >= 2 and any(c.isalnum() for c in content[b:])]
            if cuts:
                out.append((s0 + rng.choice(cuts), e0))
        elif kind == "inside":
            cuts = _boundaries(content)
            pairs = [
                (a, b)
                for a in cuts
                for b in cuts
                if a < b <= a + MAX_INSIDE_CHARS
                and not content[b - 1].isspace()  # the code right of the target resumes after a token
                and len(TOKEN.findall(content[a:b])) <= 6
                and any(c.isalnum() for c in content[a:b])
                and content[b:].strip()
            ]
            if pairs:
                a, b = rng.choice(pairs)
                out.append((s0 + a, s0 + b))
        elif kind == "block":
            n = rng.randint(2, 6)
            j = i + n - 1
            if j >= last or not _codeish(lines[j].strip()):
                continue
            end = starts[j] + len(lines[j].rstrip())
            if end - s0 <= MAX_BLOCK_CHARS:
                out.append((s0, end))
        else:
            raise ValueError(f"unknown cursor kind {kind!r}")
    return out


def sample_cases(sources: dict[str, tuple[str, str, str]], per_kind: dict[str, int], seed: int = 0) -> list[Case]:
    """sources: key -> (language, package, text). per_kind: split -> cases per language and kind.

    Draws without replacement from all eligible spans of a language's files in that split, at most one case per
    line and kind; the order of `sources` does not matter."""
    cases: list[Case] = []
    languages = sorted({lang for lang, _, _ in sources.values()})
    for lang in languages:
        keys = sorted(k for k, (lg, _, _) in sources.items() if lg == lang)
        split = {k: split_of(k, keys) for k in keys}
        for kind in KINDS:
            for part in SPLITS:
                rng = random.Random(f"{seed}:{lang}:{kind}:{part}")
                pool = [(k, s, e) for k in keys if split[k] == part for s, e in spans(sources[k][2], kind, rng)]
                rng.shuffle(pool)
                for n, (k, s, e) in enumerate(sorted(pool[: per_kind.get(part, 0)], key=lambda x: (x[0], x[1]))):
                    cases.append(
                        Case(
                            id=f"{lang}-{kind}-{part[:3]}-{n:03d}",
                            language=lang,
                            kind=kind,
                            split=part,
                            package=sources[k][1],
                            file=k,
                            start=s,
                            end=e,
                            target=sources[k][2][s:e],
                        )
                    )
    return cases

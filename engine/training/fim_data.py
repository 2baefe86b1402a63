"""Cursor-infill training examples, built by the prompt rules inference uses (engine/tasks/layout.py).

This module only draws what to train on: a file, a cursor span, a layout, K, the suffix share and cross-file
snippets. layout.fill_prompt and layout.target_canvas turn them into ids, so a training prompt is what
layout.cursor_prompt builds for the same cursor, with one difference batches force: a batch needs one prompt
length (the engine has no padding mask), so the document's prefix and suffix are cut at their far ends to fill
exactly P tokens, where inference cuts whole lines under its budget (a window edge that holds still while the
user types keeps the prompt cache valid).
Text is tokenized as inference does: prefix, middle and suffix separately, special-token literals in code as
plain text.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from dcopilot.engine.runtime.tokenizer import Tokenizer as PlainTokenizer
from dcopilot.engine.tasks import layout as lay
from dcopilot.engine.tasks.layout import FimSpecials, Specials, TokenizerLike, TooShort, fim_specials
from dcopilot.engine.tasks.requests import Snippet
from tokenizers import Tokenizer

LAYOUTS = ("A", "B", "C")
SPAN_KINDS = ("line", "multiline", "partial", "empty")
CHARS_PER_TOKEN_WINDOW = 12  # text window per wanted token; stdlib code is ~3.6 chars/token
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


@dataclass(frozen=True)
class Span:
    """The middle of one infill task: text[start:end] is what the model must produce."""

    kind: str
    start: int
    end: int


def plain(tok: Tokenizer) -> TokenizerLike:
    """The tokenizer as inference holds it: plain-text encoding, so "<eos>" written in code is text, not the id."""
    return PlainTokenizer(tok)


# ---------------------------------------------------------------------------------------------------------------
# Cursor positions


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def _line(text: str, starts: list[int], i: int) -> tuple[int, int]:
    """(start, end) of line i, end excluding its newline."""
    s = starts[i]
    e = starts[i + 1] - 1 if i + 1 < len(starts) else len(text)
    return s, e


def sample_span(text: str, rng: random.Random, kind: str, max_lines: int = 6, tries: int = 20) -> Span | None:
    """A random cursor and middle of the given kind, or None when the text has no place for one.

    line: cursor inside a non-blank line, middle = rest of that line.
    multiline: 2..max_lines lines; starts inside a line or at its end (then the middle starts with a newline).
    partial: a piece inside one line (the rest of the line stays in the suffix).
    empty: nothing to insert (the model should answer <eos> at once).
    """
    starts = _line_starts(text)
    n = len(starts)
    for _ in range(tries):
        i = rng.randrange(n)
        s, e = _line(text, starts, i)
        line = text[s:e]
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        lo = indent if rng.random() < 0.8 else 0
        if kind == "line":
            c = rng.randrange(lo, len(line))
            return Span(kind, s + c, e)
        if kind == "partial":
            c1 = rng.randrange(lo, len(line))
            c2 = rng.randint(c1 + 1, min(len(line), c1 + 40))
            if c2 >= len(line):
                continue
            return Span(kind, s + c1, s + c2)
        if kind == "empty":
            c = len(line) if rng.random() < 0.6 else rng.randrange(lo, len(line))
            return Span(kind, s + c, s + c)
        if kind == "multiline":
            k = rng.randint(2, max_lines)
            if rng.random() < 0.5:
                c, last = rng.randrange(lo, len(line)), i + k - 1
            else:
                c, last = len(line), i + k - 1  # cursor at end of line: middle starts with "\n"
            if last >= n:
                continue
            _, end = _line(text, starts, last)
            if not text[s + c : end].strip():
                continue
            return Span(kind, s + c, end)
        raise ValueError(f"unknown span kind {kind!r}")
    return None


# ---------------------------------------------------------------------------------------------------------------
# Tokenized examples and batches


@dataclass
class Example:
    prompt: list[int]
    canvas: list[int]
    pinned: list[bool]
    n_middle: int  # tokens of the middle (the eos follows at this index)
    layout: str
    kind: str


def tokenize_around(tok: TokenizerLike, text: str, span: Span, want: int) -> tuple[list[int], list[int], list[int]]:
    """(prefix, middle, suffix) ids, each side tokenized from a text window big enough for `want` tokens.

    A window cut inside the file starts/ends mid-token, so that edge token is dropped.
    """
    w = want * CHARS_PER_TOKEN_WINDOW
    p0 = max(0, span.start - w)
    s1 = min(len(text), span.end + w)
    prefix = tok.encode(text[p0 : span.start])
    if p0 > 0:
        prefix = prefix[1:]
    suffix = tok.encode(text[span.end : s1])
    if s1 < len(text):
        suffix = suffix[:-1]
    middle = tok.encode(text[span.start : span.end]) if span.end > span.start else []
    return prefix, middle, suffix


def make_example(
    tok: TokenizerLike,
    ids: FimSpecials,
    path: str,
    text: str,
    span: Span,
    layout: str,
    prompt_len: int,
    canvas_len: int,
    pinned_k: int,
    suffix_share: float = 0.3,
    snippets: tuple[Snippet, ...] = (),
    budget: int | None = None,
) -> Example:
    """One example: the prompt layout.fill_prompt builds (snippets best-ranked first; `budget` is the context
    budget their share comes from, see fill_prompt) and the clean canvas layout.target_canvas builds."""
    prefix, middle, suffix = tokenize_around(tok, text, span, prompt_len)
    shape = lay.Layout(layout)
    prompt = lay.fill_prompt(tok, ids, shape, path, prefix, suffix, prompt_len, suffix_share, snippets, budget)
    tail = suffix[:pinned_k] if shape.pins_suffix and pinned_k > 0 else []
    canvas, pinned = lay.target_canvas(ids, middle, tail, canvas_len)
    return Example(prompt, canvas, pinned, len(middle), layout, span.kind)


# ---------------------------------------------------------------------------------------------------------------
# Cross-file snippets


def identifiers(text: str) -> set[str]:
    return set(IDENTIFIER.findall(text))


def line_window(text: str, at: int, lines: int) -> tuple[int, int]:
    """(start, end) of `lines` whole lines of `text` from the first line start at or after `at`."""
    start = 0 if at <= 0 else text.find("\n", at - 1) + 1
    if start == 0 and at > 0:  # no line start after `at`
        return len(text), len(text)
    end = start
    for _ in range(lines):
        nl = text.find("\n", end)
        if nl < 0:
            return start, len(text)
        end = nl + 1
    return start, end


def rank_snippets(around: str, candidates: list[Snippet], count: int) -> tuple[Snippet, ...]:
    """The `count` candidates sharing the most identifiers with `around` (the code near the cursor), best first;
    ties keep the drawing order. The server ranks its workspace snippets by the same kind of overlap."""
    want = identifiers(around)
    scored = sorted(enumerate(candidates), key=lambda ic: (-len(want & identifiers(ic[1].text)), ic[0]))
    return tuple(c for _, c in scored[:count])


@dataclass
class Batch:
    prompt: torch.Tensor  # long [B, P]
    canvas: torch.Tensor  # long [B, L] clean target canvas
    pinned: torch.Tensor  # bool [B, L] fed clean, no loss
    weight: torch.Tensor  # float [B, L] loss weight (0 on pinned, pad_weight on pads after eos)


LANGUAGE_ALPHA_HELP = (
    "draw each language in proportion to its bytes ** alpha (1: as the corpus is; lower: thin ones more)"
)


@dataclass(frozen=True)
class MixConfig:
    kinds: tuple[tuple[str, float], ...] = (("line", 0.45), ("multiline", 0.3), ("partial", 0.2), ("empty", 0.05))
    layouts: tuple[tuple[str, float], ...] = (("A", 1 / 3), ("B", 1 / 3), ("C", 1 / 3))
    pinned_k: tuple[int, int] = (4, 16)
    suffix_share: tuple[float, float] = (0.15, 0.5)
    pad_weight: float = 0.2
    snippet_p: float = 0.5  # share of examples that get cross-file snippets
    snippet_count: tuple[int, int] = (1, 3)  # snippets per such example (before the budget drops any)
    snippet_lines: tuple[int, int] = (6, 24)  # lines per snippet window
    snippet_candidates: int = 6  # windows drawn per example; the ones sharing most identifiers are kept
    # A language is drawn with probability proportional to its bytes ** language_alpha: 1 keeps the corpus's own
    # mix (44 % of corpus v2's bytes are Python, 3 % TypeScript); lower values draw thin languages more often.
    language_alpha: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.language_alpha <= 1.0:
            raise ValueError(f"language_alpha must be in [0, 1], not {self.language_alpha}")


AR_MIX = MixConfig(layouts=(("A", 0.6), ("B", 0.4)), pinned_k=(0, 0))  # AR examples: no pinned canvas tail


def language_factors(bytes_by_language: Mapping[str, int], alpha: float) -> dict[str, float]:
    """Each language's multiplier of its files' sizes so that it is drawn with probability proportional to its
    bytes ** alpha (pure): bytes * bytes ** (alpha - 1)."""
    return {lang: float(b) ** (alpha - 1.0) for lang, b in bytes_by_language.items() if b > 0}


def _choice(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


class ExampleSampler:
    """Draws infill examples from a dict {path: text}, deterministic for a given seed."""

    def __init__(
        self,
        tok: Tokenizer,
        texts: dict[str, str],
        seed: int = 0,
        mix: MixConfig = MixConfig(),
        languages: Mapping[str, str] | None = None,
    ):
        """`languages`: path -> language, for mix.language_alpha (a path it lacks counts as one more language)."""
        self.tok = plain(tok)
        self.ids = fim_specials(tok)
        self.paths = sorted(texts)
        self.texts = texts
        self.languages = {p: (languages or {}).get(p, "") for p in self.paths}
        # Files are drawn proportionally to their size, so every byte of a language is about equally likely to be a
        # cursor; mix.language_alpha < 1 reweights the languages. At 1 the weights stay the integer sizes, so the
        # draws are the ones a run made before the setting existed. (Cumulative, computed once: random.choices
        # would re-add them on every draw, with the same result.)
        sizes: list[float] | list[int] = [len(texts[p]) for p in self.paths]
        if mix.language_alpha != 1.0:
            factor = language_factors(self.language_bytes(), mix.language_alpha)
            sizes = [n * factor.get(self.languages[p], 0.0) for p, n in zip(self.paths, sizes, strict=True)]
        self.cum_weights = list(itertools.accumulate(sizes))
        self.rng = random.Random(seed)
        self.mix = mix
        self.siblings: dict[str, list[str]] = {}  # directory -> its files: the "same package" snippet sources
        for p in self.paths:
            self.siblings.setdefault(p.rpartition("/")[0], []).append(p)

    def draw_path(self) -> str:
        """A file to cut the next example from, by the weights above."""
        return self.rng.choices(self.paths, cum_weights=self.cum_weights)[0]

    def language_bytes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.paths:
            out[self.languages[p]] = out.get(self.languages[p], 0) + len(self.texts[p])
        return out

    def language_shares(self) -> dict[str, float]:
        """The share of examples each language gets (what the training card records)."""
        total = self.cum_weights[-1] if self.cum_weights else 0
        shares: dict[str, float] = {}
        previous = 0.0
        for p, c in zip(self.paths, self.cum_weights, strict=True):
            shares[self.languages[p]] = shares.get(self.languages[p], 0.0) + (c - previous) / total
            previous = c
        return {k: round(v, 4) for k, v in sorted(shares.items(), key=lambda kv: -kv[1])}

    def snippets(self, path: str, span: Span, reach: int) -> tuple[Snippet, ...]:
        """Cross-file context for a span of `path`: line windows of other files in its directory and of regions
        of the same file beyond `reach` characters from the span (outside any window the prompt shows), the
        ones sharing the most identifiers with the lines around the span kept, best first."""
        rng, mix, text = self.rng, self.mix, self.texts[path]
        if rng.random() >= mix.snippet_p:
            return ()
        others = [p for p in self.siblings[path.rpartition("/")[0]] if p != path]
        candidates: list[Snippet] = []
        for _ in range(mix.snippet_candidates):
            source = rng.choice(others) if others and rng.random() < 0.7 else path
            body = self.texts[source]
            a, b = line_window(body, rng.randrange(len(body) + 1), rng.randint(*mix.snippet_lines))
            if source == path and not (b <= span.start - reach or a >= span.end + reach):
                continue  # the prompt itself may show this region (and the middle): no leak, no repeat
            if body[a:b].strip():
                candidates.append(Snippet(source, body[a:b]))
        around = text[max(0, span.start - 400) : span.start] + text[span.end : span.end + 200]
        return rank_snippets(around, candidates, rng.randint(*mix.snippet_count))

    def example(self, prompt_len: int, canvas_len: int, layout: str | None = None, kind: str | None = None) -> Example:
        rng, mix = self.rng, self.mix
        for _ in range(200):
            path = self.draw_path()
            k = kind or _choice(rng, mix.kinds)
            lay_name = layout or _choice(rng, mix.layouts)
            span = sample_span(self.texts[path], rng, k)
            if span is None:
                continue
            snippets = self.snippets(path, span, prompt_len * CHARS_PER_TOKEN_WINDOW)
            try:
                return make_example(
                    self.tok,
                    self.ids,
                    path,
                    self.texts[path],
                    span,
                    lay_name,
                    prompt_len,
                    canvas_len,
                    rng.randint(*mix.pinned_k),
                    rng.uniform(*mix.suffix_share),
                    snippets,
                )
            except TooShort:
                continue
        raise RuntimeError(f"could not draw an example for prompt {prompt_len} / canvas {canvas_len}")

    def batch(self, batch_size: int, prompt_len: int, canvas_len: int) -> Batch:
        exs = [self.example(prompt_len, canvas_len) for _ in range(batch_size)]
        return collate(exs, self.ids, self.mix.pad_weight)


def collate(exs: list[Example], ids: Specials, pad_weight: float) -> Batch:
    prompt = torch.tensor([e.prompt for e in exs], dtype=torch.long)
    canvas = torch.tensor([e.canvas for e in exs], dtype=torch.long)
    pinned = torch.tensor([e.pinned for e in exs], dtype=torch.bool)
    pos = torch.arange(canvas.shape[1])
    n_mid = torch.tensor([e.n_middle for e in exs])
    after_eos = pos[None, :] > n_mid[:, None]
    weight = torch.where(after_eos, pad_weight, 1.0) * (~pinned)
    return Batch(prompt, canvas, pinned, weight.float())


def ar_sequence(batch: Batch, ids: Specials) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token training pairs from a FIM batch: input = prompt + canvas; loss where the target is the middle/eos.

    Only meaningful for canvases without a pinned tail (layouts A/B); the prompt tokens get a plain LM loss too.
    """
    seq = torch.cat([batch.prompt, batch.canvas], dim=1)
    inp, tgt = seq[:, :-1], seq[:, 1:]
    mask = (tgt != ids.pad) & (inp != ids.pad)
    # no LM loss on predicting the header (path) or a special token after the prompt's first positions
    mask[:, :1] = False
    return inp, torch.where(mask, tgt, -100)

"""Cursor-infill training examples in the exact prompt/canvas layouts inference uses (docs/interfaces.md).

A: prompt = <bos> <|file|> path\\n <|fim_suffix|> suffix <|fim_prefix|> prefix <|fim_middle|>;
   canvas = middle <eos> <pad>...
B: prompt = <bos> <|file|> path\\n <|fim_prefix|> prefix <|fim_middle|>;
   canvas = middle <eos> <pad>... suffix[:K] (pinned)
C: the prompt of A with the canvas of B.
Prefix, middle and suffix are tokenized separately, as they are at inference (the cursor splits the text).
Batches need one prompt length (the engine has no padding mask), so prompts are filled to exactly P tokens by
cutting the far ends of the prefix (left) and suffix (right).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from dcopilot.engine.tasks.layout import FimSpecials, Specials, fim_specials
from tokenizers import Tokenizer

LAYOUTS = ("A", "B", "C")
SPAN_KINDS = ("line", "multiline", "partial", "empty")
MAX_PATH_TOKENS = 24
CHARS_PER_TOKEN_WINDOW = 12  # text window per wanted token; stdlib code is ~3.6 chars/token


@dataclass(frozen=True)
class Span:
    """The middle of one infill task: text[start:end] is what the model must produce."""

    kind: str
    start: int
    end: int


class TooShort(ValueError):
    """Not enough context tokens to fill the requested prompt length (or the middle does not fit the canvas)."""


def header(ids: FimSpecials, path_ids: list[int]) -> list[int]:
    return [ids.bos, ids.file, *path_ids[:MAX_PATH_TOKENS]]


def fill_budget(n_prefix: int, n_suffix: int, budget: int, suffix_share: float) -> tuple[int, int]:
    """How many prefix/suffix tokens to keep so that they sum to exactly `budget`; raises TooShort if impossible."""
    if n_prefix + n_suffix < budget:
        raise TooShort(f"{n_prefix}+{n_suffix} context tokens < {budget}")
    s = min(n_suffix, round(budget * suffix_share))
    p = min(n_prefix, budget - s)
    s = budget - p
    return p, s


def build_prompt(
    ids: FimSpecials,
    layout: str,
    path_ids: list[int],
    prefix: list[int],
    suffix: list[int],
    length: int | None = None,
    suffix_share: float = 0.3,
) -> list[int]:
    """Prompt token ids; with `length`, exactly that many (far ends of prefix/suffix cut)."""
    head = header(ids, path_ids)
    if layout == "B":
        if length is not None:
            budget = length - len(head) - 2
            if budget < 0 or len(prefix) < budget:
                raise TooShort(f"prefix has {len(prefix)} tokens < {budget}")
            prefix = prefix[len(prefix) - budget :]
        return [*head, ids.fim_prefix, *prefix, ids.fim_middle]
    if layout not in ("A", "C"):
        raise ValueError(f"unknown layout {layout!r}")
    if length is not None:
        budget = length - len(head) - 3
        if budget < 0:
            raise TooShort("prompt length shorter than the header")
        p, s = fill_budget(len(prefix), len(suffix), budget, suffix_share)
        prefix, suffix = prefix[len(prefix) - p :], suffix[:s]
    return [*head, ids.fim_suffix, *suffix, ids.fim_prefix, *prefix, ids.fim_middle]


def build_canvas(ids: Specials, middle: list[int], pinned_tail: list[int], length: int) -> tuple[list[int], list[bool]]:
    """canvas = middle <eos> <pad>... pinned_tail; returns (canvas ids, pinned mask)."""
    free = length - len(pinned_tail) - len(middle) - 1
    if free < 0:
        raise TooShort(f"middle of {len(middle)} tokens + {len(pinned_tail)} pinned does not fit canvas {length}")
    canvas = [*middle, ids.eos, *([ids.pad] * free), *pinned_tail]
    pinned = [False] * (length - len(pinned_tail)) + [True] * len(pinned_tail)
    return canvas, pinned


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


def tokenize_around(tok: Tokenizer, text: str, span: Span, want: int) -> tuple[list[int], list[int], list[int]]:
    """(prefix, middle, suffix) ids, each side tokenized from a text window big enough for `want` tokens.

    A window cut inside the file starts/ends mid-token, so that edge token is dropped.
    """
    w = want * CHARS_PER_TOKEN_WINDOW
    p0 = max(0, span.start - w)
    s1 = min(len(text), span.end + w)
    prefix = tok.encode(text[p0 : span.start]).ids
    if p0 > 0:
        prefix = prefix[1:]
    suffix = tok.encode(text[span.end : s1]).ids
    if s1 < len(text):
        suffix = suffix[:-1]
    middle = tok.encode(text[span.start : span.end]).ids if span.end > span.start else []
    return prefix, middle, suffix


def make_example(
    tok: Tokenizer,
    ids: FimSpecials,
    path: str,
    text: str,
    span: Span,
    layout: str,
    prompt_len: int,
    canvas_len: int,
    pinned_k: int,
    suffix_share: float = 0.3,
) -> Example:
    prefix, middle, suffix = tokenize_around(tok, text, span, prompt_len)
    path_ids = tok.encode(path + "\n").ids
    prompt = build_prompt(ids, layout, path_ids, prefix, suffix, prompt_len, suffix_share)
    tail = suffix[:pinned_k] if layout in ("B", "C") else []
    canvas, pinned = build_canvas(ids, middle, tail, canvas_len)
    return Example(prompt, canvas, pinned, len(middle), layout, span.kind)


@dataclass
class Batch:
    prompt: torch.Tensor  # long [B, P]
    canvas: torch.Tensor  # long [B, L] clean target canvas
    pinned: torch.Tensor  # bool [B, L] fed clean, no loss
    weight: torch.Tensor  # float [B, L] loss weight (0 on pinned, pad_weight on pads after eos)


@dataclass(frozen=True)
class MixConfig:
    kinds: tuple[tuple[str, float], ...] = (("line", 0.45), ("multiline", 0.3), ("partial", 0.2), ("empty", 0.05))
    layouts: tuple[tuple[str, float], ...] = (("A", 1 / 3), ("B", 1 / 3), ("C", 1 / 3))
    pinned_k: tuple[int, int] = (4, 16)
    suffix_share: tuple[float, float] = (0.15, 0.5)
    pad_weight: float = 0.2


def _choice(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


class ExampleSampler:
    """Draws infill examples from a dict {path: text}, deterministic for a given seed."""

    def __init__(self, tok: Tokenizer, texts: dict[str, str], seed: int = 0, mix: MixConfig = MixConfig()):
        self.tok = tok
        self.ids = fim_specials(tok)
        self.paths = sorted(texts)
        self.texts = texts
        # Files are drawn proportionally to their size, so every byte is about equally likely to be a cursor.
        self.weights = [len(texts[p]) for p in self.paths]
        self.rng = random.Random(seed)
        self.mix = mix

    def example(self, prompt_len: int, canvas_len: int, layout: str | None = None, kind: str | None = None) -> Example:
        rng, mix = self.rng, self.mix
        for _ in range(200):
            path = rng.choices(self.paths, weights=self.weights)[0]
            k = kind or _choice(rng, mix.kinds)
            lay = layout or _choice(rng, mix.layouts)
            span = sample_span(self.texts[path], rng, k)
            if span is None:
                continue
            try:
                return make_example(
                    self.tok,
                    self.ids,
                    path,
                    self.texts[path],
                    span,
                    lay,
                    prompt_len,
                    canvas_len,
                    rng.randint(*mix.pinned_k),
                    rng.uniform(*mix.suffix_share),
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

"""What the model sees: prompt ids and canvases for infill and edit (layouts A, B, C of docs/interfaces.md).

Two prompt formats:
- "fim": the embedded model's trained layout, with its FIM special tokens.
- "gemma-chat": DiffusionGemma is instruction-tuned and has no FIM tokens, so the code goes into a user turn
  (Gemma 4 turn markers) with a textual gap marker, and the canvas is the model's answer.

Layouts: A puts the suffix in the prompt before the prefix (SPM order), so the text that changes while typing (the
end of the prefix) is the tail of the prompt and the engine's prefix cache serves the rest. B pins the first K
suffix tokens at the tail of the canvas so the middle is denoised bidirectionally against them. C does both.

A canvas is `{middle} <eos> <pad>... {pinned suffix}`. A length hypothesis pins `<eos>` at a given slot (and
`<pad>` after it), which forces a middle of exactly that many tokens; hypothesis None leaves the length free.
Free slots are returned as NOISE and filled with random ids by the caller (the sampler's noise distribution).

This module is the one place that turns a cursor's context into prompt ids and canvases, for inference
(`cursor_prompt`) and for training examples (`fill_prompt`, engine/training/fim_data.py): both assemble the FIM
prompt with `fim_ids`, cut paths with `path_ids` and place cross-file snippets with `fit_snippets`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from enum import Enum
from typing import Protocol

from dcopilot.engine.tasks.requests import SNIPPET_SHARE, Snippet
from dcopilot.engine.tasks.window import Window, cursor_window, head_lines_within

NOISE = -1  # placeholder for a free canvas slot in the pure assembly functions
# Path tokens in a file header (line break included). A longer path keeps its tail: the file name and the line
# break that ends the header say more than the leading directories of an absolute path.
MAX_PATH_TOKENS = 24


class TooShort(ValueError):
    """Too little context to fill a prompt of the asked length, or a middle that does not fit its canvas."""


class Layout(str, Enum):
    A = "A"  # suffix in the prompt (SPM order)
    B = "B"  # suffix pinned at the canvas tail
    C = "C"  # both

    @property
    def suffix_in_prompt(self) -> bool:
        return self is not Layout.B

    @property
    def pins_suffix(self) -> bool:
        return self is not Layout.A


class PromptFormat(str, Enum):
    FIM = "fim"
    GEMMA_CHAT = "gemma-chat"


class TokenizerLike(Protocol):
    def encode(self, text: str) -> list[int]: ...  # plain text: special-token literals stay text

    def encode_markup(self, text: str) -> list[int]: ...  # template text: special-token literals become their ids

    def decode(self, ids: Sequence[int]) -> str: ...

    def token_to_id(self, token: str) -> int | None: ...


FIM_TOKENS = ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file|>")


@dataclass(frozen=True)
class Specials:
    bos: int
    eos: int
    pad: int
    fim_prefix: int | None = None
    fim_suffix: int | None = None
    fim_middle: int | None = None
    file: int | None = None

    @property
    def has_fim(self) -> bool:
        return None not in (self.fim_prefix, self.fim_suffix, self.fim_middle, self.file)


@dataclass(frozen=True)
class FimSpecials(Specials):
    """Specials of a FIM-trained tokenizer: every FIM token is there (what fim_specials returns)."""

    fim_prefix: int
    fim_suffix: int
    fim_middle: int
    file: int


class TokenIds(Protocol):
    def token_to_id(self, token: str) -> int | None: ...


def specials_from(tokenizer: TokenIds, eos: int | None = None, pad: int | None = None) -> Specials:
    """Special ids looked up by name in the tokenizer (never literals); eos/pad may come from the model config."""

    def need(name: str) -> int:
        i = tokenizer.token_to_id(name)
        if i is None:
            raise ValueError(f"tokenizer has no {name} token")
        return i

    fim = [tokenizer.token_to_id(n) for n in FIM_TOKENS]
    return Specials(
        bos=need("<bos>"),
        eos=need("<eos>") if eos is None else eos,
        pad=need("<pad>") if pad is None else pad,
        fim_prefix=fim[0],
        fim_suffix=fim[1],
        fim_middle=fim[2],
        file=fim[3],
    )


def fim_specials(tokenizer: TokenIds) -> FimSpecials:
    """Specials of a FIM-trained tokenizer (the embedded model's): every FIM token must be present."""
    specials = specials_from(tokenizer)
    missing = [name for name, i in zip(FIM_TOKENS, _fim_ids(specials), strict=True) if i is None]
    if missing:
        raise ValueError(f"tokenizer lacks special token {missing[0]}")
    return FimSpecials(**asdict(specials))


def _fim_ids(sp: Specials) -> tuple[int | None, ...]:
    return sp.fim_prefix, sp.fim_suffix, sp.fim_middle, sp.file


def resolve_format(setting: str, specials: Specials) -> PromptFormat:
    """'auto' picks FIM when the tokenizer has the FIM tokens (our embedded model), else the chat format."""
    if setting == "auto":
        return PromptFormat.FIM if specials.has_fim else PromptFormat.GEMMA_CHAT
    fmt = PromptFormat(setting)
    if fmt is PromptFormat.FIM and not specials.has_fim:
        raise ValueError("prompt_format 'fim' needs <|fim_prefix|>, <|fim_suffix|>, <|fim_middle|>, <|file|> tokens")
    return fmt


@dataclass(frozen=True)
class ChatTemplate:
    """Gemma 4 chat markers and the infill instruction (configurable per model; defaults from its tokenizer config).

    The gap marker is plain text, not a special token: DiffusionGemma has no FIM tokens, and a visible marker in
    the user's code is what instruction-tuned models are shown in chat-based FIM prompting.
    """

    user_open: str = "<|turn>user\n"
    turn_close: str = "<turn|>\n"
    model_open: str = "<|turn>model\n"
    gap: str = "<FILL_HERE>"
    infill_instruction: str = (
        "Complete the code in {path} at {gap}. Reply with only the code that replaces {gap}: "
        "no explanation, no code fences, no code that is already there."
    )
    edit_instruction: str = (
        "Rewrite the code marked {gap} in {path}. {instruction} "
        "Reply with only the rewritten code: no explanation, no code fences."
    )


@dataclass(frozen=True)
class PromptParts:
    """Text pieces of a prompt; `instruction` is only used by edits."""

    path: str
    prefix: str
    suffix: str
    language: str = ""
    instruction: str = ""
    draft: str | None = None  # edit mode: the text being rewritten (shown in the chat prompt)
    snippets: tuple[Snippet, ...] = ()  # cross-file context as placed (fit_snippets), best-ranked first


def path_ids(tok: TokenizerLike, path: str) -> list[int]:
    """A file header's path tokens, `{path}\n`, at most MAX_PATH_TOKENS (the tail kept)."""
    return tok.encode(f"{path}\n")[-MAX_PATH_TOKENS:]


def snippet_budget(budget: int) -> int:
    """The most of a context budget that cross-file snippets take; the current file's window keeps the rest."""
    return int(budget * SNIPPET_SHARE)


def fit_snippets(tok: TokenizerLike, snippets: Sequence[Snippet], budget: int) -> tuple[tuple[Snippet, ...], int]:
    """(snippets as placed, tokens they take): best-ranked first, each costing its `<|file|> path\n` header and
    its text; a snippet that does not fit whole keeps its leading whole lines (or its first line's head), and
    one with no room left for text is dropped."""
    kept: list[Snippet] = []
    used = 0
    for snippet in snippets:
        head = 1 + len(path_ids(tok, snippet.path))
        text = head_lines_within(snippet.text, budget - used - head, lambda s: len(tok.encode(s)))
        if text:
            kept.append(Snippet(snippet.path, text))
            used += head + len(tok.encode(text))
    return tuple(kept), used


def fim_ids(
    sp: Specials,
    layout: Layout,
    path: Sequence[int],
    prefix: Sequence[int],
    suffix: Sequence[int],
    snippets: Sequence[Sequence[int]] = (),
) -> list[int]:
    """The FIM prompt: `<bos> {snippet blocks} <|file|> path\n [<|fim_suffix|> suffix] <|fim_prefix|> prefix
    <|fim_middle|>`, the suffix only where the layout puts it in the prompt. `snippets` holds each block's
    `path\n text` ids in prompt order (best-ranked last); each gets its own `<|file|>` marker."""
    file, fim_prefix, fim_suffix, fim_middle = sp.file, sp.fim_prefix, sp.fim_suffix, sp.fim_middle
    if file is None or fim_prefix is None or fim_suffix is None or fim_middle is None:
        raise ValueError("a FIM prompt needs the tokenizer's FIM tokens (Specials.has_fim)")
    ids = [sp.bos]
    for block in snippets:
        ids += [file, *block]
    ids += [file, *path]
    if layout.suffix_in_prompt:
        ids += [fim_suffix, *suffix]
    ids += [fim_prefix, *prefix, fim_middle]
    return ids


def _snippet_blocks(tok: TokenizerLike, snippets: Sequence[Snippet]) -> list[list[int]]:
    """Each snippet's `path\n text` ids, in prompt order: the best-ranked (first) snippet last, nearest the code."""
    return [[*path_ids(tok, s.path), *tok.encode(s.text)] for s in reversed(snippets)]


def _fim_prompt(tok: TokenizerLike, sp: Specials, parts: PromptParts, layout: Layout) -> list[int]:
    prefix = parts.prefix
    if parts.instruction:
        # The embedded model has no instruction slot; a comment just above the cursor is how code models are
        # usually steered, and it sits outside the edited range so it can never leak into the edit.
        prefix = _comment_before_line(prefix, parts.instruction, parts.language, parts.path)
    blocks = _snippet_blocks(tok, parts.snippets)
    path = path_ids(tok, parts.path)
    suffix = tok.encode(parts.suffix)  # fim_ids leaves it out where the layout pins it instead
    return fim_ids(sp, layout, path, tok.encode(prefix), suffix, blocks)


def _comment_token(language: str, path: str) -> str:
    hash_langs = {"python", "ruby", "shellscript", "bash", "sh", "perl", "r", "yaml", "toml", "makefile"}
    if language.lower() in hash_langs or path.endswith((".py", ".rb", ".sh", ".pl", ".r", ".yaml", ".yml", ".toml")):
        return "#"
    if language.lower() in {"lua", "sql", "haskell"} or path.endswith((".lua", ".sql", ".hs")):
        return "--"
    return "//"


def _comment_before_line(prefix: str, instruction: str, language: str, path: str) -> str:
    cut = prefix.rfind("\n") + 1
    line = prefix[cut:]
    indent = line[: len(line) - len(line.lstrip(" \t"))]
    one_line = " ".join(instruction.split())
    return f"{prefix[:cut]}{indent}{_comment_token(language, path)} {one_line}\n{line}"


def _fence(language: str) -> str:
    return f"```{language}\n"


def _chat_files(snippets: Sequence[Snippet]) -> str:
    """Cross-file snippets as extra files at the top of the user turn, the best-ranked last (nearest the code)."""
    if not snippets:
        return ""
    files = [f"File {s.path or '(unnamed)'}:\n```\n{s.text.rstrip()}\n```\n" for s in reversed(snippets)]
    return "Related code from other files:\n" + "".join(files)


def _chat_prompt(
    tok: TokenizerLike, sp: Specials, t: ChatTemplate, parts: PromptParts, suffix_in_prompt: bool
) -> list[int]:
    fence = _fence(parts.language)
    if parts.draft is None:
        head = t.infill_instruction.format(path=parts.path or "the file", gap=t.gap)
    else:
        head = t.edit_instruction.format(path=parts.path or "the file", gap=t.gap, instruction=parts.instruction)
        head += f"\nCode to rewrite ({t.gap}):\n{fence}{parts.draft}\n```"
    body = f"{_chat_files(parts.snippets)}{head}\n"
    if suffix_in_prompt:
        # Suffix first, prefix last: a keystroke changes only the end of the prompt (SPM order for chat).
        body += f"Code after {t.gap}:\n{fence}{parts.suffix}\n```\nCode before {t.gap}:\n{fence}{parts.prefix}"
    else:
        body += f"Code before {t.gap}:\n{fence}{parts.prefix}"
    # Only the template's markers may become special ids (<|turn>, <turn|>); path, code and instruction are plain
    # text. The role name after the opening marker's "...>" ("user\n") joins the plain text, so the ids equal those
    # of the whole prompt encoded as one string, as chat templates do (special tokens split the text there anyway).
    opening, close, role = t.user_open.rpartition(">")
    return [
        sp.bos,
        *tok.encode_markup(opening + close),
        *tok.encode(f"{role}{body}{t.gap}\n```"),
        *tok.encode_markup(f"{t.turn_close}{t.model_open}"),
    ]


def build_prompt(
    tok: TokenizerLike,
    sp: Specials,
    fmt: PromptFormat,
    layout: Layout,
    parts: PromptParts,
    template: ChatTemplate | None = None,
) -> list[int]:
    if fmt is PromptFormat.FIM:
        if not sp.has_fim:
            raise ValueError("the fim prompt format needs FIM special tokens")
        return _fim_prompt(tok, sp, parts, layout)
    return _chat_prompt(tok, sp, template or ChatTemplate(), parts, layout.suffix_in_prompt)


def pinned_tail(tok: TokenizerLike, layout: Layout, suffix: str, k: int) -> list[int]:
    """The first k tokens of the suffix, pinned at the canvas tail in layouts B and C (empty for A)."""
    if not layout.pins_suffix or k <= 0 or not suffix:
        return []
    return tok.encode(suffix)[:k]


@dataclass(frozen=True)
class CursorPrompt:
    ids: list[int]  # the prompt
    tail: list[int]  # the pinned suffix tokens (pinned_tail)
    window: Window  # the slice of the document shown
    snippets: tuple[Snippet, ...]  # the cross-file snippets as placed, best-ranked first
    tail_text: str  # document text from the cursor that the pinned tail is cut from (tail_text)


def tail_text(count: Callable[[str], int], text: str, cursor: int, end: int, k: int) -> str:
    """Text from the cursor holding more than k tokens (or the rest of the document): the window's suffix
    (`end`) grown by whole lines. Training pins the first K tokens of what follows the middle, wherever the
    window ends; a window snapped short must not pin fewer. One token past K keeps the K-th whole when the cut
    splits a token."""
    while end < len(text) and count(text[cursor:end]) <= k:
        end = text.find("\n", end) + 1 or len(text)
    return text[cursor:end]


def cursor_prompt(
    tok: TokenizerLike,
    sp: Specials,
    fmt: PromptFormat,
    layout: Layout,
    text: str,
    cursor: int,
    budget: int,
    k: int,
    parts: PromptParts,
    template: ChatTemplate | None = None,
) -> CursorPrompt:
    """The prompt for a cursor in `text` within `budget` context tokens: snippets (parts.snippets, best first)
    take at most snippet_budget(budget), the document's window the rest. `parts` gives path, language,
    instruction, draft and snippets; its prefix and suffix are replaced by the window's."""

    def count(s: str) -> int:
        return len(tok.encode(s))

    placed, used = fit_snippets(tok, parts.snippets, snippet_budget(budget))
    window = cursor_window(text, cursor, layout.suffix_in_prompt, budget - used, k, count)
    shown = replace(parts, prefix=window.prefix, suffix=window.suffix, snippets=placed)
    after = tail_text(count, text, cursor, window.end, k)
    return CursorPrompt(
        ids=build_prompt(tok, sp, fmt, layout, shown, template),
        tail=pinned_tail(tok, layout, after, k),
        window=window,
        snippets=placed,
        tail_text=after,
    )


def fill_budget(n_prefix: int, n_suffix: int, budget: int, suffix_share: float) -> tuple[int, int]:
    """How many prefix/suffix tokens to keep so that they sum to exactly `budget`, the suffix taking about
    `suffix_share` of it (a side that runs short gives the rest to the other); TooShort when both are too short."""
    if n_prefix + n_suffix < budget:
        raise TooShort(f"{n_prefix}+{n_suffix} context tokens < {budget}")
    s = min(n_suffix, round(budget * suffix_share))
    p = min(n_prefix, budget - s)
    return p, budget - p


def fill_prompt(
    tok: TokenizerLike,
    sp: Specials,
    layout: Layout,
    path: str,
    prefix: Sequence[int],
    suffix: Sequence[int],
    length: int,
    suffix_share: float,
    snippets: Sequence[Snippet] = (),
    budget: int | None = None,
) -> list[int]:
    """A FIM prompt of exactly `length` tokens (training batches need one length): the prompt cursor_prompt
    builds, with the document's prefix and suffix ids cut at their far ends to fill what the header and the
    snippets leave. `budget` is the context budget the snippets' share comes from (default: all the prompt's
    text tokens, i.e. `length` less the header and markers); TooShort when the document cannot fill it."""
    head = path_ids(tok, path)
    room = length - len(fim_ids(sp, layout, head, [], []))
    if room < 0:
        raise TooShort(f"a prompt of {length} tokens cannot hold its header")
    placed, used = fit_snippets(tok, snippets, snippet_budget(room if budget is None else budget))
    room -= used
    if room < 0:
        raise TooShort(f"snippets of {used} tokens leave no room in a prompt of {length}")
    p, s = fill_budget(len(prefix), len(suffix) if layout.suffix_in_prompt else 0, room, suffix_share)
    return fim_ids(sp, layout, head, prefix[len(prefix) - p :], suffix[:s], _snippet_blocks(tok, placed))


@dataclass(frozen=True)
class CanvasSpec:
    seed: list[int]  # canvas ids; NOISE marks free slots
    pinned: list[bool]
    free_len: int  # slots before the pinned suffix (middle + eos + pads)
    eos_at: int | None  # the length hypothesis (pinned eos slot), None = free length


def assemble_canvas(length: int, tail: Sequence[int], eos_at: int | None, eos: int, pad: int) -> CanvasSpec:
    """`{free...} {tail}` or, with a length hypothesis m, `{m free} <eos> <pad>... {tail}` (eos, pads, tail pinned)."""
    free_len = length - len(tail)
    if free_len < 1:
        raise ValueError(f"canvas of {length} slots cannot hold a pinned tail of {len(tail)} tokens")
    if eos_at is not None and not 0 < eos_at < free_len:
        raise ValueError(f"length hypothesis {eos_at} outside 1..{free_len - 1}")
    seed = [NOISE] * free_len + list(tail)
    pinned = [False] * free_len + [True] * len(tail)
    if eos_at is not None:
        seed[eos_at] = eos
        pinned[eos_at] = True
        for i in range(eos_at + 1, free_len):
            seed[i], pinned[i] = pad, True
    return CanvasSpec(seed=seed, pinned=pinned, free_len=free_len, eos_at=eos_at)


def assemble_edit_canvas(
    length: int, draft: Sequence[int], tail: Sequence[int], eos: int, pad: int, noised: Sequence[bool]
) -> CanvasSpec:
    """Edit canvas seeded with the draft: `{draft} <eos> <pad>... {tail}`; slots flagged in `noised` (over the
    free region) become NOISE. Only the tail is pinned, so the model may change the length."""
    free_len = length - len(tail)
    if len(draft) + 1 > free_len:
        raise ValueError(f"draft of {len(draft)} tokens does not fit a free region of {free_len} slots")
    if len(noised) != free_len:
        raise ValueError("noised mask must cover the free region")
    free = list(draft) + [eos] + [pad] * (free_len - len(draft) - 1)
    free = [NOISE if n else t for t, n in zip(free, noised, strict=True)]
    return CanvasSpec(
        seed=free + list(tail), pinned=[False] * free_len + [True] * len(tail), free_len=free_len, eos_at=None
    )


# Slot counts tried after the free-length canvas, shortest plausible first for single-line completions.
SINGLE_LINE_LADDER = (8, 4, 14, 24, 40)
MULTI_LINE_LADDER = (32, 16, 64, 8, 128)


def length_hypotheses(count: int, free_len: int, multiline: bool) -> list[int | None]:
    """`count` hypotheses: None (free length) first, then pinned-eos slots from the ladder that fit."""
    if count < 1:
        raise ValueError("at least one length hypothesis is needed")
    out: list[int | None] = [None]
    for m in MULTI_LINE_LADDER if multiline else SINGLE_LINE_LADDER:
        if len(out) == count:
            break
        if m < free_len and m not in out:  # every ladder slot is positive
            out.append(m)
    return out


def scoring_canvas(middle: Sequence[int], free_len: int, tail: Sequence[int], eos: int, pad: int) -> list[int]:
    """The committed answer in its clean trained form, `{middle} <eos> <pad>... {tail}`, for one scoring pass;
    a middle that filled the free region gets no eos."""
    free = list(middle[:free_len])
    if len(free) < free_len:
        free.append(eos)
    return free + [pad] * (free_len - len(free)) + list(tail)


def target_canvas(
    sp: Specials, middle: Sequence[int], tail: Sequence[int], length: int
) -> tuple[list[int], list[bool]]:
    """A training canvas, (ids, pinned): the scoring canvas of the true middle, `{middle} <eos> <pad>... {tail}`,
    with the tail pinned; TooShort when the middle and its eos do not fit beside the tail."""
    free_len = length - len(tail)
    if len(middle) + 1 > free_len:
        raise TooShort(f"middle of {len(middle)} tokens + {len(tail)} pinned does not fit canvas {length}")
    return scoring_canvas(middle, free_len, tail, sp.eos, sp.pad), [False] * free_len + [True] * len(tail)


def middle_ids(canvas: Sequence[int], free_len: int, stop_ids: Sequence[int]) -> tuple[list[int], bool]:
    """The middle of a committed canvas: tokens of the free region before the first stop id.

    Returns (ids, stopped); stopped is False when the free region filled without a stop id (the span may go on).
    """
    stops = set(stop_ids)
    out: list[int] = []
    for t in canvas[:free_len]:
        if t in stops:
            return out, True
        out.append(t)
    return out, False

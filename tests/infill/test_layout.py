"""Prompt and canvas assembly for layouts A/B/C, both prompt formats, and length hypotheses."""

import dataclasses
import re

import pytest
from dcopilot.engine.tasks import layout as lay
from dcopilot.engine.tasks.requests import Snippet
from dcopilot.engine.training.bpe import SPECIAL_TOKENS
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

# Survivors of `python scripts/mutation.py engine/tasks/layout.py` that cannot change behaviour: (function, mutated
# line, why). The runner marks a survivor equivalent only when it is listed here.
_EQUAL = "both sequences have the same length by construction, so zip's strict check never fires"
_FIM_ZIP = "missing = [name for name, i in zip(FIM_TOKENS, _fim_ids(specials), {}) if i is None]"
_EDIT_ZIP = "free = [NOISE if n else t for t, n in zip(free, noised, {})]"
EQUIVALENT_MUTANTS = [
    ("pinned_tail", "if not layout.pins_suffix or k < 0 or not suffix:", "k == 0 then takes encode(...)[:0], also []"),
    *(("fim_specials", _FIM_ZIP.format(arg), _EQUAL) for arg in ("strict=None", "strict=False", "")),
    *(("assemble_edit_canvas", _EDIT_ZIP.format(arg), _EQUAL) for arg in ("strict=None", "strict=False", "")),
]


class Tok:
    """Word-level stand-in tokenizer with the embedded model's special tokens (and Gemma turn markers)."""

    def __init__(self, words=("a", "b", "c", "x", "y", "f", "\n", "(", ")"), t: Tokenizer | None = None):
        if t is None:
            vocab = {t: i for i, t in enumerate([*SPECIAL_TOKENS, "<|turn>", "<turn|>", *words, "[UNK]"])}
            t = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
            t.pre_tokenizer = pre_tokenizers.Split(Regex(r"\s|\w+|[^\w\s]"), behavior="isolated")
            t.add_special_tokens([*SPECIAL_TOKENS, "<|turn>", "<turn|>"])
        self.t = t
        self.plain = Tokenizer.from_str(t.to_str())
        self.plain.encode_special_tokens = True

    def encode(self, text):
        return self.plain.encode(text, add_special_tokens=False).ids

    def encode_markup(self, text):
        return self.t.encode(text, add_special_tokens=False).ids

    def decode(self, ids):
        return self.t.decode(list(ids), skip_special_tokens=False)

    def token_to_id(self, name):
        return self.t.token_to_id(name)


@pytest.fixture
def tok():
    return Tok()


def test_specials_are_looked_up_by_name(tok):
    sp = lay.specials_from(tok)
    assert (sp.pad, sp.eos, sp.bos) == (0, 1, 2)
    assert sp.has_fim and lay.resolve_format("auto", sp) is lay.PromptFormat.FIM


def test_chat_format_without_fim_tokens():
    sp = lay.Specials(bos=2, eos=1, pad=0)
    assert lay.resolve_format("auto", sp) is lay.PromptFormat.GEMMA_CHAT
    with pytest.raises(ValueError, match="fim"):
        lay.resolve_format("fim", sp)


@pytest.mark.parametrize(
    "layout,expected",
    [
        ("A", ["<bos>", "<|file|>", "f", "\n", "<|fim_suffix|>", "y", "<|fim_prefix|>", "x", "<|fim_middle|>"]),
        ("B", ["<bos>", "<|file|>", "f", "\n", "<|fim_prefix|>", "x", "<|fim_middle|>"]),
        ("C", ["<bos>", "<|file|>", "f", "\n", "<|fim_suffix|>", "y", "<|fim_prefix|>", "x", "<|fim_middle|>"]),
    ],
)
def test_fim_prompts_follow_the_trained_layouts(tok, layout, expected):
    sp = lay.specials_from(tok)
    ids = lay.build_prompt(tok, sp, lay.PromptFormat.FIM, lay.Layout(layout), lay.PromptParts("f", "x", "y"))
    assert ids == [tok.token_to_id(t) for t in expected]


def test_chat_prompt_uses_turn_marker_ids_and_b_leaves_the_suffix_out(tok):
    sp = lay.specials_from(tok)
    parts = lay.PromptParts(path="f.py", prefix="x", suffix="y y y", language="python")
    ids = lay.build_prompt(tok, sp, lay.PromptFormat.GEMMA_CHAT, lay.Layout.A, parts)
    assert ids[0] == sp.bos and ids.count(tok.token_to_id("<|turn>")) == 2
    assert ids.count(tok.token_to_id("<turn|>")) == 1
    ids_b = lay.build_prompt(tok, sp, lay.PromptFormat.GEMMA_CHAT, lay.Layout.B, parts)
    assert ids_b.count(tok.token_to_id("y")) == 0 and ids.count(tok.token_to_id("y")) == 3


def _spy() -> tuple[Tok, list[str]]:
    """A tokenizer that records every text it is asked to encode (template markup recorded as ("markup", text))."""
    seen: list = []

    class Spy(Tok):
        def encode(self, text):
            seen.append(text)
            return super().encode(text)

        def encode_markup(self, text):
            seen.append(("markup", text))
            return super().encode_markup(text)

    return Spy(), seen


def test_chat_prompt_text_order():
    spy, seen = _spy()
    sp = lay.specials_from(spy)
    lay.build_prompt(
        spy,
        sp,
        lay.PromptFormat.GEMMA_CHAT,
        lay.Layout.C,
        lay.PromptParts(path="f.py", prefix="PRE", suffix="SUF", language="python"),
    )
    assert seen[-3] == ("markup", "<|turn>") and seen[-1] == ("markup", "<turn|>\n<|turn>model\n")
    text = seen[-2]
    assert text.startswith("user\n")
    assert text.index("SUF") < text.index("PRE") < text.rindex("<FILL_HERE>")


def _chat_text(parts, layout) -> str:
    """The whole chat prompt as one string, as it was encoded before user text became plain text."""
    spy, seen = _spy()
    lay.build_prompt(spy, lay.specials_from(spy), lay.PromptFormat.GEMMA_CHAT, layout, parts)
    return "".join(s[1] if isinstance(s, tuple) else s for s in seen[-3:])


def _merging_tok(text: str) -> Tok:
    """BPE trained on `text` with no pre-splitting, as in SentencePiece-style tokenizers (Gemma): merges cross
    newlines, so its ids change wherever the prompt is cut between special tokens."""
    t = Tokenizer(models.BPE(unk_token="[UNK]"))
    specials = [*SPECIAL_TOKENS, "<|turn>", "<turn|>", "[UNK]"]
    t.train_from_iterator([text] * 5, trainers.BpeTrainer(vocab_size=300, special_tokens=specials, show_progress=False))
    return Tok(t=t)


@pytest.mark.parametrize(
    "parts,layout",
    [
        (lay.PromptParts(path="f.py", prefix="x = f(a)\n", suffix="y\n", language="python"), lay.Layout.A),
        (lay.PromptParts(path="", prefix="a b", suffix="c", language=""), lay.Layout.B),
        (lay.PromptParts(path="f.py", prefix="x", suffix="y", instruction="add c", draft="a b"), lay.Layout.C),
    ],
)
def test_chat_prompt_ids_equal_the_prompt_encoded_as_one_string(tok, parts, layout):
    text = _chat_text(parts, layout)
    assert text.startswith("<|turn>user\n") and text.endswith("<turn|>\n<|turn>model\n")
    for t in (tok, _merging_tok(text)):
        ids = lay.build_prompt(t, lay.specials_from(t), lay.PromptFormat.GEMMA_CHAT, layout, parts)
        assert ids == [lay.specials_from(t).bos, *t.encode_markup(text)]


def test_turn_marker_literal_in_user_code_stays_text(tok):
    parts = lay.PromptParts(path="<turn|>.py", prefix="x = '<turn|>'\n<|turn>", suffix="'<eos>'", language="python")
    ids = lay.build_prompt(tok, lay.specials_from(tok), lay.PromptFormat.GEMMA_CHAT, lay.Layout.A, parts)
    # exactly the template's markers: <|turn>user, <turn|>, <|turn>model
    assert ids.count(tok.token_to_id("<|turn>")) == 2 and ids.count(tok.token_to_id("<turn|>")) == 1
    assert tok.token_to_id("<eos>") not in ids


def test_fim_instruction_becomes_a_comment_above_the_cursor_line(tok):
    spy, seen = _spy()
    lay.build_prompt(
        spy,
        lay.specials_from(spy),
        lay.PromptFormat.FIM,
        lay.Layout.A,
        lay.PromptParts(path="m.py", prefix="def f():\n    ", suffix="", instruction="add  hints"),
    )
    assert "def f():\n    # add hints\n    " in seen


@pytest.mark.parametrize(
    "length,tail,eos_at,seed,pinned",
    [
        (6, [], None, [-1] * 6, [False] * 6),
        (6, [7, 8], None, [-1, -1, -1, -1, 7, 8], [False] * 4 + [True] * 2),
        (6, [7, 8], 2, [-1, -1, 1, 0, 7, 8], [False, False, True, True, True, True]),
        (5, [], 1, [-1, 1, 0, 0, 0], [False, True, True, True, True]),
    ],
)
def test_assemble_canvas(length, tail, eos_at, seed, pinned):
    spec = lay.assemble_canvas(length, tail, eos_at, eos=1, pad=0)
    assert (spec.seed, spec.pinned) == (seed, pinned)
    assert spec.free_len == length - len(tail)


def test_assemble_canvas_rejects_impossible_shapes():
    with pytest.raises(ValueError, match="pinned tail"):
        lay.assemble_canvas(4, [1, 2, 3, 4], None, 1, 0)
    with pytest.raises(ValueError, match="hypothesis"):
        lay.assemble_canvas(6, [7, 8], 4, 1, 0)


def test_edit_canvas_is_seeded_with_the_draft():
    spec = lay.assemble_edit_canvas(8, [5, 6, 7], [9], eos=1, pad=0, noised=[False, True] + [False] * 5)
    assert spec.seed == [5, lay.NOISE, 7, 1, 0, 0, 0, 9]
    assert spec.pinned == [False] * 7 + [True]
    with pytest.raises(ValueError, match="does not fit"):
        lay.assemble_edit_canvas(4, [5, 6, 7], [9], 1, 0, [False] * 3)


@pytest.mark.parametrize(
    "count,free_len,multiline,expected",
    [
        (1, 40, False, [None]),
        (3, 40, False, [None, 8, 4]),
        (3, 40, True, [None, 32, 16]),
        (4, 10, False, [None, 8, 4]),  # only slots that fit
    ],
)
def test_length_hypotheses(count, free_len, multiline, expected):
    assert lay.length_hypotheses(count, free_len, multiline) == expected


@pytest.mark.parametrize(
    "canvas,free_len,expected",
    [
        ([5, 6, 1, 0, 9], 4, ([5, 6], True)),
        ([5, 6, 7, 8, 9], 4, ([5, 6, 7, 8], False)),
        ([1, 0, 0, 0, 9], 4, ([], True)),
    ],
)
def test_middle_ids(canvas, free_len, expected):
    assert lay.middle_ids(canvas, free_len, [1, 0]) == expected


def test_pinned_tail_only_in_b_and_c(tok):
    assert lay.pinned_tail(tok, lay.Layout.A, "x y", 4) == []
    assert lay.pinned_tail(tok, lay.Layout.B, "x y c", 2) == tok.encode("x y c")[:2]
    assert lay.pinned_tail(tok, lay.Layout.C, "", 2) == []


@pytest.mark.parametrize(
    "middle,free_len,tail,expected",
    [
        ([5, 6], 5, [9], [5, 6, 1, 0, 0, 9]),
        ([5, 6, 7], 3, [9], [5, 6, 7, 9]),
        ([], 2, [], [1, 0]),
    ],
)
def test_scoring_canvas(middle, free_len, tail, expected):
    assert lay.scoring_canvas(middle, free_len, tail, eos=1, pad=0) == expected


# -- exact prompt text, comment syntax per language, canvas shapes at their limits -----------------------------


def _chat_prompt_text(parts: lay.PromptParts, layout: lay.Layout) -> str:
    return _chat_text(parts, layout)


def test_chat_infill_prompt_text_exactly():
    parts = lay.PromptParts(path="pkg/m.py", prefix="def f():\n    ", suffix="\nx = 1\n", language="python")
    assert _chat_prompt_text(parts, lay.Layout.A) == (
        "<|turn>user\n"
        "Complete the code in pkg/m.py at <FILL_HERE>. Reply with only the code that replaces <FILL_HERE>: "
        "no explanation, no code fences, no code that is already there.\n"
        "Code after <FILL_HERE>:\n```python\n\nx = 1\n\n```\n"
        "Code before <FILL_HERE>:\n```python\ndef f():\n    <FILL_HERE>\n```"
        "<turn|>\n<|turn>model\n"
    )
    assert _chat_prompt_text(lay.PromptParts(path="", prefix="a", suffix="b"), lay.Layout.B) == (
        "<|turn>user\n"
        "Complete the code in the file at <FILL_HERE>. Reply with only the code that replaces <FILL_HERE>: "
        "no explanation, no code fences, no code that is already there.\n"
        "Code before <FILL_HERE>:\n```\na<FILL_HERE>\n```"
        "<turn|>\n<|turn>model\n"
    )


def test_chat_edit_prompt_text_exactly():
    parts = lay.PromptParts(path="", prefix="p", suffix="s", language="go", instruction="add types", draft="x := 1")
    assert _chat_prompt_text(parts, lay.Layout.C) == (
        "<|turn>user\n"
        "Rewrite the code marked <FILL_HERE> in the file. add types "
        "Reply with only the rewritten code: no explanation, no code fences.\n"
        "Code to rewrite (<FILL_HERE>):\n```go\nx := 1\n```\n"
        "Code after <FILL_HERE>:\n```go\ns\n```\n"
        "Code before <FILL_HERE>:\n```go\np<FILL_HERE>\n```"
        "<turn|>\n<|turn>model\n"
    )


def test_chat_template_is_configurable(tok):
    t = lay.ChatTemplate(user_open="<|turn>human>\n", gap="@@", infill_instruction="Fill {gap} in {path}.")
    spy, seen = _spy()
    lay.build_prompt(
        spy,
        lay.specials_from(spy),
        lay.PromptFormat.GEMMA_CHAT,
        lay.Layout.B,
        lay.PromptParts(path="a.c", prefix="x", suffix="y"),
        template=t,
    )
    # the role text after the opening marker's last ">" is plain text
    assert seen[-3] == ("markup", "<|turn>human>")
    assert seen[-2] == "\nFill @@ in a.c.\nCode before @@:\n```\nx@@\n```"


@pytest.mark.parametrize(
    "language,path,token",
    [
        *[
            (lang, "x", "#")
            for lang in (
                "python",
                "ruby",
                "shellscript",
                "bash",
                "sh",
                "perl",
                "r",
                "yaml",
                "toml",
                "makefile",
                "Python",
                "YAML",
            )
        ],
        *[("", f"a{ext}", "#") for ext in (".py", ".rb", ".sh", ".pl", ".r", ".yaml", ".yml", ".toml")],
        *[(lang, "x", "--") for lang in ("lua", "sql", "haskell", "Lua", "SQL")],
        *[("", f"a{ext}", "--") for ext in (".lua", ".sql", ".hs")],
        ("c", "a.c", "//"),
        ("", "a.py.txt", "//"),
        ("", "", "//"),
        ("rust", "a.rs", "//"),
    ],
)
def test_comment_token(language, path, token):
    assert lay._comment_token(language, path) == token


@pytest.mark.parametrize(
    "prefix,expected",
    [
        ("import os\ndef f():\n    x = ", "import os\ndef f():\n    # tidy up\n    x = "),
        ("\t\tif x:", "\t\t# tidy up\n\t\tif x:"),
        ("", "# tidy up\n"),
        ("a\n", "a\n# tidy up\n"),
    ],
)
def test_comment_before_line(prefix, expected):
    assert lay._comment_before_line(prefix, "tidy\n  up", "python", "") == expected


def test_fim_edit_prompt_has_the_instruction_comment_in_the_prefix_only(tok):
    spy, seen = _spy()
    lay.build_prompt(
        spy,
        lay.specials_from(spy),
        lay.PromptFormat.FIM,
        lay.Layout.C,
        lay.PromptParts(path="m.lua", prefix="a\n  b", suffix="c", instruction="go"),
    )
    assert seen == ["m.lua\n", "c", "a\n  -- go\n  b"]


def test_specials_from_overrides_and_missing_tokens(tok):
    sp = lay.specials_from(tok, eos=50, pad=51)  # from the model config
    assert (sp.eos, sp.pad, sp.bos) == (50, 51, tok.token_to_id("<bos>"))

    class NoBos(Tok):
        def token_to_id(self, name):
            return None if name == "<bos>" else super().token_to_id(name)

    with pytest.raises(ValueError, match=r"^tokenizer has no <bos> token$"):
        lay.specials_from(NoBos())

    class NoFim(Tok):
        def token_to_id(self, name):
            return None if name == "<|fim_middle|>" else super().token_to_id(name)

    sp = lay.specials_from(NoFim())
    assert sp.fim_middle is None and not sp.has_fim and sp.fim_prefix is not None


def test_resolve_format_settings(tok):
    sp = lay.specials_from(tok)
    assert lay.resolve_format("fim", sp) is lay.PromptFormat.FIM
    assert lay.resolve_format("gemma-chat", sp) is lay.PromptFormat.GEMMA_CHAT
    no_fim = lay.Specials(bos=2, eos=1, pad=0)
    assert lay.resolve_format("gemma-chat", no_fim) is lay.PromptFormat.GEMMA_CHAT
    with pytest.raises(
        ValueError,
        match=r"^prompt_format 'fim' needs <\|fim_prefix\|>, <\|fim_suffix\|>, "
        r"<\|fim_middle\|>, <\|file\|> tokens$",
    ):
        lay.resolve_format("fim", no_fim)
    with pytest.raises(ValueError):
        lay.resolve_format("spm", sp)


def test_build_prompt_refuses_fim_without_fim_tokens(tok):
    with pytest.raises(ValueError, match=r"^the fim prompt format needs FIM special tokens$"):
        lay.build_prompt(
            tok, lay.Specials(bos=2, eos=1, pad=0), lay.PromptFormat.FIM, lay.Layout.A, lay.PromptParts("f", "x", "y")
        )


def test_layout_flags():
    assert [(x.suffix_in_prompt, x.pins_suffix) for x in lay.Layout] == [(True, False), (False, True), (True, True)]


@pytest.mark.parametrize("k", [0, -1])
def test_pinned_tail_needs_a_positive_count(tok, k):
    assert lay.pinned_tail(tok, lay.Layout.C, "x y", k) == []
    assert lay.pinned_tail(tok, lay.Layout.C, "x y", 1) == tok.encode("x y")[:1] != []


@pytest.mark.parametrize(
    "length,tail,eos_at,seed",
    [
        (6, [7], 1, [-1, 1, 0, 0, 0, 7]),  # the smallest hypothesis
        (6, [7], 4, [-1, -1, -1, -1, 1, 7]),  # the largest: eos in the last free slot
    ],
)
def test_assemble_canvas_hypothesis_limits(length, tail, eos_at, seed):
    spec = lay.assemble_canvas(length, tail, eos_at, eos=1, pad=0)
    assert spec.seed == seed and spec.eos_at == eos_at and spec.free_len == 5
    assert spec.pinned == [s != lay.NOISE for s in seed]


@pytest.mark.parametrize(
    "length,tail,eos_at,message",
    [
        (4, [1, 2, 3, 4], None, "canvas of 4 slots cannot hold a pinned tail of 4 tokens"),
        (4, [1, 2, 3, 4, 5], None, "canvas of 4 slots cannot hold a pinned tail of 5 tokens"),
        (6, [7], 5, "length hypothesis 5 outside 1..4"),
        (6, [7], 0, "length hypothesis 0 outside 1..4"),
    ],
)
def test_assemble_canvas_errors(length, tail, eos_at, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        lay.assemble_canvas(length, tail, eos_at, 1, 0)
    assert lay.assemble_canvas(2, [9], None, 1, 0).seed == [lay.NOISE, 9]  # one free slot is enough


def test_edit_canvas_shapes():
    spec = lay.assemble_edit_canvas(6, [5, 6], [9, 8], eos=1, pad=0, noised=[True, False, False, True])
    assert (spec.seed, spec.free_len, spec.eos_at) == ([lay.NOISE, 6, 1, lay.NOISE, 9, 8], 4, None)
    assert spec.pinned == [False] * 4 + [True, True]
    full = lay.assemble_edit_canvas(4, [5, 6, 7], [], eos=1, pad=0, noised=[False] * 4)  # draft + eos exactly fill
    assert full.seed == [5, 6, 7, 1]
    with pytest.raises(ValueError, match=r"^draft of 4 tokens does not fit a free region of 4 slots$"):
        lay.assemble_edit_canvas(4, [5, 6, 7, 8], [], 1, 0, [False] * 4)
    with pytest.raises(ValueError, match=r"^noised mask must cover the free region$"):
        lay.assemble_edit_canvas(6, [5], [9], 1, 0, [False] * 4)


@pytest.mark.parametrize(
    "count,free_len,multiline,expected",
    [
        (6, 200, False, [None, 8, 4, 14, 24, 40]),
        (6, 200, True, [None, 32, 16, 64, 8, 128]),
        (9, 9, False, [None, 8, 4]),  # a slot must leave room after it
        (9, 8, False, [None, 4]),
        (2, 5, True, [None]),
    ],
)
def test_length_hypotheses_ladders(count, free_len, multiline, expected):
    assert lay.length_hypotheses(count, free_len, multiline) == expected


def test_length_hypotheses_needs_one():
    with pytest.raises(ValueError, match=r"^at least one length hypothesis is needed$"):
        lay.length_hypotheses(0, 40, False)


def test_middle_ids_stop_at_any_stop_id_inside_the_free_region():
    assert lay.middle_ids([5, 0, 6, 1], 4, [1, 0]) == ([5], True)
    assert lay.middle_ids([5, 6, 1, 0], 2, [1]) == ([5, 6], False)  # the stop id lies past the free region


def test_fim_specials_of_a_fim_tokenizer(tok):
    sp = lay.fim_specials(tok)
    assert type(sp) is lay.FimSpecials and sp.has_fim
    names = ("bos", "eos", "pad", "fim_prefix", "fim_suffix", "fim_middle", "file")
    tokens = ("<bos>", "<eos>", "<pad>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|file|>")
    assert [getattr(sp, n) for n in names] == [tok.token_to_id(t) for t in tokens]
    assert len({getattr(sp, n) for n in names}) == len(names)  # distinct ids: a swapped field would show


@pytest.mark.parametrize(
    "absent,reported",
    [
        ({"<|fim_prefix|>"}, "<|fim_prefix|>"),
        ({"<|fim_suffix|>"}, "<|fim_suffix|>"),
        ({"<|fim_middle|>"}, "<|fim_middle|>"),
        ({"<|file|>"}, "<|file|>"),
        ({"<|file|>", "<|fim_suffix|>"}, "<|fim_suffix|>"),  # the first one in FIM order is named
    ],
)
def test_fim_specials_names_the_missing_token(absent, reported):
    class Lacking(Tok):
        def token_to_id(self, name):
            return None if name in absent else super().token_to_id(name)

    with pytest.raises(ValueError, match="^" + re.escape(f"tokenizer lacks special token {reported}") + "$"):
        lay.fim_specials(Lacking())


@pytest.mark.parametrize("field", ["fim_prefix", "fim_suffix", "fim_middle", "file"])
def test_fim_prompt_refuses_specials_lacking_any_fim_token(tok, field):
    # build_prompt checks has_fim first; the FIM prompt itself still refuses, whichever one token is missing
    sp = lay.specials_from(tok)
    lacking = dataclasses.replace(sp, **{field: None})
    message = "a FIM prompt needs the tokenizer's FIM tokens (Specials.has_fim)"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        lay.fim_ids(lacking, lay.Layout.A, [], [], [])


# ---------------------------------------------------------------------------------------------------------------
# The one prompt rule shared with training: paths, snippets, exact-length fills, training canvases


def _names(tok, ids):
    return [tok.t.id_to_token(i) for i in ids]


@pytest.mark.parametrize(
    "path,expected",
    [
        ("f", ["f", "\n"]),
        ("", ["\n"]),
        ("/".join(["a"] * 11) + "/f", [*(["a", "[UNK]"] * 11), "f", "\n"]),  # 24 tokens: all kept
        ("/".join(["b"] * 12) + "/f", [*(["b", "[UNK]"] * 11), "f", "\n"]),  # 26: the first "b/" goes
    ],
)
def test_path_ids_keep_at_most_the_last_24_tokens(tok, path, expected):
    assert lay.MAX_PATH_TOKENS == 24
    assert _names(tok, lay.path_ids(tok, path)) == expected


@pytest.mark.parametrize("budget,share", [(0, 0), (3, 0), (4, 1), (7, 1), (8, 2), (1000, 250)])
def test_snippet_budget_is_a_quarter(budget, share):
    assert lay.snippet_budget(budget) == share


# Word-level Tok: "a\n" is 2 tokens, "a b\n" is 4 (the space is one), a header "<|file|> f\n" is 3.
FOUR = Snippet("f", "a\nb\nc\nx\n")  # 8 text tokens, 11 with its header


@pytest.mark.parametrize(
    "snippets,budget,placed,used",
    [
        ((), 50, (), 0),
        ((FOUR,), 11, (FOUR,), 11),  # fits exactly
        ((FOUR,), 10, (Snippet("f", "a\nb\nc\n"),), 9),  # whole leading lines kept
        ((FOUR,), 5, (Snippet("f", "a\n"),), 5),  # one line: 3 + 2
        ((FOUR,), 4, (Snippet("f", "a"),), 4),  # not even one line: its head
        ((FOUR,), 3, (), 0),  # a header and no room for text: dropped
        ((Snippet("f", "a b c x y"),), 6, (Snippet("f", "a b"),), 6),  # a long first line: its head
        ((FOUR, Snippet("", "y\n")), 15, (FOUR, Snippet("", "y\n")), 15),  # "" path: a bare line break
        ((FOUR, Snippet("f", "y\n")), 13, (FOUR,), 11),  # the second one gets 2 tokens: too few for its header
        ((Snippet("f", "a b c x y\n"), Snippet("f", "y\n")), 8, (Snippet("f", "a b c"),), 8),  # best first
    ],
)
def test_fit_snippets_table(tok, snippets, budget, placed, used):
    got, n = lay.fit_snippets(tok, snippets, budget)
    assert got == placed and n == used <= budget
    assert n == sum(len(lay.path_ids(tok, s.path)) + 1 + len(tok.encode(s.text)) for s in got)


def test_fim_ids_table(tok):
    sp = lay.specials_from(tok)
    file, fs, fp, fm = sp.file, sp.fim_suffix, sp.fim_prefix, sp.fim_middle
    assert lay.fim_ids(sp, lay.Layout.A, [50], [60], [70]) == [sp.bos, file, 50, fs, 70, fp, 60, fm]
    assert lay.fim_ids(sp, lay.Layout.B, [50], [60], [70]) == [sp.bos, file, 50, fp, 60, fm]
    assert lay.fim_ids(sp, lay.Layout.C, [50], [], [], [[80, 81], [90]]) == [
        *[sp.bos, file, 80, 81, file, 90, file, 50],
        *[fs, fp, fm],
    ]


def test_fim_prompt_puts_snippets_before_the_file_best_last(tok):
    sp = lay.specials_from(tok)
    parts = lay.PromptParts("f", "x", "y", snippets=(Snippet("a", "b\n"), Snippet("c", "(\n")))
    ids = lay.build_prompt(tok, sp, lay.PromptFormat.FIM, lay.Layout.C, parts)
    expected = ["<bos>", "<|file|>", "c", "\n", "(", "\n", "<|file|>", "a", "\n", "b", "\n"]
    expected += ["<|file|>", "f", "\n", "<|fim_suffix|>", "y", "<|fim_prefix|>", "x", "<|fim_middle|>"]
    assert _names(tok, ids) == expected


def test_chat_prompt_shows_snippets_as_files_best_last():
    parts = lay.PromptParts("f.py", "PRE", "SUF", snippets=(Snippet("best.py", "BEST\n"), Snippet("", "NEXT")))
    text = _chat_text(parts, lay.Layout.A)
    files = "Related code from other files:\nFile (unnamed):\n```\nNEXT\n```\nFile best.py:\n```\nBEST\n```\n"
    assert text.startswith("<|turn>user\n" + files + "Complete the code")
    assert text.index("BEST") < text.index("Complete the code") < text.index("SUF") < text.index("PRE")
    assert "Related code" not in _chat_text(lay.PromptParts("f.py", "PRE", "SUF"), lay.Layout.A)


DOC = "".join(f"{w} {w}\n" for w in "abcxyabcxyabcxyabcxy")  # 20 lines of 4 tokens


@pytest.mark.parametrize("layout", ["A", "B", "C"])
@pytest.mark.parametrize("snippets", [(), (FOUR,), (FOUR, Snippet("", "y\n" * 30))])
def test_cursor_prompt_gives_the_window_what_snippets_leave(tok, layout, snippets):
    sp, shape, cursor, budget, k = lay.specials_from(tok), lay.Layout(layout), len(DOC) // 2, 48, 3
    parts = lay.PromptParts(path="f", prefix="ignored", suffix="ignored", snippets=snippets)
    got = lay.cursor_prompt(tok, sp, lay.PromptFormat.FIM, shape, DOC, cursor, budget, k, parts)
    placed, used = lay.fit_snippets(tok, snippets, 12)
    count = lambda s: len(tok.encode(s))  # noqa: E731
    window = lay.cursor_window(DOC, cursor, shape.suffix_in_prompt, budget - used, k, count)
    assert got.snippets == placed and got.window == window
    assert got.tail == lay.pinned_tail(tok, shape, window.suffix, k)
    shown = lay.PromptParts("f", window.prefix, window.suffix, snippets=placed)
    assert got.ids == lay.build_prompt(tok, sp, lay.PromptFormat.FIM, shape, shown)
    assert window.prefix_tokens + window.suffix_tokens <= budget - used + (0 if shape.suffix_in_prompt else 14)
    assert (got.ids.count(sp.file) - 1, used > 0) == (len(placed), bool(snippets))


def test_fill_budget_table():
    assert lay.fill_budget(100, 100, 50, 0.3) == (35, 15)
    assert lay.fill_budget(10, 100, 50, 0.3) == (10, 40)  # short prefix: suffix takes the rest
    assert lay.fill_budget(100, 3, 50, 0.3) == (47, 3)
    assert lay.fill_budget(30, 20, 50, 0.3) == (30, 20)  # exactly enough
    assert lay.fill_budget(100, 100, 50, 0.29) == (36, 14)  # rounds the suffix share
    with pytest.raises(lay.TooShort, match="^" + re.escape("10+10 context tokens < 50") + "$"):
        lay.fill_budget(10, 10, 50, 0.3)


@pytest.mark.parametrize("layout", ["A", "B", "C"])
@pytest.mark.parametrize("snippets", [(), (FOUR,)])
def test_fill_prompt_is_exactly_long_and_cuts_the_far_ends(tok, layout, snippets):
    sp, shape = lay.specials_from(tok), lay.Layout(layout)
    prefix, suffix = list(range(100, 140)), list(range(200, 240))
    length = 40
    ids = lay.fill_prompt(tok, sp, shape, "f", prefix, suffix, length, 0.25, snippets)
    head = lay.path_ids(tok, "f")
    room = length - len(lay.fim_ids(sp, shape, head, [], []))
    placed, used = lay.fit_snippets(tok, snippets, room // 4)
    p, s = lay.fill_budget(40, 40 if shape.suffix_in_prompt else 0, room - used, 0.25)
    blocks = [[*lay.path_ids(tok, x.path), *tok.encode(x.text)] for x in placed]
    assert ids == lay.fim_ids(sp, shape, head, prefix[40 - p :], suffix[:s], blocks)
    assert len(ids) == length and (used > 0) == bool(snippets)


def test_fill_prompt_takes_the_snippet_share_of_the_given_budget(tok):
    sp = lay.specials_from(tok)
    prefix = list(range(100, 200))
    small = lay.fill_prompt(tok, sp, lay.Layout.B, "f", prefix, [], 60, 0.3, (FOUR,), budget=40)  # 10: 3 lines
    large = lay.fill_prompt(tok, sp, lay.Layout.B, "f", prefix, [], 60, 0.3, (FOUR,), budget=44)  # 11: all
    assert _names(tok, small[:10]) == ["<bos>", "<|file|>", "f", "\n", "a", "\n", "b", "\n", "c", "\n"]
    assert _names(tok, large[10:13]) == ["x", "\n", "<|file|>"] and len(small) == len(large) == 60
    assert small[-2] == large[-2] == 199  # the prefix still ends at the cursor


@pytest.mark.parametrize(
    "layout,length,prefix,suffix,message",
    [
        ("A", 6, 50, 50, "a prompt of 6 tokens cannot hold its header"),
        ("B", 5, 50, 50, "a prompt of 5 tokens cannot hold its header"),
        ("B", 20, 13, 50, "13+0 context tokens < 14"),  # B fills with the prefix alone
        ("C", 20, 7, 5, "7+5 context tokens < 13"),
    ],
)
def test_fill_prompt_refuses_what_it_cannot_fill(tok, layout, length, prefix, suffix, message):
    sp = lay.specials_from(tok)
    with pytest.raises(lay.TooShort, match="^" + re.escape(message) + "$"):
        lay.fill_prompt(tok, sp, lay.Layout(layout), "f", [7] * prefix, [8] * suffix, length, 0.3)
    lay.fill_prompt(tok, sp, lay.Layout(layout), "f", [7] * (prefix + 1), [8] * (suffix + 1), max(length, 8), 0.3)


def test_fill_prompt_refuses_snippets_over_the_room(tok):
    sp = lay.specials_from(tok)
    with pytest.raises(lay.TooShort, match=re.escape("snippets of 11 tokens leave no room in a prompt of 12")):
        lay.fill_prompt(tok, sp, lay.Layout.B, "f", [7] * 50, [], 12, 0.3, (FOUR,), budget=44)


@pytest.mark.parametrize(
    "middle,tail,length,canvas,pinned",
    [
        ([10, 11], [], 4, [10, 11, "eos", "pad"], [False] * 4),
        ([10, 11], [5], 4, [10, 11, "eos", 5], [False] * 3 + [True]),
        ([], [5, 6], 4, ["eos", "pad", 5, 6], [False, False, True, True]),
        ([10, 11, 12], [], 4, [10, 11, 12, "eos"], [False] * 4),
    ],
)
def test_target_canvas_table(tok, middle, tail, length, canvas, pinned):
    sp = lay.specials_from(tok)
    named = {"eos": sp.eos, "pad": sp.pad}
    assert lay.target_canvas(sp, middle, tail, length) == ([named.get(t, t) for t in canvas], pinned)


def test_target_canvas_refuses_an_overflowing_middle(tok):
    sp = lay.specials_from(tok)
    message = "middle of 3 tokens + 1 pinned does not fit canvas 4"
    with pytest.raises(lay.TooShort, match="^" + re.escape(message) + "$"):
        lay.target_canvas(sp, [10, 11, 12], [5], 4)


def _words(s: str) -> int:
    return len(s.split()) + s.count("\n")


@pytest.mark.parametrize(
    "text,cursor,end,k,expected",
    [
        ("a b\nc d\ne f\n", 0, 4, 1, "a b\n"),  # the window's suffix already holds more than k
        ("a b\nc d\ne f\n", 0, 4, 3, "a b\nc d\n"),  # grown by whole lines past k
        ("a b\nc d\ne f\n", 0, 4, 5, "a b\nc d\n"),
        ("a b\nc d\ne f\n", 0, 4, 6, "a b\nc d\ne f\n"),
        ("a b\nc d\ne f\n", 0, 4, 9, "a b\nc d\ne f\n"),  # the rest of the document is all there is
        ("a b\nc d\ne f", 2, 4, 5, "b\nc d\ne f"),  # no final line break: up to the end
        ("a b\nc d\ne f\n", 2, 2, 0, "b\n"),  # an empty window suffix grows by a line
    ],
)
def test_tail_text_table(text, cursor, end, k, expected):
    assert lay.tail_text(_words, text, cursor, end, k) == expected


def test_cursor_prompt_pins_k_suffix_tokens_past_a_window_snapped_short(tok):
    sp, k = lay.specials_from(tok), 6
    doc = "a b\n" * 23 + "x\n" + "a b\n" * 20
    at = doc.index("x") + 1
    parts = lay.PromptParts("f", "", "")
    got = lay.cursor_prompt(tok, sp, lay.PromptFormat.FIM, lay.Layout.B, doc, at, 40, k, parts)
    assert got.window.suffix == "\n"  # the lines tail_text_budget allowed were snapped off
    assert got.tail == tok.encode(doc[at:])[:k] and len(got.tail) == k
    assert got.tail_text == "\n" + "a b\n" * 2


def test_fill_prompt_may_be_all_header_and_snippets(tok):
    sp = lay.specials_from(tok)
    header = lay.fim_ids(sp, lay.Layout.B, lay.path_ids(tok, "f"), [], [])
    assert lay.fill_prompt(tok, sp, lay.Layout.B, "f", [], [], len(header), 0.3) == header
    # the snippet (11 tokens) takes all the room its budget allows and the document adds nothing
    ids = lay.fill_prompt(tok, sp, lay.Layout.A, "f", [], [], len(header) + 1 + 11, 0.3, (FOUR,), budget=44)
    assert ids[-3:] == [sp.fim_suffix, sp.fim_prefix, sp.fim_middle] and ids.count(sp.file) == 2


def test_cursor_prompt_passes_its_chat_template():
    spy, seen = _spy()
    sp, template = lay.specials_from(spy), lay.ChatTemplate(gap="<HOLE>")
    parts = lay.PromptParts("f.py", "", "")
    lay.cursor_prompt(spy, sp, lay.PromptFormat.GEMMA_CHAT, lay.Layout.A, "x\ny", 2, 40, 2, parts, template)
    assert "<HOLE>" in "".join(t for t in seen if isinstance(t, str)) and "<FILL_HERE>" not in str(seen)

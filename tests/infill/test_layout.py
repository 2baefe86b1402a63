"""Prompt and canvas assembly for layouts A/B/C, both prompt formats, and length hypotheses."""

import pytest
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

from engine import layout as lay
from engine.bpe import SPECIAL_TOKENS


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
    lay.build_prompt(spy, sp, lay.PromptFormat.GEMMA_CHAT, lay.Layout.C,
                     lay.PromptParts(path="f.py", prefix="PRE", suffix="SUF", language="python"))
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
    lay.build_prompt(spy, lay.specials_from(spy), lay.PromptFormat.FIM, lay.Layout.A,
                     lay.PromptParts(path="m.py", prefix="def f():\n    ", suffix="", instruction="add  hints"))
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

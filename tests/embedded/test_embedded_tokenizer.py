from pathlib import Path

import pytest
from dcopilot.engine.training.bpe import SPECIAL_TOKENS
from tokenizers import Tokenizer

SHIPPED = Path(__file__).resolve().parents[2] / "engine" / "embedded" / "tokenizer.json"

TRICKY = [
    "def f(x):\n\treturn  x\n",
    "    \n\n        pass   \r\n",
    "s = 'é😀 ünïcödé'  # comment with trailing spaces   ",
    "",
    " ",
    "\n\n\n",
    "x<|fim_prefix|>y",  # special-token text inside code must survive a round trip too
]


def _roundtrip(tok: Tokenizer, text: str) -> str:
    return tok.decode(tok.encode(text, add_special_tokens=False).ids, skip_special_tokens=False)


def test_special_token_ids_are_fixed(small_tok):
    for i, name in enumerate(SPECIAL_TOKENS):
        assert small_tok.token_to_id(name) == i
    assert [SPECIAL_TOKENS[i] for i in range(5)] == ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]


@pytest.mark.parametrize("text", TRICKY)
def test_small_bpe_roundtrip(small_tok, text):
    assert _roundtrip(small_tok, text) == text


def test_small_bpe_roundtrip_corpus_files(small_tok, small_texts):
    for path in sorted(small_texts)[:10]:
        assert _roundtrip(small_tok, small_texts[path]) == small_texts[path], path


def test_indentation_runs_become_few_tokens(small_tok):
    # byte-level BPE with whitespace-run splitting: a newline plus indentation is one or two pieces, not eight
    ids = small_tok.encode("\n        return x", add_special_tokens=False).ids
    assert len(ids) <= 4


def test_shipped_tokenizer_roundtrip_and_specials():
    tok = Tokenizer.from_file(str(SHIPPED))
    for i, name in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(name) == i
    for text in TRICKY:
        assert _roundtrip(tok, text) == text
    assert 4000 <= tok.get_vocab_size() <= 16384


@pytest.fixture(scope="module")
def shipped():
    from dcopilot.engine.runtime.tokenizer import Tokenizer as Wrapped

    return Wrapped.from_dir(SHIPPED.parent)


@pytest.mark.parametrize(
    "text",
    ["x = '<|fim_prefix|>'", "<eos><bos><pad>", "s = '<|fim_middle|><|file|>x'  # <mask>", "<|fim_suffix|"],
)
def test_special_token_text_in_user_code_is_plain_text(shipped, text):
    ids = shipped.encode(text)
    assert not set(ids) & set(range(len(SPECIAL_TOKENS)))
    assert shipped.decode(ids) == text


def test_encode_markup_still_maps_special_token_text(shipped):
    assert shipped.encode_markup("<|fim_prefix|>") == [shipped.special_id("<|fim_prefix|>")]


def test_fim_prompt_holds_only_its_own_markers(shipped):
    from dcopilot.engine.tasks import layout as lay

    sp = lay.specials_from(shipped)
    parts = lay.PromptParts(path="m.py", prefix="a = '<|fim_middle|>'\nb = '<eos>'\n", suffix="<|fim_prefix|>\n")
    ids = lay.build_prompt(shipped, sp, lay.PromptFormat.FIM, lay.Layout.A, parts)
    assert ids.count(sp.fim_middle) == 1 and ids[-1] == sp.fim_middle
    assert ids.count(sp.fim_prefix) == 1 and ids.count(sp.fim_suffix) == 1
    assert sp.eos not in ids

"""Corpus v2's tokenizer study on a small corpus written here: trained BPEs keep the shipped special-token ids,
bytes per token is measured per language, and the chosen tokenizer lands beside the corpus."""

import hashlib
import json

from dcopilot.engine.training import corpus_tokenizer, corpus_v2
from dcopilot.engine.training.bpe import SPECIAL_TOKENS
from tokenizers import Tokenizer

SNIPPETS = {
    "python": "def total_{i}(items):\n    result = 0\n    for item in items:\n        result += item * {i}\n"
    "    return result\n\n",
    "go": "func Total{i}(items []int) int {{\n\tresult := 0\n\tfor _, item := range items {{\n"
    "\t\tresult += item * {i}\n\t}}\n\treturn result\n}}\n\n",
    "lua": "local function total_{i}(items)\n  local result = 0\n  for _, item in ipairs(items) do\n"
    "    result = result + item * {i}\n  end\n  return result\nend\n\n",
}


def _corpus(root):
    entries = []
    for lang, snippet in SNIPPETS.items():
        for k in range(6):
            # lua has no validation package: the study measures it on train files its BPE sample left out
            split = "validation" if k == 0 and lang != "lua" else "train"
            text = "".join(snippet.format(i=i) for i in range(k * 20, k * 20 + 20))
            rel = f"{split}/pypi/pkg{lang}{k}/m{k}.{lang}"
            (root / "files" / rel).parent.mkdir(parents=True, exist_ok=True)
            data = text.encode()
            (root / "files" / rel).write_bytes(data)
            sha = hashlib.sha256(data).hexdigest()
            entries.append(
                corpus_v2.ManifestEntry(f"pkg{lang}{k}", "pypi", "1", "MIT", lang, rel, f"m{k}", sha, len(data), split)
            )
    corpus_v2.write_manifest(root / corpus_v2.MANIFEST_NAME, entries)


def test_study_trains_measures_and_writes_beside_the_corpus(tmp_path):
    _corpus(tmp_path)
    # sample 3 KB per language: lua keeps unseen train files to be measured on
    report = corpus_tokenizer.study(tmp_path, vocab_sizes=(300, 400), sample_mb=0.003, measure_mb=0.004)
    table = report["bytes_per_token"]
    assert set(table) == {"shipped 8192 (CPython only)", "v2 300", "v2 400"}
    assert all(set(row) == {"python", "go", "lua"} for row in table.values())
    assert all(v > 1.0 for row in table.values() for v in row.values())
    assert report["also_measured_on_train_files_outside_the_sample"] == ["lua"]
    # a larger vocabulary never compresses worse on text like its training sample
    assert report["mean_bytes_per_token"]["v2 400"] >= report["mean_bytes_per_token"]["v2 300"]
    assert report["chosen_vocab"] in (300, 400)
    for name in ("tokenizer-300.json", "tokenizer-400.json", "tokenizer.json", "tokenizer_report.json"):
        assert (tmp_path / name).exists()
    chosen = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert [chosen.token_to_id(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    text = "for _, item := range items {\n\tresult += item\n}\n"
    assert chosen.decode(chosen.encode(text).ids) == text
    assert json.loads((tmp_path / "tokenizer_report.json").read_text())["chosen_vocab"] == report["chosen_vocab"]
    assert "| v2 300 |" in corpus_tokenizer.format_table(report)

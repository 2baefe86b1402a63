"""Promotion: a candidate replaces the shipped checkpoint only when its held-out loss is lower; the model card gets
one appended row per promotion; a candidate with another tokenizer is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from dcopilot.engine.runtime.model import DiffusionGemma, init_weights
from dcopilot.engine.tasks.layout import fim_specials
from dcopilot.engine.training.bpe import train_bpe
from dcopilot.engine.training.promote import CARD_HEADER, CARD_SECTION, MODEL_FILES, PromotionError, promote
from dcopilot.engine.training.train import TrainConfig, default_generation, train, write_checkpoint
from tiny_checkpoint import tiny_shape

CARD = f"# card\n\nintro\n\n{CARD_SECTION}\n\ntext\n\n{CARD_HEADER}\n| old row |\n\n## Later section\n"
FEW = (2, 1)  # held-out batches (diffusion, AR): enough for a tiny model that trained against one that did not


@pytest.fixture(scope="module")
def setup(tmp_path_factory, manifest, small_tok, small_texts):
    d = tmp_path_factory.mktemp("promote")
    held = [f for f in manifest["files"] if f["split"] == "heldout"][:3]
    (d / "manifest.json").write_text(json.dumps(dict(manifest, files=held)))
    ids = fim_specials(small_tok)
    shape = tiny_shape(small_tok.get_vocab_size())
    untrained = DiffusionGemma(shape.text_config(ids))
    init_weights(untrained, generator=torch.Generator().manual_seed(0))
    gen = default_generation(ids, small_tok.token_to_id("<mask>"))
    write_checkpoint(d / "shipped", untrained, small_tok, TrainConfig(), {}, gen)
    (d / "shipped" / "MODEL_CARD.md").write_text(CARD)
    cfg = TrainConfig(steps=20, batch_size=8, prompt_lens=(48,), canvas_lens=(16,), ar_fraction=0.2, lr=1e-2)
    cfg = TrainConfig(**{**cfg.__dict__, "warmup_steps": 3, "ckpt_minutes": 1e9})
    train(
        cfg, shape, small_texts, dict(list(small_texts.items())[:3]), small_tok, d / "run", None, {}, log=lambda s: None
    )
    return d


def test_better_candidate_is_promoted_and_recorded(setup, tmp_path):
    import shutil

    shipped = tmp_path / "shipped"
    shutil.copytree(setup / "shipped", shipped)
    (shipped / "score_fit.json").write_text('{"the old model": "fit"}')
    candidate = setup / "run" / "checkpoint"
    d = promote(candidate, shipped, [setup / "manifest.json"], run_dir=tmp_path, batches=FEW)
    assert d["promoted"], d
    assert not (shipped / "score_fit.json").exists()  # the old model's fit is not the new one's: gone until refit
    scores = d["scores"]["stdlib"]
    assert scores["candidate"]["val_diff_t0.5"] < scores["shipped"]["val_diff_t0.5"]
    for name in MODEL_FILES:
        assert (shipped / name).read_bytes() == (candidate / name).read_bytes(), name
    card = (shipped / "MODEL_CARD.md").read_text()
    lines = card.splitlines()
    assert card.count(CARD_SECTION) == 1 and lines[-1] == "## Later section"
    row = lines[lines.index("| old row |") + 1]  # appended after the table's last row, before the next section
    assert str(candidate) in row and f"stdlib {scores['shipped']['val_diff_t0.5']:.4f}" in row
    # the same candidate again is not better than itself: nothing changes, the card keeps one row
    again = promote(candidate, shipped, [setup / "manifest.json"], run_dir=tmp_path, batches=FEW)
    assert not again["promoted"] and (shipped / "MODEL_CARD.md").read_text() == card
    log = [json.loads(x) for x in (tmp_path / "promotions.jsonl").read_text().splitlines()]
    assert [x["promoted"] for x in log] == [True, False]


def test_worse_candidate_and_dry_run_change_nothing(setup, tmp_path):
    import shutil

    shipped = tmp_path / "shipped"
    shutil.copytree(setup / "run" / "checkpoint", shipped)
    before = {n: (shipped / n).read_bytes() for n in MODEL_FILES}
    worse = promote(setup / "shipped", shipped, [setup / "manifest.json"], batches=FEW)
    assert not worse["promoted"] and not worse["better"]
    dry = promote(setup / "run" / "checkpoint", setup / "shipped", [setup / "manifest.json"], dry_run=True)
    assert dry["better"] and not dry["promoted"]  # it would be promoted; the dry run only says so
    assert {n: (shipped / n).read_bytes() for n in MODEL_FILES} == before
    assert not (shipped / "MODEL_CARD.md").exists()


def test_other_tokenizer_or_missing_files_refused(setup, tmp_path, small_texts):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(setup / "shipped", other)
    train_bpe(list(small_texts.values())[:5], vocab_size=300).save(str(other / "tokenizer.json"))
    with pytest.raises(PromotionError, match="tokenizer differs"):
        promote(other, setup / "shipped", [setup / "manifest.json"], batches=FEW)
    (other / "model.safetensors").unlink()
    with pytest.raises(PromotionError, match=r"missing model\.safetensors"):
        promote(other, setup / "shipped", [setup / "manifest.json"], batches=FEW)


def test_every_corpus_must_improve(setup, tmp_path, v2_root):
    """Judged on two corpora (the v1 manifest and a corpus v2 root), the trained candidate wins on both and is
    promoted with a score per corpus; against itself it wins on neither."""
    import shutil

    shipped = tmp_path / "shipped"
    shutil.copytree(setup / "shipped", shipped)
    candidate = setup / "run" / "checkpoint"
    corpora = [setup / "manifest.json", v2_root]
    d = promote(candidate, shipped, corpora, batches=FEW)
    assert d["promoted"] and set(d["scores"]) == {"stdlib", "v2"}, d
    assert all(s["candidate"]["val_diff_t0.5"] < s["shipped"]["val_diff_t0.5"] for s in d["scores"].values())
    row = (shipped / "MODEL_CARD.md").read_text().splitlines()[-3]
    assert "stdlib " in row and "; v2 " in row, row
    # a margin no candidate can meet on the v2 corpus alone keeps the shipped model
    gap = d["scores"]["v2"]["shipped"]["val_diff_t0.5"] - d["scores"]["v2"]["candidate"]["val_diff_t0.5"]
    shutil.copytree(setup / "shipped", tmp_path / "again")
    assert not promote(candidate, tmp_path / "again", corpora, margin=gap + 1e-3, batches=FEW)["promoted"]
    with pytest.raises(PromotionError, match="held-out corpus"):
        promote(candidate, shipped, [tmp_path / "nowhere"], batches=FEW)


def test_a_recorded_corpus_is_scored_but_does_not_judge(setup, tmp_path, v2_root):
    """Judged on the v2 corpus only, with the v1 manifest recorded: a margin the v1 scores could never meet does
    not block the promotion, and both corpora's scores are in the decision and the card row."""
    import shutil

    shipped = tmp_path / "shipped"
    shutil.copytree(setup / "shipped", shipped)
    candidate = setup / "run" / "checkpoint"
    d = promote(candidate, shipped, [v2_root], recorded=(setup / "manifest.json",), batches=FEW)
    assert d["promoted"] and d["scores"]["v2"]["judged"] and not d["scores"]["stdlib"]["judged"], d
    row = (shipped / "MODEL_CARD.md").read_text().splitlines()[-3]
    assert "v2 " in row and "stdlib (not judged) " in row, row
    # the same corpora with the roles swapped judge on v1 alone
    shutil.copytree(setup / "shipped", tmp_path / "swapped")
    swapped = promote(candidate, tmp_path / "swapped", [setup / "manifest.json"], recorded=(v2_root,), batches=FEW)
    assert swapped["scores"]["stdlib"]["judged"] and not swapped["scores"]["v2"]["judged"]


def test_default_corpora_follow_what_the_candidate_was_trained_on(tmp_path):
    from dcopilot.engine.training.promote import corpora_for

    def candidate(corpus: dict):
        d = tmp_path / str(len(list(tmp_path.iterdir())))
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"dcopilot": {"training": {"corpus": corpus}}}))
        return d

    shipped = tmp_path / "shipped"
    v2 = candidate({"kind": "corpus-v2", "root": "/data/v2"})
    assert corpora_for(v2, shipped) == ([Path("/data/v2")], [shipped / "corpus_manifest.json"])
    v1 = candidate({"kind": "manifest-v1", "manifest": "m.json"})
    assert corpora_for(v1, shipped) == ([shipped / "corpus_manifest.json"], [])
    assert corpora_for(candidate({}), shipped) == ([shipped / "corpus_manifest.json"], [])  # older checkpoints


def test_a_promoted_candidate_brings_its_own_score_fit(setup, tmp_path):
    import shutil

    shipped, candidate = tmp_path / "shipped", tmp_path / "candidate"
    shutil.copytree(setup / "shipped", shipped)
    shutil.copytree(setup / "run" / "checkpoint", candidate)
    (shipped / "score_fit.json").write_text('{"the old model": "fit"}')
    (candidate / "score_fit.json").write_text('{"the new model": "fit"}')
    assert promote(candidate, shipped, [setup / "manifest.json"], batches=FEW)["promoted"]
    assert (shipped / "score_fit.json").read_text() == '{"the new model": "fit"}'

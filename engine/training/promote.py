"""Promotion: a candidate checkpoint replaces the shipped embedded model only when it scores better held out.

    python -m dcopilot.engine.training.promote --candidate runs/background/checkpoint [--shipped engine/embedded]

The benchmark is the held-out split (whole packages never trained on) of the corpus the candidate was trained on:
for a corpus v2 run its `validation` packages, third-party code in nine languages like the code users write;
otherwise the `heldout` files of the shipped model's corpus_manifest.json (the standard library). Each is scored
as the trainer validates: absorbing-noise diffusion cross-entropy at t = 0.5 on fixed, seeded batches (lower is
better), with t = 1.0 and the AR loss reported beside it. A candidate is promoted only when it is better on every
judged corpus (`--corpus`, repeatable, to judge on others). For a corpus v2 candidate the standard library's
held-out split is scored too and recorded, not judged: a model that learns nine languages at this size forgets
some of the standard library's idiom, and the standard library is not what users type. The quality
benchmark's test split is never used here. Both checkpoints are read by the engine's loader, so they are compared
exactly as they would ship (bf16 weights). Per-token losses are only comparable under one tokenizer, so a
candidate with another tokenizer is refused (compare those with `bench/quality.py --split calibration`).

A promotion copies the candidate's model files over the shipped ones (the model card and other files stay; the
score fit is the candidate's, or none until `bench/calibrate_score.py --write` fits one) and appends one row to
the model card's "Promotions" table: date, run, the run's and the cumulative tokens and compute, the scores before
and after. Every decision, promoted or not, is also appended to RUN_DIR/promotions.jsonl.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from pathlib import Path

import torch
from dcopilot.engine.runtime.loader import load_model
from dcopilot.engine.tasks.layout import fim_specials
from dcopilot.engine.tasks.score_fit import FILE as SCORE_FIT
from dcopilot.engine.training.fim_data import AR_MIX, Batch, ExampleSampler
from dcopilot.engine.training.sources import CorpusSourceError, read_corpus
from dcopilot.engine.training.train import validate

MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
SCORE = "val_diff_t0.5"
CARD_SECTION = "## Promotions (append-only)"
CARD_HEADER = (
    "| date (UTC) | run | run tokens | run minutes (thread-min) | cumulative tokens | cumulative thread-min "
    f"| held-out {SCORE} before | after |\n|---|---|---|---|---|---|---|---|"
)


class PromotionError(RuntimeError):
    pass


def heldout_batches(tok, texts: dict[str, str], n_diff: int = 8, n_ar: int = 2) -> list[Batch]:
    """Fixed held-out batches (seeded): n_diff diffusion batches and n_ar AR batches of 16 x 160-token prompts."""
    diff = ExampleSampler(tok, texts, seed=1234)
    ar = ExampleSampler(tok, texts, seed=4321, mix=AR_MIX)
    return [diff.batch(16, 160, 48) for _ in range(n_diff)] + [ar.batch(16, 160, 48) for _ in range(n_ar)]


def load(model_dir: Path):
    """A checkpoint as it would ship (the engine's loader, bf16 weights), in float32 on the CPU for scoring."""
    return load_model(str(model_dir), device="cpu", dtype=torch.float32)


def score(model, batches: list[Batch]) -> dict[str, float]:
    assert model.tokenizer is not None
    ids = fim_specials(model.tokenizer)
    return validate(model, batches, ids, seed=0, noise_id=model.generation.noise_token_id)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def training_record(model_dir: Path) -> dict:
    return json.loads((model_dir / "config.json").read_text()).get("dcopilot", {}).get("training", {})


def card_row(candidate: Path, scores: dict[str, dict]) -> str:
    """scores: corpus label -> {"shipped": ..., "candidate": ..., "judged": ...}; a cell lists every corpus's score,
    a corpus that was only recorded marked "(not judged)"."""
    rec = training_record(candidate)
    cum = rec.get("cumulative", {})

    def cell(who: str) -> str:
        return "; ".join(
            f"{label}{'' if s['judged'] else ' (not judged)'} {s[who][SCORE]:.4f}" for label, s in scores.items()
        )

    return (
        f"| {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} | `{candidate}` | {rec.get('train_tokens', 0):,} "
        f"| {rec.get('train_minutes', 0)} ({rec.get('train_thread_minutes', '?')}) | {cum.get('tokens', 0):,} "
        f"| {cum.get('thread_minutes', '?')} | {cell('shipped')} | {cell('candidate')} |"
    )


def corpora_for(candidate: Path, shipped: Path) -> tuple[list[Path], list[Path]]:
    """(judged, recorded): the corpus v2 root the candidate was trained on, judged, with the shipped model's
    manifest recorded beside it; for any other candidate, the shipped model's manifest, judged."""
    manifest = shipped / "corpus_manifest.json"
    corpus = training_record(candidate).get("corpus", {})
    if corpus.get("kind") == "corpus-v2":
        return [Path(corpus["root"])], [manifest]
    return [manifest], []


def append_card(card: Path, row: str) -> None:
    """Add the row at the end of the Promotions table (creating the section at the end of the card if missing)."""
    text = card.read_text() if card.exists() else ""
    if CARD_SECTION not in text:
        text = text.rstrip("\n") + f"\n\n{CARD_SECTION}\n\n{CARD_HEADER}\n"
    lines = text.splitlines()
    at = lines.index(CARD_SECTION)
    while at < len(lines) and not lines[at].startswith("|"):  # to the table
        at += 1
    while at < len(lines) and lines[at].startswith("|"):  # past its last row
        at += 1
    lines.insert(at, row)
    card.write_text("\n".join(lines) + "\n")


def install(candidate: Path, shipped: Path) -> None:
    """Copy the model files in; each lands under a temporary name first, so a reader never sees half a file.
    The score fit goes with the weights it was fitted on: the candidate's when it has one, else none (the old
    model's would rank the new one on another scale; unfitted, it is served ungated until refit)."""
    for name in (*MODEL_FILES, SCORE_FIT) if (candidate / SCORE_FIT).is_file() else MODEL_FILES:
        tmp = shipped / (name + ".promote-tmp")
        shutil.copyfile(candidate / name, tmp)
        tmp.chmod(0o644)
        tmp.replace(shipped / name)
    if not (candidate / SCORE_FIT).is_file():
        (shipped / SCORE_FIT).unlink(missing_ok=True)


def promote(
    candidate: Path,
    shipped: Path,
    corpora: list[Path],
    recorded: tuple[Path, ...] = (),
    run_dir: Path | None = None,
    margin: float = 0.0,
    dry_run: bool = False,
    batches: tuple[int, int] = (8, 2),
) -> dict:
    """Score both on each corpus's held-out batches (diffusion, AR counts in `batches`) and install the candidate
    if it is better on every one of `corpora`; the `recorded` corpora are scored for the record only."""
    for d in (candidate, shipped):
        missing = [n for n in MODEL_FILES if not (d / n).is_file()]
        if missing:
            raise PromotionError(f"{d} is not a checkpoint (missing {', '.join(missing)})")
    if sha(candidate / "tokenizer.json") != sha(shipped / "tokenizer.json"):
        raise PromotionError(
            "the candidate's tokenizer differs from the shipped one: per-token losses are not comparable "
            "(compare with bench/quality.py --split calibration)"
        )
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(shipped / "tokenizer.json"))
    # each checkpoint is loaded once and scored on every corpus
    models = {"shipped": load(shipped), "candidate": load(candidate)}
    scores: dict[str, dict] = {}
    benchmarks = []
    for corpus, judged in [*((c, True) for c in corpora), *((c, False) for c in recorded)]:
        try:
            held = read_corpus(corpus, train=False)
        except (CorpusSourceError, OSError) as e:
            raise PromotionError(f"held-out corpus: {e}") from e
        label = "v2" if held.record["kind"] == "corpus-v2" else "stdlib"
        fixed = heldout_batches(tok, held.heldout, *batches)
        scores[label] = {who: score(m, fixed) for who, m in models.items()} | {"judged": judged}
        benchmarks.append(f"{held.record['heldout_split']} split of {corpus} ({len(held.heldout)} files)")
    promoted = all(s["candidate"][SCORE] < s["shipped"][SCORE] - margin for s in scores.values() if s["judged"])
    decision = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "candidate": str(candidate),
        "benchmark": f"{SCORE} on " + "; ".join(benchmarks),
        "scores": scores,
        "margin": margin,
        "better": promoted,  # every judged corpus improved by the margin (a dry run says so, changing nothing)
        "promoted": promoted and not dry_run,
    }
    if promoted and not dry_run:
        install(candidate, shipped)
        append_card(shipped / "MODEL_CARD.md", card_row(candidate, scores))
    if run_dir is not None:
        with (run_dir / "promotions.jsonl").open("a") as f:
            f.write(json.dumps(decision) + "\n")
    return decision


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--candidate", type=Path, required=True, help="a checkpoint folder (e.g. RUN_DIR/checkpoint)")
    ap.add_argument("--shipped", type=Path, default=repo / "engine" / "embedded")
    ap.add_argument(
        "--corpus",
        type=Path,
        action="append",
        default=None,
        help="a corpus manifest or v2 root whose held-out split judges (repeatable; default: the candidate's "
        "corpus v2, with the shipped model's manifest recorded beside it, else the shipped model's manifest)",
    )
    ap.add_argument("--run-dir", type=Path, default=None, help="append the decision to RUN_DIR/promotions.jsonl")
    ap.add_argument("--margin", type=float, default=0.0, help=f"required {SCORE} improvement (nats)")
    ap.add_argument("--dry-run", action="store_true", help="score and report, change nothing")
    args = ap.parse_args(argv)
    judged, recorded = (args.corpus, []) if args.corpus else corpora_for(args.candidate, args.shipped)
    try:
        d = promote(args.candidate, args.shipped, judged, tuple(recorded), args.run_dir, args.margin, args.dry_run)
    except PromotionError as e:
        ap.exit(1, f"promote: {e}\n")
    # better but not promoted: only a dry run leaves a better candidate out
    verdict = "promoted" if d["promoted"] else "would promote (dry run)" if d["better"] else "kept the shipped model"
    per = ", ".join(
        f"{k}{'' if s['judged'] else ' (not judged)'}: shipped {s['shipped'][SCORE]:.4f} "
        f"candidate {s['candidate'][SCORE]:.4f}"
        for k, s in d["scores"].items()
    )
    print(f"{verdict} ({SCORE}; {per})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

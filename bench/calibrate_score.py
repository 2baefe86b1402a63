"""Fit the candidate score (dcopilot.engine.tasks.calibrate) on the held-out calibration split.

    python bench/calibrate_score.py --out runs/calib              # run the model, dump every candidate, fit
    python bench/calibrate_score.py --out runs/calib --reuse      # refit from runs/calib/candidates.jsonl
    python bench/calibrate_score.py --out runs/calib --reuse --omit breaks,repairs  # fit without some features
    python bench/calibrate_score.py --out runs/calib --reuse --omit agreement --write  # ... and give it to the model

For each calibration case (never a test case) the engine runs as the server runs it (the case's package's other
files open beside it, their best windows as snippets, retrieval on, the gate open) and every candidate it ranks is
recorded with its evidence and its edit similarity to the truth. A logistic model of "useful" (ES >= 0.7) on the
evidence gives the checkpoint's score fit (`score_fit.json` beside its weights, which --write writes; the configured
model's, as `dcopilot serve` loads it); the script prints it with how the first candidate under the old and the new
fit compares (mean ES, useful and noise among shown, at an open gate), and
the new score's gate curve with the threshold bench/gate_curve.py's rule picks, for all languages and per language.
--omit leaves features out of the fit (weight 0), to measure what they add on the same dump.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ROOT / "bench" / "heldout"
for p in (str(ROOT), str(ROOT / "bench"), str(HELDOUT)):
    if p not in sys.path:
        sys.path.insert(0, p)

from metrics import NOISE_ES, USEFUL_ES, score  # noqa: E402

from bench.gate_curve import GRID, USEFUL_RATE, choose, curve, render  # noqa: E402


def cases_of(limit: int | None) -> list:
    import quality

    all_cases, _ = quality.load(HELDOUT / "cases.jsonl", HELDOUT / "sources.json.gz")
    return quality.select(all_cases, "calibration", [], list(quality.KINDS), limit)


def collect(args) -> list[dict]:
    import quality
    import torch
    from dcopilot.copilot.config import load_config
    from dcopilot.copilot.requests import infill_request, load_configured_model
    from dcopilot.engine.tasks.infill import run_infill
    from dcopilot.lsp import encoding as enc
    from dcopilot.lsp.documents import DocumentStore
    from dcopilot.lsp.server import relative_path
    from dcopilot.lsp.workspace import WorkspaceContext
    from systems import line_col, uri_of

    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config()
    model = load_configured_model(config)
    all_cases, sources = quality.load(HELDOUT / "cases.jsonl", HELDOUT / "sources.json.gz")
    cases = quality.select(all_cases, "calibration", [], list(quality.KINDS), args.limit)
    rows = []
    started = time.perf_counter()
    for i, c in enumerate(cases):
        doc, cursor = c.document(sources[c.file])
        store = DocumentStore()
        for f, text in quality.open_beside(c, all_cases, sources):
            store.open(uri_of(f), c.language, 1, text)
        store.open(uri_of(c.file), c.language, 1, doc)
        document = store.get(uri_of(c.file))
        assert document is not None
        snap = document.snapshot(*line_col(doc, cursor), enc.UTF32)
        path_of = lambda u: relative_path(u, ["/heldout"])  # noqa: E731
        req = infill_request(
            config,
            text=snap.text,
            cursor=snap.offset,
            language=c.language,
            path=path_of(snap.uri),
            max_candidates=64,
            snippets=WorkspaceContext().snippets(store, snap, path_of, config.completion.snippets),
        )
        result = run_infill(model, req)
        for cand in result.candidates:
            if cand.evidence is None:  # run_infill gives every candidate its evidence
                continue
            _, _, es = score(doc, cursor, c.target, cand.text, cand.end - cand.start)
            rows.append(
                {
                    "id": c.id,
                    "language": c.language,
                    "kind": c.kind,
                    "origin": cand.origin,
                    "text": cand.text,
                    "es": es,
                    "evidence": asdict(cand.evidence),
                }
            )
        if (i + 1) % 25 == 0:
            print(f"  {i + 1}/{len(cases)} cases, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return rows


def first_choice(rows: list[dict], weights, bias) -> dict[str, dict]:
    """case id -> its best-scored candidate under (weights, bias)."""
    from dcopilot.engine.tasks.calibrate import Evidence
    from dcopilot.engine.tasks.calibrate import score as calibrated

    best: dict[str, tuple[float, dict]] = {}
    for r in rows:
        s = calibrated(Evidence(**r["evidence"]), weights, bias)
        if r["id"] not in best or s > best[r["id"]][0]:
            best[r["id"]] = (s, {**r, "score": s})
    return {k: v[1] for k, v in best.items()}


def summary(chosen: dict[str, dict], cases: int) -> str:
    es = sum(r["es"] for r in chosen.values()) / cases
    shown = len(chosen)
    useful = sum(r["es"] >= USEFUL_ES for r in chosen.values())
    noise = sum(r["es"] < NOISE_ES for r in chosen.values())
    origins: dict[str, int] = {}
    for r in chosen.values():
        origins[r["origin"]] = origins.get(r["origin"], 0) + 1
    return (
        f"mean ES {es:.3f}, shown {shown}/{cases}, useful {useful} ({useful / max(shown, 1):.1%} of shown), "
        f"noise {noise} ({noise / max(shown, 1):.1%}), first candidates by origin {origins}"
    )


def gate_report(chosen: dict[str, dict], cases: list, useful_rate: float, min_shown: int) -> str:
    """The gate curve of the first candidates (a case without one is never shown), the threshold the rule picks
    on all languages, and each language's useful, noise and coverage at that threshold."""
    records = [
        {
            "language": c.language,
            "shown": c.id in chosen,
            "score": chosen.get(c.id, {}).get("score"),
            "es": chosen.get(c.id, {}).get("es", 0.0),
        }
        for c in cases
    ]
    points = curve(records, GRID)
    pick = choose(points, useful_rate, min_shown)
    lines = [render(points, pick), "", f"at min_score {pick.threshold:g}:"]
    for lang in ["all", *sorted({c.language for c in cases})]:
        (p,) = curve([r for r in records if lang in ("all", r["language"])], [pick.threshold])
        lines.append(
            f"  {lang:<10} coverage {p.coverage:.1%} ({p.shown}/{p.cases}), useful {p.useful} ({p.useful_rate:.1%} "
            f"of shown), noise {p.noise} ({p.noise_rate:.1%} of shown)"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--reuse", action="store_true", help="refit from OUT/candidates.jsonl without running the model")
    ap.add_argument("--limit", type=int, help="at most N cases per language and kind")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--l2", type=float, default=1e-3)
    ap.add_argument("--omit", default="", help="comma-separated features to leave out of the fit (weight 0)")
    ap.add_argument(
        "--useful-rate", type=float, default=USEFUL_RATE, help="the gate rule's useful share of shown (gate_curve.py)"
    )
    ap.add_argument("--min-shown", type=int, default=20, help="the gate rule's least shown count (gate_curve.py)")
    ap.add_argument("--write", action="store_true", help="write the fit beside the configured model's weights")
    args = ap.parse_args()
    from dcopilot.copilot.config import load_config
    from dcopilot.engine.runtime.loader import resolve_model_path
    from dcopilot.engine.tasks import calibrate, score_fit

    checkpoint = resolve_model_path(load_config().model.path or None)

    dump = args.out / "candidates.jsonl"
    if args.reuse:
        rows = [json.loads(line) for line in dump.read_text().splitlines()]
    else:
        rows = collect(args)
        args.out.mkdir(parents=True, exist_ok=True)
        dump.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        (args.out / "cases.json").write_text(json.dumps(len(cases_of(args.limit))))
    cases = json.loads((args.out / "cases.json").read_text())
    omit = {f for f in args.omit.split(",") if f}
    if omit - set(calibrate.FEATURES):
        ap.error(f"--omit: no feature {sorted(omit - set(calibrate.FEATURES))}; features: {calibrate.FEATURES}")
    used = [i for i, f in enumerate(calibrate.FEATURES) if f not in omit]
    data = [
        ([calibrate.features(calibrate.Evidence(**r["evidence"]))[i] for i in used], r["es"] >= USEFUL_ES) for r in rows
    ]
    fitted, bias = calibrate.fit(data, l2=args.l2)
    weights = [0.0] * len(calibrate.FEATURES)
    for i, w in zip(used, fitted, strict=True):
        weights[i] = w
    print(f"{len(rows)} candidates of {cases} calibration cases (a case with no candidate shows nothing)")
    current = score_fit.for_checkpoint(checkpoint)
    label = "current fit   :" if current.own else "embedded fit  :"
    print(label, summary(first_choice(rows, current.fit.weights, current.fit.bias), cases))
    chosen = first_choice(rows, weights, bias)
    print("fitted        :", summary(chosen, cases))
    print(f"\ngate curve of the fitted score (first candidates; omitted: {sorted(omit) or 'none'}):")
    print(gate_report(chosen, cases_of(args.limit), args.useful_rate, args.min_shown))
    fit = calibrate.ScoreFit(tuple(round(w, 3) for w in weights), round(bias, 3))
    print("\n" + json.dumps(fit.to_json()))
    if args.write:
        how = f"bench/calibrate_score.py on the calibration split: {len(rows)} candidates of {cases} cases"
        written = score_fit.write(checkpoint, fit, how + (f", omitted: {', '.join(sorted(omit))}" if omit else ""))
        print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

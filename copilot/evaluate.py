"""`dcopilot eval --cases FILE.jsonl`: infill quality and latency of the configured model and layout.

Each case is one JSON object per line: {"prefix", "suffix", "target", "language"?, "path"?, "kind"?}. The top
candidate is applied at the cursor (with its replace range) and the resulting document compared with
prefix + target + suffix:
- exact match: the two documents are equal after removing trailing whitespace at line ends;
- edit similarity: 1 - Levenshtein / max length, between what the candidate put in the target's place and the
  target (0 when no candidate survived post-processing, 1 for an empty target left empty).
Steps are denoiser calls per request; latency is wall-clock per request on this machine (model already loaded).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
from dcopilot.copilot.config import Config
from dcopilot.copilot.requests import infill_request, load_configured_model


class Case(msgspec.Struct, forbid_unknown_fields=False):
    prefix: str
    suffix: str
    target: str
    language: str = ""
    path: str = ""
    kind: str = ""


class CaseError(ValueError):
    pass


def read_cases(path: Path, limit: int | None = None) -> list[Case]:
    cases: list[Case] = []
    decoder = msgspec.json.Decoder(Case)
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                cases.append(decoder.decode(line))
            except msgspec.DecodeError as e:
                raise CaseError(f"{path}:{n}: {e}") from None
            if limit and len(cases) >= limit:
                break
    if not cases:
        raise CaseError(f"{path}: no cases")
    return cases


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def edit_similarity(pred: str, truth: str) -> float:
    longest = max(len(pred), len(truth))
    return 1.0 if longest == 0 else 1.0 - levenshtein(pred, truth) / longest


def _strip_line_ends(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).rstrip()


def score_case(case: Case, text: str | None, replace: int) -> tuple[bool, float]:
    """(exact match, edit similarity) of inserting `text` at the cursor, replacing `replace` suffix characters."""
    if text is None:
        return False, edit_similarity("", case.target)
    produced = case.prefix + text + case.suffix[replace:]
    expected = case.prefix + case.target + case.suffix
    exact = _strip_line_ends(produced) == _strip_line_ends(expected)
    # What now stands where the target (plus the replaced characters) stood.
    return exact, edit_similarity(text, case.target + case.suffix[:replace])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    i = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[i]


@dataclass
class EvalSummary:
    cases: int
    exact_match: float
    edit_similarity: float
    mean_steps: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    no_candidate: int
    by_kind: dict


def evaluate(
    model, cases: list[Case], layout: str, hypotheses: int, config: Config | None = None, progress=None
) -> EvalSummary:
    from dcopilot.engine.tasks.infill import run_infill

    config = config if config is not None else Config()
    exact, sims, steps, lat = [], [], [], []
    kinds: dict[str, list[tuple[bool, float]]] = {}
    empty = 0
    for i, case in enumerate(cases):
        req = infill_request(
            config,
            text=case.prefix + case.suffix,
            cursor=len(case.prefix),
            language=case.language,
            path=case.path,
            layout=layout,
            hypotheses=hypotheses,
            seed=config.completion.seed + i,
            max_candidates=1,
        )
        t0 = time.perf_counter()
        res = run_infill(model, req)
        lat.append((time.perf_counter() - t0) * 1000)
        top = res.candidates[0] if res.candidates else None
        if top is None:
            empty += 1
        em, es = score_case(case, top.text if top else None, (top.end - top.start) if top else 0)
        exact.append(em)
        sims.append(es)
        steps.append(res.steps)
        kinds.setdefault(case.kind or "all", []).append((em, es))
        if progress:
            progress(i + 1, len(cases))
    n = len(cases)
    return EvalSummary(
        cases=n,
        exact_match=sum(exact) / n,
        edit_similarity=sum(sims) / n,
        mean_steps=sum(steps) / n,
        p50_ms=percentile(lat, 50),
        p90_ms=percentile(lat, 90),
        p95_ms=percentile(lat, 95),
        no_candidate=empty,
        by_kind={
            k: {"n": len(v), "em": sum(e for e, _ in v) / len(v), "es": sum(s for _, s in v) / len(v)}
            for k, v in sorted(kinds.items())
        },
    )


def eval_main(config, cases_path, layout: str, hypotheses: int, limit: int | None) -> int:
    import torch

    try:
        cases = read_cases(Path(cases_path), limit)
    except (OSError, CaseError) as e:
        print(f"dcopilot eval: {e}", file=sys.stderr)
        return 2
    try:
        model = load_configured_model(config)
    except Exception as e:  # loader errors are one-line messages
        print(f"dcopilot eval: cannot load the model: {e}", file=sys.stderr)
        return 1
    device = next(model.parameters()).device
    summary = evaluate(model, cases, layout, hypotheses, config)
    hw = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else (f"{platform.machine()}, {os.cpu_count()} cores visible, {torch.get_num_threads()} torch threads")
    )
    print(f"model        {model.path}")
    print(
        f"settings     layout {layout}, hypotheses {hypotheses}, max_tokens {config.completion.max_tokens}, "
        f"context {config.completion.context_tokens}, multiline {config.completion.multiline}, "
        f"max steps {model.generation.max_denoising_steps}"
    )
    print(f"hardware     {device.type}: {hw}, dtype {next(model.parameters()).dtype}")
    print(f"cases        {summary.cases} from {cases_path}")
    print(f"exact match  {summary.exact_match:.3f}")
    print(f"edit sim     {summary.edit_similarity:.3f}")
    print(f"mean steps   {summary.mean_steps:.2f}")
    print(f"latency ms   p50 {summary.p50_ms:.1f}  p90 {summary.p90_ms:.1f}  p95 {summary.p95_ms:.1f}")
    print(f"no candidate {summary.no_candidate}")
    for kind, row in summary.by_kind.items():
        print(f"  {kind:<10} n={row['n']:<4} em {row['em']:.3f}  es {row['es']:.3f}")
    print(json.dumps({"layout": layout, "hypotheses": hypotheses, **summary.__dict__}))
    return 0

"""`dcopilot doctor`: one table of what this machine and these settings can do; exit 0 only if the model can serve.

Every check catches its own failure and becomes a row, so one broken part never hides the others.
"""

from __future__ import annotations

import contextlib
import importlib.util
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from dcopilot.copilot.config import Config, ConfigError
from dcopilot.copilot.models_cmd import human_bytes

GIB = 1024**3
BYTES_PER_PARAM = {"float32": 4, "bfloat16": 2, "float16": 2, "nf4": 0.5, "int8": 1}


@dataclass
class Row:
    check: str
    result: str
    status: str = "ok"  # ok | FAIL | warn | "" (information only)


def doctor_main(config: Config, config_file: Path, config_error: ConfigError | None = None) -> int:
    rows = run_checks(config, config_file, config_error)
    print(format_table(rows))
    failures = [row for row in rows if row.status == "FAIL"]
    if failures:
        print(f"\ndcopilot cannot serve yet: {failures[0].check}: {failures[0].result.splitlines()[0]}")
        return 1
    print(f"\ndcopilot can serve {config.model.path or 'the embedded model'}.")
    return 0


def run_checks(config: Config, config_file: Path, config_error: ConfigError | None) -> list[Row]:
    rows = [Row("python", f"{platform.python_version()} ({sys.executable})")]
    rows.append(_config_row(config_file, config_error))
    torch = _import_torch(rows)
    if torch is None:
        return rows
    device = _device_rows(torch, config, rows)
    rows.append(_bitsandbytes_row(config))
    _model_rows(torch, config, device, rows)
    return rows


def format_table(rows: list[Row]) -> str:
    width = max(len(row.check) for row in rows) + 2
    lines = []
    for row in rows:
        first, *rest = row.result.splitlines() or [""]
        lines.append(f"{row.status:<5} {row.check:<{width}}{first}")
        lines.extend(" " * (6 + width) + more for more in rest)
    return "\n".join(lines)


def _config_row(config_file: Path, error: ConfigError | None) -> Row:
    if error is not None:
        return Row("config", str(error), "FAIL")
    if not config_file.exists():
        return Row("config", f"{config_file} (not present: defaults, env and flags)")
    return Row("config", f"{config_file} (valid)")


def _import_torch(rows: list[Row]):
    try:
        import torch
    except ImportError as exc:
        rows.append(Row("torch", f"not importable ({exc}); see README: pip install torch==2.13.0", "FAIL"))
        return None
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU build"
    rows.append(Row("torch", f"{torch.__version__}, {build}, {torch.get_num_threads()} CPU threads"))
    return torch


def _device_rows(torch, config: Config, rows: list[Row]):
    """CUDA devices with free/total memory, then the configured device resolved; None if it cannot be used."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        why = "CPU build of torch" if not torch.version.cuda else "no device visible"
        rows.append(Row("cuda devices", f"none ({why})", ""))
    for index in range(count):
        free, total = torch.cuda.mem_get_info(index)
        name = torch.cuda.get_device_name(index)
        rows.append(Row(f"cuda:{index}", f"{name}, {free / GIB:.1f} GiB free of {total / GIB:.1f} GiB", ""))

    from dcopilot.engine.runtime.loader import device_problem, pick_device

    wanted = config.model.device
    device = pick_device(wanted)
    problem = device_problem(device)
    if problem:
        rows.append(Row("device", f'{problem} (set model.device = "cpu" or "auto")', "FAIL"))
        return None
    rows.append(Row("device", f"{wanted} -> {device}"))
    return device


def _bitsandbytes_row(config: Config) -> Row:
    """Imported only when model.quantize needs it: the import alone costs seconds."""
    if config.model.quantize == "none":
        if importlib.util.find_spec("bitsandbytes") is None:
            return Row("bitsandbytes", "not installed (needed only for model.quantize)", "")
        return Row(
            "bitsandbytes", f'{metadata.version("bitsandbytes")} installed, not needed (model.quantize = "none")', ""
        )
    try:
        with contextlib.redirect_stdout(sys.stderr):  # some versions print banners at import
            import bitsandbytes
    except Exception as exc:  # a broken native library raises more than ImportError
        return Row(
            "bitsandbytes", f"not importable ({exc}); model.quantize needs: pip install 'dcopilot[quant]'", "FAIL"
        )
    return Row("bitsandbytes", f"{bitsandbytes.__version__} imports; used for {config.model.quantize}")


def _model_rows(torch, config: Config, device, rows: list[Row]) -> None:
    spec = config.model.path
    try:
        from dcopilot.engine.runtime.loader import inspect_checkpoint, resolve_model_path
    except ImportError as exc:
        rows.append(Row("model", f"{spec or 'embedded'}: the engine is not available yet ({exc})", "FAIL"))
        return
    try:
        path = resolve_model_path(spec)
    except Exception as exc:
        hint = ""
        if not spec:
            hint = "\nthe embedded model is not installed yet: pass --model DIR or set model.path (see README)"
        rows.append(Row("model", f"{exc}{hint}", "FAIL"))  # the loader's message names the path
        return
    rows.append(Row("model", f"{spec or 'embedded'} -> {path}"))
    info = inspect_checkpoint(path)
    lines = []
    if info.architecture:
        size = f"{info.num_parameters / 1e6:,.1f}M parameters" if info.num_parameters else "size unknown"
        files = f"{len(info.weight_files)} safetensors file{'s' * (len(info.weight_files) != 1)}"
        lines.append(f"{info.architecture}, {size}, {info.dtype or '?'}, {files}")
    tokenizer_problem = _tokenizer_problem(path)
    problems = [p for p in info.problems if p != tokenizer_problem]  # the tokenizer gets its own row
    lines += problems[:5] + ([f"... and {len(problems) - 5} more"] if len(problems) > 5 else [])
    rows.append(Row("checkpoint", "\n".join(lines), "FAIL" if problems else "ok"))
    if tokenizer_problem:
        rows.append(Row("tokenizer", tokenizer_problem, "FAIL"))
    else:
        rows.append(Row("tokenizer", "loads"))
    rows.append(_score_fit_row(path))
    if device is not None and info.num_parameters:
        rows.append(_memory_row(torch, config, device, info.num_parameters))


def _score_fit_row(path: Path) -> Row:
    """Whether completions are gated by a score fitted on this checkpoint (dcopilot.engine.tasks.score_fit)."""
    from dcopilot.copilot.requests import unfitted
    from dcopilot.engine.tasks import score_fit

    try:
        fitted = score_fit.for_checkpoint(path)
    except score_fit.ScoreFitError as exc:
        return Row("score fit", str(exc), "FAIL")
    if fitted.own:
        return Row("score fit", f"{path / score_fit.FILE}: completion.min_score gates this model's completions")
    return Row("score fit", unfitted(path), "warn")


def _tokenizer_problem(path: Path) -> str | None:
    from dcopilot.engine.runtime.tokenizer import Tokenizer

    try:
        tokenizer = Tokenizer.from_dir(path)
    except Exception as exc:  # TokenizerError, or anything a malformed file provokes
        return str(exc)
    if tokenizer.token_to_id("<mask>") is None and tokenizer.token_to_id("<eos>") is None:
        return f"{path / 'tokenizer.json'}: loads, but has neither <mask> nor <eos>: not a Gemma-family vocabulary"
    return None


def _memory_row(torch, config: Config, device, num_parameters: int) -> Row:
    """Weights alone must fit: a rough floor, since the KV cache and activations need more."""
    dtype = config.model.dtype
    if dtype == "auto":
        dtype = "bfloat16" if device.type == "cuda" else "float32"
    key = config.model.quantize if config.model.quantize != "none" else dtype
    need = num_parameters * BYTES_PER_PARAM[key]
    if device.type != "cuda":
        return Row("memory", f"weights need {human_bytes(need)} of host memory as {key}", "")
    free, _ = torch.cuda.mem_get_info(device.index or 0)
    text = f"weights need {human_bytes(need)} as {key}; {human_bytes(free)} free on {device}"
    if need > free:
        return Row("memory", text + ' (set model.quantize = "nf4" or free the GPU)', "FAIL")
    return Row("memory", text)

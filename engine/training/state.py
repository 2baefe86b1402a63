"""Resumable training state: everything a run needs to continue exactly where it stopped.

Tensors (fp32 weights, AdamW moments and step counts, torch generator states) go to `state.safetensors`; the
rest (step, tokens, seconds trained, Python `random` states, which are the data position, the run's settings)
to `state.json`. Never pickle: both files are plain data, read back without executing anything. A state
directory is written to a temporary name and renamed, so a kill mid-write leaves the previous state intact.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

STATE_DIR = "state"
STATE_VERSION = 1
# Optimiser settings that choose a kernel, not the arithmetic's inputs: a resumed run takes the trainer's current
# choice (a state saved by the per-parameter AdamW resumes on the fused one).
KERNEL_CHOICES = frozenset({"fused", "foreach", "capturable", "differentiable"})


@dataclass
class Progress:
    """Counters a resumed run carries on from (the LR schedule reads step and seconds)."""

    step: int = 0
    tokens: int = 0
    seconds: float = 0.0  # wall seconds of training in this run, all sessions together
    thread_seconds: float = 0.0  # wall seconds x threads: the compute record the model card keeps
    sessions: int = 0  # how many times the run was started (1 + resumes)
    extra: dict = field(default_factory=dict)


def _random_state_to_json(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _random_state_from_json(data: list) -> tuple:
    version, internal, gauss = data
    return version, tuple(internal), gauss


def save_state(
    run_dir: Path,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    generators: dict[str, torch.Generator],
    rngs: dict[str, random.Random],
    progress: Progress,
    settings: dict,
) -> Path:
    """Write RUN_DIR/state/{state.safetensors,state.json} atomically; returns the state directory."""
    out = Path(run_dir) / STATE_DIR
    tmp = out.with_name(STATE_DIR + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    tensors: dict[str, torch.Tensor] = {}
    for name, t in model.state_dict().items():
        tensors[f"model.{name}"] = t.detach().contiguous().clone()
    names = {id(p): n for n, p in model.named_parameters()}
    groups = []
    for g in opt.param_groups:
        groups.append({k: v for k, v in g.items() if k != "params"} | {"params": [names[id(p)] for p in g["params"]]})
        for p in g["params"]:
            for key, value in opt.state.get(p, {}).items():
                if not isinstance(value, torch.Tensor):
                    value = torch.tensor(value)
                tensors[f"opt.{names[id(p)]}.{key}"] = value.detach().contiguous().clone()
    for name, gen in generators.items():
        tensors[f"gen.{name}"] = gen.get_state()
    tensors["gen.torch_global"] = torch.get_rng_state()
    save_file(tensors, str(tmp / "state.safetensors"))
    meta = {
        "version": STATE_VERSION,
        "progress": progress.__dict__,
        "random": {name: _random_state_to_json(r.getstate()) for name, r in rngs.items()},
        "param_groups": groups,
        "settings": settings,
    }
    (tmp / "state.json").write_text(json.dumps(meta) + "\n")
    old = out.with_name(STATE_DIR + ".old")
    if out.exists():
        if old.exists():
            shutil.rmtree(old)
        out.rename(old)
    tmp.rename(out)
    if old.exists():
        shutil.rmtree(old)
    return out


class StateError(RuntimeError):
    """A state directory that cannot continue this run (missing, other version, other model or settings)."""


def read_settings(run_dir: Path) -> dict:
    """The settings a state was saved with (to rebuild the run before load_state)."""
    path = Path(run_dir) / STATE_DIR / "state.json"
    if not path.is_file():
        raise StateError(f"no training state in {run_dir} (expected {path})")
    meta = json.loads(path.read_text())
    if meta.get("version") != STATE_VERSION:
        raise StateError(f"{path}: state version {meta.get('version')}, this trainer reads {STATE_VERSION}")
    return meta["settings"]


def load_state(
    run_dir: Path,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    generators: dict[str, torch.Generator],
    rngs: dict[str, random.Random],
) -> Progress:
    """Restore what save_state wrote into freshly built objects of the same shape; returns the counters."""
    d = Path(run_dir) / STATE_DIR
    read_settings(run_dir)  # version check with a clear error
    meta = json.loads((d / "state.json").read_text())
    tensors = load_file(str(d / "state.safetensors"))
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise StateError(f"{d}: weights do not fit this model ({e})") from e
    params = dict(model.named_parameters())
    if len(meta["param_groups"]) != len(opt.param_groups):
        raise StateError(f"{d}: {len(meta['param_groups'])} optimiser groups saved, {len(opt.param_groups)} built")
    for g, saved in zip(opt.param_groups, meta["param_groups"], strict=True):
        for k, v in saved.items():
            if k != "params" and k not in KERNEL_CHOICES:
                g[k] = tuple(v) if isinstance(g.get(k), tuple) else v
        g["params"] = [params[n] for n in saved["params"]]
    opt.state.clear()
    for key, value in tensors.items():
        if key.startswith("opt."):
            pname, slot = key[len("opt.") :].rsplit(".", 1)
            opt.state[params[pname]][slot] = value
    for name, gen in generators.items():
        gen.set_state(tensors[f"gen.{name}"])
    torch.set_rng_state(tensors["gen.torch_global"])
    for name, r in rngs.items():
        r.setstate(_random_state_from_json(meta["random"][name]))
    return Progress(**meta["progress"])


def has_state(run_dir: Path) -> bool:
    return (Path(run_dir) / STATE_DIR / "state.json").is_file()

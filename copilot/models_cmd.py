"""`dcopilot models`: the models usable without network (embedded, configured, and in the local HF cache)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dcopilot.copilot.config import Config


@dataclass(frozen=True)
class Found:
    """A checkpoint directory on disk and what its config.json says."""

    spec: str  # what to pass as --model / model.path
    path: Path
    summary: str  # architecture and size, or why it cannot be used


def models_main(config: Config) -> int:
    from dcopilot.engine.runtime.loader import EMBEDDED_DIR, hf_cache_dirs, resolve_model_path

    embedded = describe(EMBEDDED_DIR) if (EMBEDDED_DIR / "config.json").exists() else "not installed"
    print(f"embedded model  {EMBEDDED_DIR}: {embedded}")
    spec = config.model.path
    try:
        resolved = f"{resolve_model_path(spec)}"
    except Exception as exc:  # the loader's message names what is missing
        resolved = f"unusable: {exc}"
    print(f"configured      {spec or '(embedded)'} -> {resolved}")
    for root in hf_cache_dirs():
        found = scan_hf_cache(root)
        print(f"\nHugging Face cache {root}: {len(found)} DiffusionGemma-like checkpoint{'s' * (len(found) != 1)}")
        for item in found:
            print(f"  {item.spec}\n      {item.summary}\n      {item.path}")
    return 0


def scan_hf_cache(root: Path) -> list[Found]:
    """Snapshots under root/models--org--name/snapshots/<rev>/ whose config.json is DiffusionGemma-like."""
    found = []
    for repo_dir in sorted(root.glob("models--*--*")):
        repo = repo_dir.name[len("models--") :].replace("--", "/", 1)
        main_ref = repo_dir / "refs" / "main"
        main = main_ref.read_text().strip() if main_ref.is_file() else None
        for snapshot in sorted((repo_dir / "snapshots").glob("*/config.json")):
            if not is_diffusion_gemma(snapshot):
                continue
            revision = snapshot.parent.name
            spec = repo if revision == main else f"{repo}@{revision}"
            found.append(Found(spec, snapshot.parent, describe(snapshot.parent)))
    return found


def is_diffusion_gemma(config_json: Path) -> bool:
    try:
        config = json.loads(config_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    architectures = config.get("architectures") or []
    return config.get("model_type") == "diffusion_gemma" or any(
        str(a).startswith("DiffusionGemma") for a in architectures
    )


def describe(path: Path) -> str:
    """One line from config.json and the weight files: enough to choose, no tensors read."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"unreadable config.json ({exc})"
    text = config.get("text_config") or {}
    shape = ", ".join(
        f"{value} {name}"
        for name, value in (
            ("layers", text.get("num_hidden_layers")),
            ("hidden", text.get("hidden_size")),
            ("experts", text.get("num_experts")),
        )
        if value
    )
    weights = [p for p in path.glob("*.safetensors")]
    present = [p for p in weights if p.exists()]  # a cache symlink whose blob is gone does not exist
    size = sum(p.stat().st_size for p in present)
    if not weights:
        files = "no safetensors weights"
    elif len(present) < len(weights):
        files = f"{len(weights) - len(present)} of {len(weights)} weight files missing (incomplete download)"
    else:
        files = f"{human_bytes(size)} in {len(weights)} safetensors file{'s' * (len(weights) != 1)}"
    kind = (config.get("architectures") or [config.get("model_type", "?")])[0]
    return f"{kind} ({shape}), {files}"


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"

"""Find a checkpoint (directory, local Hugging Face cache, or the embedded model) and load it.

Only safetensors are read (memory-mapped, no pickle). The model is built on the meta device and its
parameters are assigned straight from the files, so host memory peaks near the model size. Vision tensors are
never read. No network: a repo id is only looked up in the local Hugging Face cache.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from dcopilot.engine.runtime.config import ARCHITECTURE, ConfigError, GenerationConfig, ModelConfig
from dcopilot.engine.runtime.model import DiffusionGemma
from dcopilot.engine.runtime.tokenizer import Tokenizer, TokenizerError

EMBEDDED_DIR = Path(__file__).parents[1] / "embedded"  # engine/embedded
PREFIX = "model.decoder."
ENCODER_PREFIX = "model.encoder.language_model."
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


class ModelLoadError(RuntimeError):
    """Anything that stops a checkpoint from loading; the message names the file (and tensor)."""


# -- finding the checkpoint ---------------------------------------------------------------------------------
def hf_cache_dirs() -> list[Path]:
    env = os.environ
    if env.get("HF_HUB_CACHE"):
        return [Path(env["HF_HUB_CACHE"])]
    if env.get("HF_HOME"):
        return [Path(env["HF_HOME"]) / "hub"]
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return [base / "huggingface" / "hub"]


def find_in_hf_cache(repo_id: str) -> Path | None:
    """The snapshot dir of repo_id ("org/name", optionally "@revision") in the local cache, or None."""
    repo, _, revision = repo_id.partition("@")
    for root in hf_cache_dirs():
        repo_dir = root / ("models--" + repo.replace("/", "--"))
        snapshots = repo_dir / "snapshots"
        if not snapshots.is_dir():
            continue
        ref = repo_dir / "refs" / (revision or "main")
        if ref.is_file():
            snap = snapshots / ref.read_text().strip()
            if snap.is_dir():
                return snap
        if revision and (snapshots / revision).is_dir():
            return snapshots / revision
        candidates = sorted(
            (p for p in snapshots.iterdir() if (p / "config.json").exists()),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        if candidates:
            return candidates[0]
    return None


def resolve_model_path(spec: str | os.PathLike | None) -> Path:
    """ "" -> the embedded model; an existing directory -> itself; "org/name" -> its local HF cache snapshot."""
    if spec is None or str(spec) == "":
        if not (EMBEDDED_DIR / "config.json").exists():
            raise ModelLoadError(f"{EMBEDDED_DIR}: the embedded default model is not installed")
        return EMBEDDED_DIR
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelLoadError(f"{path}: expected a checkpoint directory, got a file")
    text = str(spec)
    if text.count("/") == 1 and not text.startswith((".", "/", "~")):
        found = find_in_hf_cache(text)
        if found is not None:
            return found
        raise ModelLoadError(
            f"{text}: not found in the local Hugging Face cache ({', '.join(map(str, hf_cache_dirs()))});"
            " dcopilot never downloads: fetch it with `huggingface-cli download` first, or pass a directory"
        )
    raise ModelLoadError(f"{path}: no such checkpoint directory")


# -- inspecting -------------------------------------------------------------------------------------------
@dataclass
class CheckpointInfo:
    path: Path
    ok: bool = False
    architecture: str = ""
    weight_files: list[str] = field(default_factory=list)
    num_parameters: int = 0
    dtype: str = ""
    tokenizer_ok: bool = False
    problems: list[str] = field(default_factory=list)


def weight_map(path: Path) -> dict[str, Path]:
    """Tensor name -> safetensors file, from model.safetensors or the shard index. Refuses pickle files."""
    index = path / "model.safetensors.index.json"
    single = path / "model.safetensors"
    if index.exists():
        try:
            entries = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, UnicodeDecodeError) as e:
            raise ModelLoadError(f"{index}: not a valid shard index ({e})") from None
        return {name: path / file for name, file in entries.items()}
    if single.exists():
        with open_safetensors(single) as f:
            return {name: single for name in f.keys()}
    pickled = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickled:
        raise ModelLoadError(
            f"{path}: only safetensors weights are loaded; refusing {', '.join(pickled)} (pickle files can run code)"
        )
    raise ModelLoadError(f"{path}: no model.safetensors or model.safetensors.index.json")


def expected_tensors(model: DiffusionGemma) -> dict[str, tuple[int, ...]]:
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def inspect_checkpoint(spec: str | os.PathLike | None) -> CheckpointInfo:
    """Check files, architecture, tensor names and shapes (headers only) and the tokenizer, without loading."""
    try:
        path = resolve_model_path(spec)
    except ModelLoadError as e:
        return CheckpointInfo(path=Path(str(spec or EMBEDDED_DIR)), problems=[str(e)])
    info = CheckpointInfo(path=path)
    try:
        cfg = ModelConfig.from_file(path / "config.json")
        info.architecture = ARCHITECTURE
        with torch.device("meta"):
            model = DiffusionGemma(cfg.text)
        files = weight_map(path)
        info.weight_files = sorted({p.name for p in files.values()})
        shapes = _header_shapes(files)
        for name, shape in expected_tensors(model).items():
            key = _checkpoint_key(name, shapes)
            if key is None:
                info.problems.append(f"missing tensor {PREFIX + name}")
            elif shapes[key][0] != shape:
                info.problems.append(
                    f"{files[key].name}: {key} has shape {list(shapes[key][0])}, expected {list(shape)}"
                )
        info.num_parameters = model.num_parameters()
        info.dtype = next(iter({d for _, d in shapes.values()}), "")
    except (ConfigError, ModelLoadError) as e:
        info.problems.append(str(e))
    try:
        Tokenizer.from_dir(path)
        info.tokenizer_ok = True
    except TokenizerError as e:
        info.problems.append(str(e))
    info.ok = not info.problems
    return info


def _header_shapes(files: dict[str, Path]) -> dict[str, tuple[tuple[int, ...], str]]:
    out = {}
    for file in sorted(set(files.values())):
        with open_safetensors(file) as f:
            for name in f.keys():
                if name.startswith(PREFIX) or name.startswith(ENCODER_PREFIX):
                    out[name] = f.header(name)
    return out


def _checkpoint_key(name: str, available) -> str | None:
    key = PREFIX + name
    if key in available:
        return key
    # A checkpoint holding only the encoder's layer_scalar: it is the only value there is, for both modes.
    if name.endswith("layer_scalar") and ENCODER_PREFIX + name in available:
        return ENCODER_PREFIX + name
    return None


def _encoder_scalar_key(layer: int, available) -> str | None:
    """The encoder's own layer_scalar for `layer` when the checkpoint has one (the model's encoder_layer_scalar);
    None means the encoder uses the decoder's copy (checkpoints we write hold one copy)."""
    key = f"{ENCODER_PREFIX}layers.{layer}.layer_scalar"
    return key if key in available else None


# -- loading ----------------------------------------------------------------------------------------------
def pick_device(device: str | torch.device | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def device_problem(device: torch.device) -> str | None:
    """Why `device` cannot hold a model here (None when it can): a CUDA device torch cannot see."""
    if device.type != "cuda":
        return None
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        why = "this torch is a CPU build" if not torch.version.cuda else "none is visible"
        return f"{device}: no CUDA device here ({why})"
    if (device.index or 0) >= count:
        return f"{device}: no such CUDA device here ({count} visible: cuda:0 to cuda:{count - 1})"
    return None


def pick_dtype(dtype, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[str(dtype)]
    except KeyError:
        raise ModelLoadError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16") from None


def load_model(
    spec: str | os.PathLike | None,
    device: str | torch.device | None = "cpu",
    dtype: torch.dtype | str | None = None,
    quantize: str | None = None,
) -> DiffusionGemma:
    """Load a DiffusionGemma checkpoint (text weights only) ready for `encode` / `denoise`."""
    path = resolve_model_path(spec)
    dev = pick_device(device)
    problem = device_problem(dev)
    if problem:
        raise ModelLoadError(f'{problem}; set model.device = "cpu" or "auto"')
    dt = pick_dtype(dtype, dev)
    try:
        cfg = ModelConfig.from_file(path / "config.json")
    except ConfigError as e:
        raise ModelLoadError(str(e)) from None
    generation = GenerationConfig.from_file(path / "generation_config.json", fallback_eos=cfg.eos_token_ids)
    try:
        tokenizer = Tokenizer.from_dir(path)
    except TokenizerError as e:
        raise ModelLoadError(str(e)) from None

    with torch.device("meta"):
        model = DiffusionGemma(cfg.text)
    files = weight_map(path)
    # Quantized layers are built from CPU copies; everything else goes straight to the device.
    load_dev = torch.device("cpu") if quantize not in (None, "none") else dev
    state = _read_state(model, files, load_dev, dt)
    encoder_scalars = {i: state.pop(f"layers.{i}.encoder_layer_scalar", None) for i in range(len(model.layers))}
    model.load_state_dict(state, strict=True, assign=True)
    for i, layer in enumerate(model.blocks):  # non-persistent: not in the state dict
        scalar = encoder_scalars[i]
        layer.encoder_layer_scalar = layer.layer_scalar.clone() if scalar is None else scalar
    del state
    model.init_rope(load_dev)
    model.requires_grad_(False)
    model.eval()
    if quantize not in (None, "none"):
        from dcopilot.engine.runtime.quant import quantize_model

        quantize_model(model, quantize, dev)
        model.init_rope(dev)

    model.generation = generation
    model.canvas_length = cfg.canvas_length
    model.tokenizer = tokenizer
    model.extra = cfg.extra
    model.path = path
    return model


def _read_state(model: DiffusionGemma, files: dict[str, Path], device: torch.device, dtype: torch.dtype) -> dict:
    wanted = expected_tensors(model)
    keys = {name: _checkpoint_key(name, files) for name in wanted}
    missing = [PREFIX + n for n, k in keys.items() if k is None]
    for i in range(len(model.layers)):
        key = _encoder_scalar_key(i, files)
        if key is not None:
            name = f"layers.{i}.encoder_layer_scalar"
            keys[name], wanted[name] = key, wanted[f"layers.{i}.layer_scalar"]
    if missing:
        where = sorted({p.name for p in files.values()})
        raise ModelLoadError(
            f"{', '.join(where)}: missing tensor {missing[0]}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    found = {name: key for name, key in keys.items() if key is not None}  # every name, after the check above
    by_file: dict[Path, list[str]] = {}
    for name, key in found.items():
        by_file.setdefault(files[key], []).append(name)
    state = {}
    for file, names in sorted(by_file.items()):
        with open_safetensors(file) as f:
            for name in names:
                key = found[name]
                shape, _ = f.header(key)
                if shape != wanted[name]:
                    raise ModelLoadError(
                        f"{file.name}: tensor {key} has shape {list(shape)}, expected {list(wanted[name])}"
                    )
                state[name] = _place(f.tensor(key), device, dtype, key)
    return state


def _place(tensor: torch.Tensor, device: torch.device, dtype: torch.dtype, key: str) -> torch.Tensor:
    try:
        return tensor.to(device=device, dtype=dtype)
    except torch.OutOfMemoryError as e:
        size = tensor.numel() * tensor.element_size() / 2**20
        raise ModelLoadError(
            f"out of memory on {device} placing {key} ({size:.0f} MiB): {str(e).splitlines()[0]} "
            '(try model.quantize = "nf4", a smaller model.dtype, or model.device = "cpu")'
        ) from None


@contextlib.contextmanager
def open_safetensors(file: Path) -> Iterator[_Reader]:
    """safe_open on CPU; a missing file or an error while opening or reading it becomes a ModelLoadError naming
    the file (safetensors raises SafetensorError or OSError on corrupt headers and truncated data). Errors of the
    caller's own code in the block (placing a tensor on a device, out of memory) pass through as they are: they
    say nothing about the file."""
    from safetensors import safe_open

    if not file.exists():
        raise ModelLoadError(f"{file}: listed in the shard index but missing")
    try:
        handle = safe_open(str(file), framework="pt", device="cpu")
    except Exception as e:
        raise ModelLoadError(f"{file}: corrupt safetensors file ({e})") from None
    with handle as f:
        yield _Reader(f, file)


class _Reader:
    """The reads of an open safetensors file, each failure a ModelLoadError naming the file."""

    def __init__(self, handle: Any, file: Path) -> None:
        self._handle, self._file = handle, file

    def _read(self, what: Callable[[], Any]) -> Any:
        try:
            return what()
        except Exception as e:
            raise ModelLoadError(f"{self._file}: corrupt safetensors file ({e})") from None

    def keys(self) -> list[str]:
        return self._read(lambda: list(self._handle.keys()))

    def header(self, key: str) -> tuple[tuple[int, ...], str]:
        """(shape, dtype name) of a tensor, from the header alone."""

        def read() -> tuple[tuple[int, ...], str]:
            sl = self._handle.get_slice(key)
            return tuple(sl.get_shape()), sl.get_dtype()

        return self._read(read)

    def tensor(self, key: str) -> torch.Tensor:
        return self._read(lambda: self._handle.get_tensor(key))

"""Settings: one TOML file, then DCOPILOT_* environment variables, then command-line flags (later wins).

Everything is decoded into frozen msgspec structs. A bad setting raises ConfigError naming the key and
where it came from (file and line, environment variable, or flag), so the CLI prints one line, not a traceback.
"""

from __future__ import annotations

import os
import re
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from dcopilot.engine.tasks import requests as defaults
from dcopilot.lsp.settings import DEBOUNCE_MS, DebounceMs, Hypotheses, MaxTokens, MinScore

Device = Annotated[str, msgspec.Meta(pattern=r"^(auto|cpu|cuda(:[0-9]+)?)$")]


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


# Subclasses say frozen=True again: msgspec inherits it, but type checkers only read it from each class.
class ModelConfig(_Section, frozen=True):
    path: str = ""  # checkpoint directory or HF repo id in the local cache; "" = embedded model
    device: Device = "auto"  # auto | cpu | cuda | cuda:N
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    quantize: Literal["none", "nf4", "int8"] = "none"  # nf4/int8 need the `quant` extra and a GPU
    prompt_format: defaults.PromptFormatSetting = defaults.PROMPT_FORMAT  # see engine/tasks/layout.py
    # compiled, CUDA-graph denoise step (engine/runtime/static.py); auto: on CUDA
    compile: Literal["auto", "on", "off"] = "auto"
    # torch intra-op threads; 0: $OMP_NUM_THREADS when set, else the device's (1 on a CPU, torch's own on CUDA)
    threads: Annotated[int, msgspec.Meta(ge=0, le=1024)] = 0


class CompletionConfig(_Section, frozen=True):
    layout: Literal["auto", "A", "B", "C"] = "auto"  # prompt layouts, docs/interfaces.md; auto: the model's own
    hypotheses: Hypotheses = defaults.HYPOTHESES  # length hypotheses per request; 0: the device's (2 CPU, 3 GPU)
    max_tokens: MaxTokens = defaults.MAX_TOKENS  # canvas length budget; 0: the device's (16 CPU, 64 GPU)
    context_tokens: Annotated[int, msgspec.Meta(ge=16)] = defaults.CONTEXT_TOKENS  # prompt window (prefix + suffix)
    multiline: defaults.Multiline = defaults.MULTILINE
    debounce_ms: DebounceMs = DEBOUNCE_MS  # base; adapts to typing speed
    min_score: MinScore = defaults.MIN_SCORE  # the gate: nothing is shown when the best scores below it
    snippets: Annotated[int, msgspec.Meta(ge=0, le=16)] = defaults.SNIPPETS  # windows of other files in the prompt
    retrieve: bool = defaults.RETRIEVE  # continuations found in context join the model's candidates
    seed_canvas: bool = defaults.SEED_CANVAS  # the best retrieved one also seeds a canvas for the model to edit
    seed: int = defaults.SEED


class EditConfig(_Section, frozen=True):
    renoise: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = defaults.RENOISE  # fraction of the canvas re-noised
    candidates: Annotated[int, msgspec.Meta(ge=1, le=16)] = defaults.EDIT_CANDIDATES  # draws per canvas
    min_score: MinScore = defaults.EDIT_MIN_SCORE  # the gate: a rewrite scoring below it is not offered


class ServerConfig(_Section, frozen=True):
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_file: str = ""  # "" = stderr (stdout is the LSP channel)
    trace: bool = False  # only then may document text be logged
    apply_edit_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0  # wait for the editor's applyEdit answer


class Config(_Section, frozen=True):
    model: ModelConfig = ModelConfig()
    completion: CompletionConfig = CompletionConfig()
    edit: EditConfig = EditConfig()
    server: ServerConfig = ServerConfig()


SECTIONS: dict[str, type[_Section]] = {f.name: f.type for f in msgspec.structs.fields(Config)}


class ConfigError(Exception):
    """A setting that cannot be used. `source` is a file path, an environment variable or a flag."""

    def __init__(self, detail: str, *, key: str | None = None, source: str = "", line: int | None = None):
        self.detail, self.key, self.source, self.line = detail, key, source, line
        where = source + (f":{line}" if line else "")
        super().__init__(": ".join(part for part in (where, key, detail) if part))


def config_path(path: str | os.PathLike | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """The file to read: `path` (--config), else $DCOPILOT_CONFIG, else $XDG_CONFIG_HOME/dcopilot/config.toml."""
    if path:
        return Path(path).expanduser()
    if env.get("DCOPILOT_CONFIG"):
        return Path(env["DCOPILOT_CONFIG"]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "dcopilot" / "config.toml"


def load_config(
    path: str | os.PathLike | None = None,
    env: Mapping[str, str] = os.environ,
    overrides: Mapping[str, object] = {},
) -> Config:
    """Read the file (a missing default file means defaults), then apply env vars, then `overrides`.

    `overrides` maps "section.key" to a value from a flag; strings are converted like env values.
    """
    file = config_path(path, env)
    explicit = bool(path or env.get("DCOPILOT_CONFIG"))
    config = Config()
    if file.is_file() or explicit:
        config = parse_toml(_read(file), str(file))
    for name, value in sorted(env.items()):
        key = _env_key(name)
        if key:
            config = _apply(config, key, value, source=name)
    for key, flag in overrides.items():
        if flag is not None:
            config = _apply(config, key, flag, source=f"flag for {key}")
    return config


def parse_toml(text: str, source: str = "config.toml") -> Config:
    try:
        return msgspec.toml.decode(text.encode(), type=Config)
    except msgspec.ValidationError as exc:
        key, detail = _split_validation_error(str(exc))
        raise ConfigError(detail, key=key, source=source, line=_key_line(text, key)) from None
    except msgspec.DecodeError as exc:
        found = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        detail = "invalid TOML: " + re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ConfigError(detail, source=source, line=int(found[1]) if found else None) from None


def _read(file: Path) -> str:
    try:
        return file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", source=str(file)) from None
    except UnicodeDecodeError:
        raise ConfigError("config file is not UTF-8 text", source=str(file)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror}", source=str(file)) from None


def _split_validation_error(message: str) -> tuple[str | None, str]:
    """'Expected `str`, got `int` - at `$.model.dtype`' -> ('model.dtype', 'Expected `str`, got `int`')."""
    detail, _, at = message.partition(" - at `$")
    path = [p for p in at.rstrip("`").split(".") if p]
    unknown = re.fullmatch(r"Object contains unknown field `(.+)`", detail)
    if unknown:
        path.append(unknown[1])
        detail = "unknown setting" + _known_keys_hint(path[:-1])
    else:
        detail = _plain(detail) + _choices_hint(path)
    return (".".join(path) or None), detail


def _plain(detail: str) -> str:
    return re.sub(r" matching regex '.*'", "", detail)  # the hint that follows says it in words


def _known_keys_hint(section_path: list[str]) -> str:
    if not section_path:
        return " (sections: " + ", ".join(SECTIONS) + ")"
    section = SECTIONS.get(section_path[0])
    if section is None or len(section_path) > 1:
        return ""
    return f" (keys in [{section_path[0]}]: " + ", ".join(section.__struct_fields__) + ")"


def _choices_hint(path: list[str]) -> str:
    if len(path) != 2 or path[0] not in SECTIONS:
        return ""
    field = _field(path[0], path[1])
    if field is not None and typing.get_origin(field.type) is Literal:
        return " (one of: " + ", ".join(map(str, typing.get_args(field.type))) + ")"
    if field is not None and field.type is Device:
        return " (auto, cpu, cuda or cuda:N)"
    return ""


def _field(section: str, key: str) -> msgspec.structs.FieldInfo | None:
    for field in msgspec.structs.fields(SECTIONS[section]):
        if field.name == key:
            return field
    return None


def _key_line(text: str, key: str | None) -> int | None:
    """1-based line where dotted `key` is set: its `key =` line, else its `[table]` header, else None.

    A small scan, not a TOML parser: enough for the tables and keys of this schema.
    """
    if not key:
        return None
    target, table, best = key.split("."), [], None
    for number, raw in enumerate(text.splitlines(), 1):
        header = re.match(r"\s*\[\s*([^\[\]]+?)\s*\]", raw)
        if header:
            table = [p.strip().strip("\"'") for p in header[1].split(".")]
            if table == target[: len(table)] and best is None:
                best = number
            continue
        assignment = re.match(r"\s*([A-Za-z0-9_\-.\"' ]+?)\s*=", raw)
        if assignment:
            full = table + [p.strip().strip("\"'") for p in assignment[1].split(".")]
            if full == target:
                return number
            if full == target[: len(full)] and best is None:
                best = number  # e.g. `model = { ... }` holding the key inline
    return best


def _env_key(name: str) -> str | None:
    """DCOPILOT_COMPLETION_MAX_TOKENS -> 'completion.max_tokens'; None for variables that are not settings."""
    if not name.startswith("DCOPILOT_"):
        return None
    rest = name[len("DCOPILOT_") :].lower()
    for section in SECTIONS:
        if rest.startswith(section + "_"):
            return section + "." + rest[len(section) + 1 :]
    return None  # e.g. DCOPILOT_CONFIG


def _apply(config: Config, key: str, value: object, source: str) -> Config:
    section, _, name = key.partition(".")
    if section not in SECTIONS or not name:
        raise ConfigError("unknown setting" + _known_keys_hint([]), key=key, source=source)
    field = _field(section, name)
    if field is None:
        raise ConfigError("unknown setting" + _known_keys_hint([section]), key=key, source=source)
    if isinstance(value, str) and field.type is bool:
        # msgspec reads true/false/1/0 in any case; these words are ours
        value = {"yes": True, "on": True, "no": False, "off": False}.get(value.lower(), value)
    try:
        converted = msgspec.convert(value, field.type, strict=False)
    except msgspec.ValidationError as exc:
        detail = _plain(str(exc)) + _choices_hint([section, name])  # a scalar's error names no path
        raise ConfigError(f"{detail} (got {value!r})", key=key, source=source) from None
    updated = msgspec.structs.replace(getattr(config, section), **{name: converted})
    return msgspec.structs.replace(config, **{section: updated})


def to_toml(config: Config) -> str:
    """The settings in effect, as a config file (for `dcopilot doctor` and the docs)."""
    lines = []
    for section in SECTIONS:
        lines.append(f"[{section}]")
        for name, value in msgspec.structs.asdict(getattr(config, section)).items():
            text = ("true" if value else "false") if isinstance(value, bool) else repr(value)
            if isinstance(value, str):
                text = _toml_string(value)
            lines.append(f"{name} = {text}")
        lines.append("")
    return "\n".join(lines)


def _toml_string(value: str) -> str:
    """A TOML basic string: backslash, quote and the control characters TOML forbids raw are escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + re.sub(r"[\x00-\x08\x0a-\x1f\x7f]", lambda m: f"\\u{ord(m[0]):04x}", escaped) + '"'

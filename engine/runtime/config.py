"""Typed views of a checkpoint's config.json and generation_config.json.

Built from the files by known keys (unknown keys are ignored, as in Hugging Face configs); behaviour that
DiffusionGemma hard-wires (MoE always on, K=V on full layers, no PLE) is not configurable here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

ARCHITECTURE = "DiffusionGemmaForBlockDiffusion"
MODEL_TYPE = "diffusion_gemma"
SLIDING = "sliding_attention"
FULL = "full_attention"


class ConfigError(ValueError):
    """A checkpoint config that cannot describe a DiffusionGemma text model; the message names the file."""


@dataclass(frozen=True)
class LayerGeometry:
    head_dim: int
    num_kv_heads: int
    sliding: bool
    rope_theta: float
    rotary_fraction: float  # proportional RoPE rotates this share of the frequency pairs


@dataclass(frozen=True)
class TextConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int  # dense MLP and self-conditioning MLP width
    moe_intermediate_size: int  # per-expert width
    num_experts: int
    top_k_experts: int
    num_hidden_layers: int
    layer_types: tuple[str, ...]
    num_attention_heads: int
    num_key_value_heads: int  # sliding layers
    num_global_key_value_heads: int  # full layers (K=V)
    head_dim: int  # sliding layers
    global_head_dim: int  # full layers
    sliding_window: int
    rope_parameters: dict = field(default_factory=dict)
    rms_norm_eps: float = 1e-6
    final_logit_softcapping: float = 30.0
    pad_token_id: int = 0
    bos_token_id: int = 2
    eos_token_id: int = 1

    def layer(self, i: int) -> LayerGeometry:
        sliding = self.layer_types[i] == SLIDING
        rope = self.rope_parameters.get(self.layer_types[i]) or {}
        return LayerGeometry(
            head_dim=self.head_dim if sliding else self.global_head_dim,
            num_kv_heads=self.num_key_value_heads if sliding else self.num_global_key_value_heads,
            sliding=sliding,
            rope_theta=float(rope.get("rope_theta", 10_000.0 if sliding else 1_000_000.0)),
            rotary_fraction=float(rope.get("partial_rotary_factor", 1.0)),
        )

    @classmethod
    def from_dict(cls, d: dict, source: str = "config.json") -> TextConfig:
        try:
            n_layers = int(d["num_hidden_layers"])
            layer_types = list(d.get("layer_types") or [SLIDING if (i + 1) % 6 else FULL for i in range(n_layers)])
            if len(layer_types) != n_layers or set(layer_types) - {SLIDING, FULL}:
                raise ConfigError(f"{source}: layer_types must list {n_layers} sliding/full attention layers")
            # HF forces the last layer to full attention; so do we.
            layer_types[-1] = FULL
            global_head_dim = d.get("global_head_dim")
            global_kv = d.get("num_global_key_value_heads")
            # save_pretrained writes the full-layer geometry as per_layer_config instead of global_* keys, and
            # leaves out an override equal to the base value.
            per_layer = d.get("per_layer_config")
            if per_layer:
                for layer_idx, override in per_layer.items():
                    if layer_types[int(layer_idx)] == FULL:
                        global_head_dim = override.get("head_dim", d["head_dim"])
                        global_kv = override.get("num_key_value_heads", d["num_key_value_heads"])
            return cls(
                vocab_size=int(d["vocab_size"]),
                hidden_size=int(d["hidden_size"]),
                intermediate_size=int(d["intermediate_size"]),
                moe_intermediate_size=int(d["moe_intermediate_size"]),
                num_experts=int(d["num_experts"]),
                top_k_experts=int(d["top_k_experts"]),
                num_hidden_layers=n_layers,
                layer_types=tuple(layer_types),
                num_attention_heads=int(d["num_attention_heads"]),
                num_key_value_heads=int(d["num_key_value_heads"]),
                num_global_key_value_heads=int(global_kv if global_kv is not None else d["num_key_value_heads"]),
                head_dim=int(d["head_dim"]),
                global_head_dim=int(global_head_dim if global_head_dim is not None else 512),
                sliding_window=int(d["sliding_window"]),
                rope_parameters=dict(d.get("rope_parameters") or {}),
                rms_norm_eps=float(d.get("rms_norm_eps", 1e-6)),
                final_logit_softcapping=float(d.get("final_logit_softcapping") or 30.0),
                pad_token_id=int(d.get("pad_token_id") or 0),
                bos_token_id=_first(d.get("bos_token_id"), 2),
                eos_token_id=_first(d.get("eos_token_id"), 1),
            )
        except KeyError as e:
            raise ConfigError(f"{source}: text_config is missing required key {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(f"{source}: invalid text_config value: {e}") from None

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["layer_types"] = list(self.layer_types)
        d["model_type"] = "diffusion_gemma_text"
        d["hidden_activation"] = "gelu_pytorch_tanh"
        d["tie_word_embeddings"] = True
        return d


@dataclass(frozen=True)
class ModelConfig:
    """The top-level config.json: text config plus the canvas and stop ids."""

    text: TextConfig
    canvas_length: int = 256
    eos_token_ids: tuple[int, ...] = (1,)
    extra: dict = field(default_factory=dict)  # keys we carry but do not interpret (e.g. "dcopilot")

    @classmethod
    def from_file(cls, path: Path) -> ModelConfig:
        d = _read_json(path)
        archs = d.get("architectures") or []
        if d.get("model_type") != MODEL_TYPE and ARCHITECTURE not in archs:
            raise ConfigError(
                f"{path}: unknown architecture {archs or d.get('model_type')!r}; dcopilot runs {ARCHITECTURE}"
                f" (model_type {MODEL_TYPE!r})"
            )
        if "text_config" not in d:
            raise ConfigError(f"{path}: missing text_config")
        text = TextConfig.from_dict(d["text_config"], source=str(path))
        eos = d.get("eos_token_id", text.eos_token_id)
        return cls(
            text=text,
            canvas_length=int(d.get("canvas_length") or 256),
            eos_token_ids=tuple(eos if isinstance(eos, list) else [eos]),
            extra=dict(d.get("dcopilot") or {}),
        )


@dataclass(frozen=True)
class GenerationConfig:
    """EntropyBound sampler settings; defaults are the released checkpoint's generation_config.json."""

    max_denoising_steps: int = 48
    entropy_bound: float = 0.1
    t_min: float = 0.4
    t_max: float = 0.8
    stability_threshold: int | None = 1  # None (or confidence_threshold None): no early stop
    confidence_threshold: float | None = 0.005
    max_new_tokens: int = 256
    eos_token_ids: tuple[int, ...] = (1,)
    pad_token_id: int = 0
    # None: uniform-state noise over the vocabulary (DiffusionGemma). An id: absorbing-state noise, every noised
    # slot holds that token (the embedded model; its key `noise_token_id` is ours, not the released config's).
    noise_token_id: int | None = None

    @classmethod
    def from_file(cls, path: Path, fallback_eos: tuple[int, ...] = (1,)) -> GenerationConfig:
        if not path.exists():
            return cls(eos_token_ids=fallback_eos)
        d = _read_json(path)
        default = cls()

        def pick(key, cast, dflt):
            v = d.get(key)
            return dflt if v is None else cast(v)

        sampler = d.get("sampler_config") or {}
        eos = d.get("eos_token_id")
        return cls(
            max_denoising_steps=pick("max_denoising_steps", int, default.max_denoising_steps),
            entropy_bound=float(sampler.get("entropy_bound", default.entropy_bound)),
            t_min=pick("t_min", float, default.t_min),
            t_max=pick("t_max", float, default.t_max),
            stability_threshold=pick("stability_threshold", int, default.stability_threshold),
            confidence_threshold=d["confidence_threshold"]
            if "confidence_threshold" in d and d["confidence_threshold"] is not None
            else default.confidence_threshold,
            max_new_tokens=pick("max_new_tokens", int, default.max_new_tokens),
            eos_token_ids=tuple(eos if isinstance(eos, list) else [eos]) if eos is not None else fallback_eos,
            pad_token_id=pick("pad_token_id", int, default.pad_token_id),
            noise_token_id=pick("noise_token_id", int, None),
        )

    def validate(self, vocab_size: int) -> None:
        """Raise ValueError for settings the sampler cannot run; after this it reads the attributes directly."""
        if self.max_denoising_steps < 1:
            raise ValueError(f"max_denoising_steps must be at least 1, got {self.max_denoising_steps}")
        if not (self.t_min > 0 and self.t_max > 0):
            raise ValueError(f"temperatures must be positive (t_min {self.t_min}, t_max {self.t_max})")
        if self.entropy_bound < 0:
            raise ValueError(f"entropy_bound must not be negative, got {self.entropy_bound}")
        if self.stability_threshold is not None and self.stability_threshold < 0:
            raise ValueError(f"stability_threshold must not be negative, got {self.stability_threshold}")
        if self.noise_token_id is not None and not 0 <= self.noise_token_id < vocab_size:
            raise ValueError(f"noise_token_id {self.noise_token_id} is outside the vocabulary [0, {vocab_size})")

    def to_dict(self) -> dict:
        noise = {} if self.noise_token_id is None else {"noise_token_id": self.noise_token_id}
        return {
            "max_denoising_steps": self.max_denoising_steps,
            "max_new_tokens": self.max_new_tokens,
            "sampler_config": {"_cls_name": "EntropyBoundSamplerConfig", "entropy_bound": self.entropy_bound},
            "t_min": self.t_min,
            "t_max": self.t_max,
            "stability_threshold": self.stability_threshold,
            "confidence_threshold": self.confidence_threshold,
            "eos_token_id": list(self.eos_token_ids),
            "pad_token_id": self.pad_token_id,
            **noise,
        }


def _first(v, default: int) -> int:
    if v is None:
        return default
    return int(v[0] if isinstance(v, list) else v)


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return d

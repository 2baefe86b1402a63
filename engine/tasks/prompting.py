"""What a checkpoint says about how to prompt it, read once per model: special ids, prompt format, default layout,
pinned-suffix length and the prompt/canvas lengths it was trained on.

The facts come from the tokenizer, the generation config and config.json's "dcopilot" section (models we train
write one; DiffusionGemma has none, so every fact falls back to the chat-model default). Infill and edit resolve a
request's "auto" settings against this one object instead of reading the model's attributes again.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from dcopilot.engine.tasks import layout as lay

# Prompt header cost (bos, file marker, path, FIM markers) kept out of the window's budget.
HEADER_RESERVE = 32
DEFAULT_PINNED_SUFFIX = 8


@dataclass(frozen=True)
class ModelPrompting:
    specials: lay.Specials | None  # None only for stand-ins without a tokenizer (tests of the pure rules)
    prompt_format: str = "auto"  # the checkpoint's own format: auto | fim | gemma-chat
    layout_default: str | None = None  # A | B | C; None: C for FIM models, A for chat models
    pinned_suffix_tokens: int = DEFAULT_PINNED_SUFFIX  # K, the suffix tokens pinned at the canvas tail
    trained_prompt_tokens: tuple[int, ...] = ()  # prompt lengths seen in training; () = no cap
    trained_canvas_lengths: tuple[int, ...] = ()

    @classmethod
    def from_model(cls, model) -> ModelPrompting:
        extra = getattr(model, "extra", None) or {}
        gen = model.generation
        return cls(
            specials=lay.specials_from(model.tokenizer, eos=gen.eos_token_ids[0], pad=gen.pad_token_id),
            prompt_format=extra.get("prompt_format", "auto"),
            layout_default=extra.get("layout_default"),
            pinned_suffix_tokens=int(extra.get("pinned_suffix_tokens", DEFAULT_PINNED_SUFFIX)),
            trained_prompt_tokens=tuple(extra.get("trained_prompt_tokens") or ()),
            trained_canvas_lengths=tuple(extra.get("trained_canvas_lengths") or ()),
        )

    def required_specials(self) -> lay.Specials:
        """The special tokens, which every prompt needs (only stand-ins for the pure rules lack them)."""
        if self.specials is None:
            raise ValueError("a prompt format needs the model's special tokens")
        return self.specials

    def format(self, requested: str) -> lay.PromptFormat:
        """The request's format, "auto" meaning the checkpoint's own (and then the tokenizer's: FIM if it can)."""
        return lay.resolve_format(requested if requested != "auto" else self.prompt_format, self.required_specials())

    def layout(self, requested: str | None, fmt: lay.PromptFormat) -> lay.Layout:
        """An explicit A/B/C wins; None or "auto" takes the checkpoint's `layout_default`, else C for FIM models
        (trained on pinned suffixes) and A for chat models (a suffix inside the canvas is out of distribution for
        DiffusionGemma's block-causal training; see docs/infill.md)."""
        if requested not in (None, "auto"):
            return lay.Layout(requested)
        return lay.Layout(self.layout_default or ("C" if fmt is lay.PromptFormat.FIM else "A"))

    def pinned(self, requested: int | None) -> int:
        return self.pinned_suffix_tokens if requested is None else requested

    def context_budget(self, requested: int) -> int:
        """The window budget, capped at the longest prompt the model was trained on (minus the header)."""
        if self.trained_prompt_tokens:
            return max(16, min(requested, max(self.trained_prompt_tokens) - HEADER_RESERVE))
        return requested

    def edit_canvas_length(self, default: int) -> int:
        """Edits use the longest canvas the model was trained on (`default`, the model's canvas, may be shorter)."""
        return max(self.trained_canvas_lengths) if self.trained_canvas_lengths else default


_resolved: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def prompting(model) -> ModelPrompting:
    """The model's prompting facts, resolved on first use and kept as long as the model lives."""
    found = _resolved.get(model)
    if found is None:
        found = _resolved[model] = ModelPrompting.from_model(model)
    return found

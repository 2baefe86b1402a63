"""The checkpoint's tokenizer.json through `tokenizers`; special ids are looked up by name, never hard-coded."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from tokenizers import Tokenizer as _HFTokenizer


class TokenizerError(ValueError):
    pass


class Tokenizer:
    def __init__(self, tok: _HFTokenizer, special_names: dict[str, str] | None = None):
        self._tok = tok
        # A second instance reads special-token text as plain text, so document text can never become prompt
        # structure. The flag is state on the object: toggling it per call would race between server threads.
        self._plain = _HFTokenizer.from_str(tok.to_str())
        self._plain.encode_special_tokens = True
        self.vocab_size = tok.get_vocab_size(with_added_tokens=True)
        # Role -> token string, from tokenizer_config.json where the checkpoint has one (Gemma 4 names its
        # turn markers there: sot_token, eot_token, ...).
        self.special_names = dict(special_names or {})

    @classmethod
    def from_dir(cls, path: Path) -> Tokenizer:
        file = Path(path) / "tokenizer.json"
        if not file.exists():
            raise TokenizerError(f"{file}: missing (the checkpoint must ship tokenizer.json)")
        try:
            tok = _HFTokenizer.from_file(str(file))
        except Exception as e:  # tokenizers raises a bare Exception on malformed files
            raise TokenizerError(f"{file}: cannot be loaded ({e})") from None
        names: dict[str, str] = {}
        cfg = Path(path) / "tokenizer_config.json"
        if cfg.exists():
            try:
                d = json.loads(cfg.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise TokenizerError(f"{cfg}: not valid JSON ({e})") from None
            for key, value in d.items():
                if key.endswith("_token") and isinstance(value, str):
                    names[key[: -len("_token")]] = value
                elif key.endswith("_token") and isinstance(value, dict) and isinstance(value.get("content"), str):
                    names[key[: -len("_token")]] = value["content"]
        return cls(tok, names)

    def encode(self, text: str) -> list[int]:
        """Ids for text as plain text: a literal "<eos>" in user code is ordinary text, never the special id.

        No special tokens are added either (prompts place them explicitly)."""
        return self._plain.encode(text, add_special_tokens=False).ids

    def encode_markup(self, text: str) -> list[int]:
        """Ids for template text whose special tokens are written as text (chat turn markers); never for user text."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._plain.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def token_to_id(self, token: str) -> int | None:
        return self._tok.token_to_id(token)

    def id_to_token(self, i: int) -> str | None:
        return self._tok.id_to_token(i)

    def special_id(self, name_or_token: str) -> int:
        """Id of a special token given its role (e.g. "eot" from tokenizer_config) or its literal text."""
        token = self.special_names.get(name_or_token, name_or_token)
        i = self._tok.token_to_id(token)
        if i is None:
            raise TokenizerError(f"token {token!r} is not in this tokenizer")
        return i

    def has(self, token: str) -> bool:
        return self._tok.token_to_id(self.special_names.get(token, token)) is not None

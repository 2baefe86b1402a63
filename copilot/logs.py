"""Logging to stderr or a file, never stdout (stdout carries LSP messages in stdio mode).

Document text may reach a log only through `redact`, which hides it unless tracing is on.
"""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_trace = False  # set by setup(); read by redact() when the caller does not say


def setup(level: str = "info", log_file: str = "", trace: bool = False) -> None:
    """Route all logging (ours and libraries') to one handler on stderr or `log_file`."""
    global _trace
    _trace = trace
    handler: logging.Handler
    if log_file:
        handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # warnings would go to stderr anyway; this puts them in the log file too


def tracing() -> bool:
    return _trace


def redact(text: str, trace: bool | None = None) -> str:
    """`text` itself when tracing, else only its size: document text stays out of logs by default."""
    if trace if trace is not None else _trace:
        return text
    return f"<{len(text)} chars hidden; --trace shows them>"

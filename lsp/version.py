"""The installed distribution's version: the CLI's --version and the server's `initialize` serverInfo."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def dcopilot_version() -> str:
    try:
        return version("dcopilot")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"

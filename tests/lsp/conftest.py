"""Fixtures for the language-server tests; the helpers live in lsp_support.py.

Protocol tests select the deterministic backend (det_backend.py) through DCOPILOT_TEST_SERVICE so they can
assert exact suggestions; tests/lsp/test_lsp_model.py drives the real engine backend.
"""

from pathlib import Path

import pytest
from tiny_checkpoint import write_tiny_checkpoint

from lsp_support import SERVE, server_env


@pytest.fixture
def raw_server():
    """A RawClient factory; every server started is shut down (or killed) after the test."""
    from rawclient import RawClient

    started = []

    def start(deterministic: bool = True, **env):
        client = RawClient(SERVE, server_env(deterministic, **env))
        started.append(client)
        return client

    yield start
    for client in started:
        client.close()


@pytest.fixture(scope="module")
def ready_server():
    """One deterministic `dcopilot serve` over stdio for a whole test module: one candidate, no debounce, status
    ready; it must shut down and exit cleanly after the module's last test."""
    from rawclient import RawClient

    client = RawClient(SERVE, server_env())
    client.initialize(options={"candidates": 1, "debounceMs": 0})
    client.wait_status("ready")
    yield client
    assert client.close() == 0  # shutdown + exit: a clean exit code, after everything the module sent


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("lsp-tiny") / "ckpt", steps=8)


@pytest.fixture(scope="session")
def slow_checkpoint(tmp_path_factory) -> Path:
    """The same tiny model with 5,000 denoising steps: a request runs for many seconds, so it is cancelled mid-run."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("lsp-slow") / "ckpt", steps=5000)

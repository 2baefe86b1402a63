"""`dcopilot serve`: build the real completion service and run the language server on stdio, TCP or a Unix socket.

The model loads on its worker thread after `initialized`; the server answers `initialize` at once. TCP binds
127.0.0.1 only. `DCOPILOT_TEST_SERVICE=module:factory` (undocumented, for tests/lsp) swaps the engine backend
for a deterministic one so protocol tests can assert exact suggestions; the headline tests use the real one.
`DCOPILOT_TEST_COMPILE_BACKEND=eager` (undocumented, for the GPU check's CPU run) compiles the denoise step with
that torch.compile backend instead of inductor, which takes minutes on a CPU.
"""

from __future__ import annotations

import importlib
import logging
import os

from dcopilot.copilot.service import EngineBackend, EngineService
from dcopilot.lsp.listen import serve_tcp, serve_unix
from dcopilot.lsp.server import ServerOptions, build
from dcopilot.lsp.settings import Settings
from dcopilot.lsp.transport import serve_stdio

log = logging.getLogger("dcopilot.daemon")


def make_service(config) -> EngineService:
    spec = os.environ.get("DCOPILOT_TEST_SERVICE", "")
    if spec:
        module, _, name = spec.partition(":")
        log.warning("test service %s in use: suggestions do not come from the model", spec)
        return getattr(importlib.import_module(module), name or "make")(config)
    return EngineService(EngineBackend(config, compile_backend=os.environ.get("DCOPILOT_TEST_COMPILE_BACKEND") or None))


def settings_from(config) -> Settings:
    c = config.completion
    return Settings(
        debounce_ms=c.debounce_ms,
        max_tokens=c.max_tokens,
        hypotheses=c.hypotheses,
        multiline=c.multiline,
        min_score=c.min_score,
    )


def serve_main(config, tcp_port: int | None = None, unix_path: str | None = None) -> int:
    """stdio (one client, the process ends with it), or a shared daemon on TCP / a Unix socket (a session per
    connection over one model; dcopilot.lsp.listen)."""
    options = ServerOptions(
        trace=config.server.trace,
        apply_edit_timeout_s=config.server.apply_edit_timeout_s,
        snippets=config.completion.snippets,
    )
    service = make_service(config)

    def make_server(session_service):
        return build(session_service, options, settings_from(config))

    if unix_path is not None:
        return serve_unix(make_server, service, unix_path, trace=options.trace)
    if tcp_port is not None:
        return serve_tcp(make_server, service, tcp_port, host="127.0.0.1", trace=options.trace)
    return serve_stdio(make_server(service))


if __name__ == "__main__":  # `python -m dcopilot.copilot.daemon`: the same server without the CLI
    from dcopilot.copilot import logs
    from dcopilot.copilot.config import load_config

    cfg = load_config()
    logs.setup(cfg.server.log_level, cfg.server.log_file, cfg.server.trace)
    raise SystemExit(serve_main(cfg))

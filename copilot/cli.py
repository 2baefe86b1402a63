"""The `dcopilot` command: parse arguments, load settings, hand off to the module that does the work.

Those modules are imported only when their subcommand runs, so `--help` is instant and a part that is
not there yet answers "not available yet" instead of breaking the whole command.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
import traceback
import typing
from pathlib import Path
from typing import NamedTuple

from dcopilot.copilot import logs
from dcopilot.copilot.config import Config, ConfigError, ModelConfig, ServerConfig, config_path, load_config
from dcopilot.lsp.version import dcopilot_version

log = logging.getLogger("dcopilot")

EXIT_FAIL, EXIT_USAGE = 1, 2


class UsageError(Exception):
    """Bad arguments or input files: one line on stderr, exit 2."""


class Unavailable(Exception):
    """The subcommand's implementation module is missing or incomplete: one line on stderr, exit 2."""


class TextRange(NamedTuple):
    """A range typed on the command line: 1-based lines and columns (columns count code points)."""

    start_line: int
    start_col: int
    end_line: int
    end_col: int


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    config_error = None
    try:
        config = load_config(getattr(args, "config", None), overrides=_overrides(args))
    except ConfigError as exc:
        if args.command != "doctor":  # doctor reports a bad config in its table instead
            print(f"dcopilot: config error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        config, config_error = Config(), exc
    try:
        logs.setup(config.server.log_level, config.server.log_file, config.server.trace)
    except OSError as exc:
        print(f"dcopilot: cannot open log file {config.server.log_file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    log.debug(
        "dcopilot %s %s; settings file %s", dcopilot_version(), args.command, config_path(getattr(args, "config", None))
    )
    try:
        return args.run(args, config, config_error)
    except (UsageError, Unavailable) as exc:
        print(f"dcopilot {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug or an unexpected failure: one line unless debugging
        if config.server.log_level == "debug":
            traceback.print_exc(file=sys.stderr)
        print(
            f"dcopilot {args.command}: {type(exc).__name__}: {exc} (--log-level debug shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAIL


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="dcopilot",
        parents=[common],
        description="Local code copilot: a diffusion language model fills the span at your cursor, served over LSP.",
        epilog="Settings: config file < DCOPILOT_<SECTION>_<KEY> environment variables < flags. See README.md.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {dcopilot_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, run, help: str, description: str = "") -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=description or help)
        p.set_defaults(run=run)
        return p

    p = command(
        "serve",
        _serve,
        "run the language server (LSP over stdio)",
        "Run the language server. It speaks LSP over stdin/stdout unless --tcp is given; logs go to stderr "
        "or --log-file, never stdout.",
    )
    p.add_argument(
        "--tcp",
        type=_port,
        metavar="PORT",
        help="listen on 127.0.0.1:PORT instead (loopback only; clients send the token from the file it logs)",
    )
    p.add_argument("--unix", metavar="PATH", help="listen on a Unix domain socket at PATH instead (mode 0600)")
    # What LSP clients (vscode-languageclient among them) put on a server's command line.
    p.add_argument("--stdio", action="store_true", help="speak LSP over stdin/stdout (the default)")
    p.add_argument("--clientProcessId", dest="client_pid", metavar="PID", help="exit when process PID has gone")
    for flag in _CLIENT_TRANSPORTS:  # other transports a client may ask for: refused in _serve, in one line
        p.add_argument(flag, dest=flag[2:].replace("-", "_"), nargs="?", const="", help=argparse.SUPPRESS)

    p = command("complete", _complete, "print the completion at a position in a file")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--line", type=_positive, required=True, metavar="N", help="line, 1-based")
    p.add_argument("--col", type=_positive, required=True, metavar="N", help="column in characters, 1-based")
    p.add_argument("--json", action="store_true", help="print candidates and timings as JSON")

    p = command("edit", _edit, "rewrite a range of a file and print the result")
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--range",
        required=True,
        metavar="L1:C1-L2:C2",
        help="range to rewrite, 1-based and end-exclusive, e.g. 3:1-5:10",
    )
    p.add_argument("--instruction", metavar="TEXT", help="what to change (for models that take instructions)")
    p.add_argument("--json", action="store_true", help="print the edit as JSON")

    command(
        "doctor",
        _doctor,
        "check the installation, hardware, settings and model",
        "Print a table of checks. Exit 0 only when the configured model can be served.",
    )
    command(
        "models",
        _models,
        "list the embedded model, the configured model and DiffusionGemma checkpoints in the local HF cache",
        "List models usable without network: the embedded model, the configured one, and DiffusionGemma-like "
        "checkpoints in the local Hugging Face cache (HF_HUB_CACHE, HF_HOME or ~/.cache/huggingface/hub).",
    )
    p = command(
        "bench",
        _bench,
        "measure load time, one denoise step and one completion on this machine",
    )
    p.add_argument(
        "--repeats", type=_positive, default=10, metavar="N", help="denoise steps to time (median; default 10)"
    )
    p.add_argument("--prompt-tokens", type=_positive, default=256, metavar="N", help="prompt length (default 256)")

    p = command("eval", _eval, "score completions on a JSONL file of infilling cases")
    p.add_argument("--cases", required=True, metavar="FILE.jsonl", help="one case per line")
    p.add_argument("--layout", choices=["auto", "A", "B", "C"], help="prompt layout (default: completion.layout)")
    p.add_argument("--hypotheses", type=_positive, metavar="N", help="length hypotheses per case")
    p.add_argument("--limit", type=_positive, metavar="N", help="score only the first N cases")
    return parser


def _common_options() -> argparse.ArgumentParser:
    """Flags accepted before or after the subcommand; SUPPRESS keeps an absent flag from hiding the other."""
    parser = argparse.ArgumentParser(add_help=False)
    p = parser.add_argument_group("settings (before or after COMMAND; override the config file)")
    s = argparse.SUPPRESS
    p.add_argument(
        "--config", metavar="PATH", default=s, help="config file (default: $XDG_CONFIG_HOME/dcopilot/config.toml)"
    )
    p.add_argument("--model", metavar="PATH_OR_REPO", default=s, help="checkpoint directory or cached HF repo id")
    p.add_argument("--device", metavar="auto|cpu|cuda|cuda:N", default=s)
    p.add_argument("--dtype", choices=_choices(ModelConfig, "dtype"), default=s)
    p.add_argument("--quantize", choices=_choices(ModelConfig, "quantize"), default=s)
    p.add_argument("--log-level", choices=_choices(ServerConfig, "log_level"), default=s)
    p.add_argument("--log-file", metavar="PATH", default=s, help="log here instead of stderr")
    p.add_argument("--trace", action="store_true", default=s, help="allow document text in logs")
    return parser


_FLAG_KEYS = {
    "model": "model.path",
    "device": "model.device",
    "dtype": "model.dtype",
    "quantize": "model.quantize",
    "log_level": "server.log_level",
    "log_file": "server.log_file",
    "trace": "server.trace",
    "layout": "completion.layout",
    "hypotheses": "completion.hypotheses",
}


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    return {key: getattr(args, flag) for flag, key in _FLAG_KEYS.items() if getattr(args, flag, None) is not None}


# --- subcommands -----------------------------------------------------------------------------------------


_CLIENT_TRANSPORTS = ("--pipe", "--socket", "--node-ipc")


def _serve(args, config: Config, _error) -> int:
    for flag in _CLIENT_TRANSPORTS:
        if getattr(args, flag[2:].replace("-", "_")) is not None:
            raise UsageError(
                f"{flag} is not supported: dcopilot speaks LSP over stdio (--stdio), --tcp PORT or --unix PATH"
            )
    chosen = [
        flag
        for flag, on in (("--stdio", args.stdio), ("--tcp", args.tcp is not None), ("--unix", args.unix is not None))
        if on
    ]
    if len(chosen) > 1:
        raise UsageError(f"{chosen[0]} and {chosen[1]} exclude each other")
    if args.client_pid is not None:
        if not args.client_pid.isdigit() or int(args.client_pid) < 1:
            raise UsageError(f"bad --clientProcessId {args.client_pid!r}: expected a process id")
        _load("dcopilot.copilot.client_watch", "watch")(int(args.client_pid))
    return _load("dcopilot.copilot.daemon", "serve_main")(config, args.tcp, args.unix)


def _complete(args, config: Config, _error) -> int:
    path, lines = _read_source(args.file)
    _check_position(path, lines, args.line, args.col)
    return _load("dcopilot.copilot.oneshot", "complete_main")(config, path, args.line, args.col, args.json)


def _edit(args, config: Config, _error) -> int:
    text_range = parse_range(args.range)
    path, lines = _read_source(args.file)
    _check_position(path, lines, text_range.start_line, text_range.start_col)
    _check_position(path, lines, text_range.end_line, text_range.end_col)
    return _load("dcopilot.copilot.oneshot", "edit_main")(config, path, text_range, args.instruction, args.json)


def _eval(args, config: Config, _error) -> int:
    cases = Path(args.cases)
    if not cases.is_file():
        raise UsageError(f"{cases}: no such file")
    eval_main = _load("dcopilot.copilot.evaluate", "eval_main")
    return eval_main(config, cases, config.completion.layout, config.completion.hypotheses, args.limit)


def _doctor(args, config: Config, error: ConfigError | None) -> int:
    return _load("dcopilot.copilot.doctor", "doctor_main")(config, config_path(getattr(args, "config", None)), error)


def _models(args, config: Config, _error) -> int:
    return _load("dcopilot.copilot.models_cmd", "models_main")(config)


def _bench(args, config: Config, _error) -> int:
    return _load("dcopilot.copilot.bench_cmd", "bench_main")(config, args.repeats, args.prompt_tokens)


# --- helpers ---------------------------------------------------------------------------------------------


def _load(module: str, function: str):
    """The function that implements a subcommand, or Unavailable with the reason in one line."""
    try:
        found = importlib.import_module(module)
    except ImportError as exc:
        if exc.name == module:
            raise Unavailable(f"not available yet ({module} is not part of this build)") from None
        raise Unavailable(f"not available yet ({module} needs {exc.name or exc}, which is missing)") from None
    if not hasattr(found, function):
        raise Unavailable(f"not available yet ({module} has no {function}())")
    return getattr(found, function)


def parse_range(text: str) -> TextRange:
    found = re.fullmatch(r"\s*(\d+):(\d+)\s*-\s*(\d+):(\d+)\s*", text)
    if not found:
        raise UsageError(f"bad --range {text!r}: expected L1:C1-L2:C2 with 1-based numbers, e.g. 3:1-5:10")
    text_range = TextRange(*map(int, found.groups()))
    if min(text_range) < 1:
        raise UsageError(f"bad --range {text!r}: lines and columns start at 1")
    if text_range[:2] > text_range[2:]:
        raise UsageError(f"bad --range {text!r}: the start comes after the end")
    return text_range


def _read_source(name: str) -> tuple[Path, list[str]]:
    """The file's lines (split like an editor: \\n, \\r\\n or \\r); clear errors for missing or binary files."""
    path = Path(name)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None
    return path, re.split(r"\r\n|\r|\n", text)


def _check_position(path: Path, lines: list[str], line: int, col: int) -> None:
    if line > len(lines):
        raise UsageError(f"line {line} is past the end of {path} ({len(lines)} lines)")
    width = len(lines[line - 1])
    if col > width + 1:
        raise UsageError(f"column {col} is past the end of line {line} of {path} ({width} characters)")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 1-65535, got {text!r}")
    return int(text)


def _choices(section: type, name: str) -> list[str]:
    return list(typing.get_args(typing.get_type_hints(section)[name]))

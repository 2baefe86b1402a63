"""The README's set-up commands, command table and configuration reference agree with the code."""

import re
from pathlib import Path

import msgspec
import pytest
from dcopilot.copilot import cli
from dcopilot.copilot.config import SECTIONS, Config, parse_toml

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _first_block(heading: str, lang: str) -> str:
    section = README.split(f"\n## {heading}\n", 1)[1]
    return re.search(rf"```{lang}\n(.*?)```", section, re.S)[1]


def test_exactly_two_setup_commands_that_point_at_real_files():
    commands = _first_block("Try it", "sh").strip().splitlines()
    assert len(commands) == 2
    install, tests = commands
    assert install.startswith("bash scripts/setup.sh && .venv/bin/dcopilot ")
    assert tests == ".venv/bin/python -m pytest"
    assert (ROOT / "scripts" / "setup.sh").is_file()
    demo = re.search(r"complete (\S+) --line (\d+) --col (\d+)$", install)
    path, lines = cli._read_source(str(ROOT / demo[1]))
    line, col = int(demo[2]), int(demo[3])
    cli._check_position(path, lines, line, col)
    assert lines[line - 1][: col - 1].endswith("total += ")  # where the README says the cursor is


def test_config_example_is_the_defaults():
    assert parse_toml(_first_block("Configuration", "toml")) == Config()


@pytest.mark.parametrize("section", SECTIONS)
def test_config_table_lists_every_key_with_its_default(section):
    defaults = msgspec.structs.asdict(getattr(Config(), section))
    for key, value in defaults.items():
        shown = ("true" if value else "false") if isinstance(value, bool) else repr(value).replace("'", '"')
        row = f"| `{section}.{key}` | `{shown}` |"
        assert row in README, f"README's configuration table lacks {row}"


def test_command_table_lists_every_subcommand():
    names = cli.build_parser()._subparsers._group_actions[0].choices
    for name in names:
        assert f"| `dcopilot {name}" in README

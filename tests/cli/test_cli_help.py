"""Every subcommand answers --help through the real entry point, naming its own options."""

import pytest

SUBCOMMANDS = {
    "serve": ["--tcp", "stdin/stdout", "127.0.0.1"],
    "complete": ["FILE", "--line", "--col", "--json", "1-based"],
    "edit": ["FILE", "--range", "L1:C1-L2:C2", "--instruction", "--json"],
    "doctor": ["Exit 0 only when"],
    "models": ["Hugging Face cache"],
    "bench": ["--repeats", "--prompt-tokens"],
    "eval": ["--cases", "--layout", "--hypotheses", "--limit"],
}
SETTINGS = ["--config", "--model", "--device", "--dtype", "--quantize", "--log-level", "--log-file", "--trace"]


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_subcommand_help(dcopilot, name):
    result = dcopilot(name, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: dcopilot {name}")
    for word in SUBCOMMANDS[name] + SETTINGS:
        assert word in result.stdout, f"{name} --help does not mention {word}"
    assert result.stderr == ""


def test_top_level_help_lists_every_subcommand(dcopilot):
    result = dcopilot("--help")
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert f"\n    {name} " in result.stdout


def test_no_subcommand_is_a_usage_error(dcopilot):
    result = dcopilot()
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage: dcopilot" in result.stderr


def test_unknown_subcommand(dcopilot):
    result = dcopilot("complet")
    assert result.returncode == 2
    assert "invalid choice: 'complet'" in result.stderr


def test_version(dcopilot):
    result = dcopilot("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("dcopilot 0.")


def test_python_dash_m_is_the_same_command(dcopilot, isolated_env, tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "dcopilot.copilot", "models", "--help"], capture_output=True, text=True, env=isolated_env
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: ")

"""Settings: file < environment < flags, and every bad setting named with its key and where it came from."""

import pytest
from dcopilot.copilot import logs
from dcopilot.copilot.config import Config, ConfigError, config_path, load_config, parse_toml, to_toml

FILE = """\
# my settings
[model]
path = "from-file"
dtype = "float16"

[completion]
hypotheses = 2
seed = 7
"""


def test_defaults_without_a_file(tmp_path):
    assert load_config(env={"XDG_CONFIG_HOME": str(tmp_path)}) == Config()


def test_file_then_env_then_flags(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(FILE)
    env = {"DCOPILOT_MODEL_PATH": "from-env", "DCOPILOT_COMPLETION_HYPOTHESES": "4", "DCOPILOT_SERVER_TRACE": "true"}
    config = load_config(path, env=env, overrides={"model.path": "from-flag"})
    assert config.model.path == "from-flag"  # all three set it: the flag wins
    assert config.completion.hypotheses == 4  # file and env: env wins
    assert config.model.dtype == "float16"  # file only
    assert config.completion.seed == 7
    assert config.server.trace is True  # env only, converted from a string
    assert config.completion.layout == "auto"  # nobody: default
    assert load_config(path, env={}).model.path == "from-file"
    assert load_config(path, env=env).model.path == "from-env"


def test_config_path_resolution():
    assert str(config_path(None, {"XDG_CONFIG_HOME": "/x"})) == "/x/dcopilot/config.toml"
    assert str(config_path(None, {"HOME": "/home/u"})) == "/home/u/.config/dcopilot/config.toml"
    assert str(config_path(None, {"XDG_CONFIG_HOME": "/x", "DCOPILOT_CONFIG": "/y.toml"})) == "/y.toml"
    assert str(config_path("/z.toml", {"DCOPILOT_CONFIG": "/y.toml"})) == "/z.toml"


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml", env={})


@pytest.mark.parametrize(
    "text, key, line, detail",
    [
        ("[model]\npath = 'x'\nfoo = 1\n", "model.foo", 3, "unknown setting (keys in [model]: path, device"),
        ("[modle]\npath = 'x'\n", "modle", 1, "unknown setting (sections: model, completion"),
        ("\n\n[model]\ndtype = 16\n", "model.dtype", 4, "Expected `str`, got `int` (one of: auto, float32"),
        ("[completion]\nlayout = 'D'\n", "completion.layout", 2, "Invalid enum value 'D' (one of: auto, A, B, C)"),
        ("[completion]\n  hypotheses = -1\n", "completion.hypotheses", 2, "Expected `int` >= 0"),
        ("[completion]\nhypotheses = '3'\n", "completion.hypotheses", 2, "Expected `int`, got `str`"),
        ("[server]\ntrace = 'yes'\n", "server.trace", 2, "Expected `bool`, got `str`"),
        ("[model]\ndevice = 'gpu'\n", "model.device", 2, "(auto, cpu, cuda or cuda:N)"),
        ("model = 3\n", "model", 1, "Expected `object`, got `int`"),
        ("model.dtype = 'fp8'\n", "model.dtype", 1, "Invalid enum value 'fp8'"),
        ("[edit]\n# renoise = 0.2\nrenoise = 1.5 # too much\n", "edit.renoise", 3, "Expected `float` <= 1.0"),
        ("[model]\npath = 'a'\n[model]\n", None, 3, "invalid TOML"),
        ("[model\n", None, 1, "invalid TOML"),
    ],
)
def test_file_errors_name_key_and_line(text, key, line, detail):
    with pytest.raises(ConfigError) as caught:
        parse_toml(text, "/etc/my.toml")
    error = caught.value
    assert (error.key, error.line) == (key, line)
    assert detail in error.detail
    assert str(error).startswith(f"/etc/my.toml:{line}: " + (f"{key}: " if key else ""))


@pytest.mark.parametrize(
    "name, value, detail",
    [
        ("DCOPILOT_COMPLETION_HYPOTHESES", "three", "Expected `int`, got `str` (got 'three')"),
        ("DCOPILOT_COMPLETION_HYPOTHESES", "99", "Expected `int` <= 16"),
        ("DCOPILOT_SERVER_TRACE", "maybe", "Expected `bool`"),
        ("DCOPILOT_MODEL_QUANTIZE", "int4", "one of: none, nf4, int8"),
        ("DCOPILOT_MODEL_PTH", "/m", "unknown setting (keys in [model]"),
    ],
)
def test_env_errors_name_the_variable(name, value, detail):
    with pytest.raises(ConfigError) as caught:
        load_config(env={"XDG_CONFIG_HOME": "/nonexistent", name: value})
    assert caught.value.source == name
    assert detail in caught.value.detail


@pytest.mark.parametrize(
    "value, expected", [("1", True), ("true", True), ("Yes", True), ("on", True), ("0", False), ("off", False)]
)
def test_env_booleans(value, expected):
    assert load_config(env={"DCOPILOT_SERVER_TRACE": value, "XDG_CONFIG_HOME": "/x"}).server.trace is expected


def test_env_numbers_and_unrelated_variables():
    env = {"DCOPILOT_EDIT_RENOISE": "0.25", "DCOPILOT_COMPLETION_MAX_TOKENS": "32", "DCOPILOT_SOMETHING": "x"}
    config = load_config(env=env | {"XDG_CONFIG_HOME": "/x"})
    assert (config.edit.renoise, config.completion.max_tokens) == (0.25, 32)


def test_flag_errors():
    with pytest.raises(ConfigError, match=r"model\.device"):
        load_config(env={"XDG_CONFIG_HOME": "/x"}, overrides={"model.device": "tpu"})


def test_to_toml_round_trips():
    config = load_config(env={"XDG_CONFIG_HOME": "/x", "DCOPILOT_MODEL_PATH": 'C:\\m "q"'})
    assert parse_toml(to_toml(config)) == config


def test_cli_reports_file_error_without_traceback(dcopilot, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\npath = ''\nquantise = 'nf4'\n")
    result = dcopilot("--config", str(bad), "models")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert f"config error: {bad}:3: model.quantise: unknown setting" in result.stderr


def test_cli_reports_wrong_type_from_default_location(dcopilot, tmp_path):
    default = tmp_path / "xdg" / "dcopilot" / "config.toml"
    default.parent.mkdir(parents=True)
    default.write_text("[completion]\nmax_tokens = 'many'\n")
    result = dcopilot("models")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{default}:2: completion.max_tokens: Expected `int`, got `str`" in result.stderr


def test_cli_reports_env_error(dcopilot):
    result = dcopilot("models", env={"DCOPILOT_MODEL_DTYPE": "fp4"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "DCOPILOT_MODEL_DTYPE: model.dtype: Invalid enum value 'fp4'" in result.stderr


def test_cli_precedence_end_to_end(dcopilot, tmp_path):
    """doctor prints the model in effect: the file's, overridden by env, overridden by --model."""
    conf = tmp_path / "c.toml"
    conf.write_text("[model]\npath = '/models/from-file'\n")
    from_file = dcopilot("--config", str(conf), "doctor")
    from_env = dcopilot("--config", str(conf), "doctor", env={"DCOPILOT_MODEL_PATH": "/models/from-env"})
    from_flag = dcopilot(
        "--config", str(conf), "doctor", "--model", "/models/from-flag", env={"DCOPILOT_MODEL_PATH": "/models/from-env"}
    )
    assert "/models/from-file" in from_file.stdout
    assert "/models/from-env" in from_env.stdout and "/models/from-file" not in from_env.stdout
    assert "/models/from-flag" in from_flag.stdout and "/models/from-env" not in from_flag.stdout


def test_redact_hides_text_unless_tracing():
    secret = "password = 'hunter2'"
    assert "hunter2" not in logs.redact(secret, trace=False)
    assert str(len(secret)) in logs.redact(secret, trace=False)
    assert logs.redact(secret, trace=True) == secret


def test_logs_go_to_stderr_or_file_never_stdout(dcopilot, tmp_path):
    quiet = dcopilot("--log-level", "debug", "models")
    assert "DEBUG" in quiet.stderr and "DEBUG" not in quiet.stdout
    log_file = tmp_path / "d.log"
    to_file = dcopilot("--log-level", "debug", "--log-file", str(log_file), "models")
    assert "DEBUG" in log_file.read_text() and "DEBUG" not in to_file.stderr + to_file.stdout

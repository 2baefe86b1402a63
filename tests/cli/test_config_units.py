"""copilot/config.py without the CLI: error messages and where they point, key-line lookup, environment names,
value conversion, and the doctor's TOML round trip (hypothesis)."""

import string

import msgspec
import pytest
from dcopilot.copilot import config as cfg
from dcopilot.copilot.config import Config, ConfigError, config_path, load_config, parse_toml, to_toml
from hypothesis import given
from hypothesis import strategies as st

# Survivors of `python scripts/mutation.py copilot/config.py` that cannot change behaviour: (function, mutated
# line, why). The runner marks a survivor equivalent only when it is listed here.
EQUIVALENT_MUTANTS = [
    ("_read", 'return file.read_bytes().decode("UTF-8")', "codec names are case-insensitive"),
    (
        "_apply",
        'raise ConfigError("unknown setting" + _known_keys_hint(None), key=key, source=source)',
        "None and [] are both an empty section path",
    ),
    ("_apply", "converted = msgspec.convert(value, field.type, strict=None)", "None is as false as False"),
    (
        "_toml_string",
        'return \'"\' + re.sub(r"[\\x00-\\x08\\x0A-\\x1F\\x7F]", lambda m: f"\\\\u{ord(m[0]):04x}", escaped) + \'"\'',
        "hex escapes in a pattern are case-insensitive",
    ),
]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(key="model.dtype", source="/c.toml", line=3), "/c.toml:3: model.dtype: bad"),
        (dict(key="model.dtype", source="/c.toml"), "/c.toml: model.dtype: bad"),
        (dict(source="DCOPILOT_X", line=0), "DCOPILOT_X: bad"),
        (dict(key="a.b"), "a.b: bad"),
        ({}, "bad"),
    ],
)
def test_config_error_message(kwargs, message):
    error = ConfigError("bad", **kwargs)
    assert str(error) == message
    assert (error.detail, error.key, error.source, error.line) == (
        "bad",
        kwargs.get("key"),
        kwargs.get("source", ""),
        kwargs.get("line"),
    )


def test_config_path_order(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    env = {"DCOPILOT_CONFIG": "~/from-env.toml", "XDG_CONFIG_HOME": "/xdg", "HOME": "/home/h"}
    assert config_path("~/flag.toml", env) == tmp_path / "flag.toml"
    assert config_path(None, env) == tmp_path / "from-env.toml"
    assert config_path("", {"XDG_CONFIG_HOME": "/xdg", "DCOPILOT_CONFIG": ""}) == cfg.Path("/xdg/dcopilot/config.toml")
    assert config_path(None, {"HOME": "/home/h"}) == cfg.Path("/home/h/.config/dcopilot/config.toml")
    assert config_path(None, {"XDG_CONFIG_HOME": ""}) == tmp_path / ".config" / "dcopilot" / "config.toml"


def test_a_missing_default_file_means_defaults_but_a_present_one_is_read(tmp_path):
    assert load_config(env={"XDG_CONFIG_HOME": str(tmp_path)}) == Config()
    (tmp_path / "dcopilot").mkdir()
    (tmp_path / "dcopilot" / "config.toml").write_text("[completion]\nseed = 5\n")
    assert load_config(env={"XDG_CONFIG_HOME": str(tmp_path)}).completion.seed == 5


def test_an_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(env={"DCOPILOT_CONFIG": str(tmp_path / "none.toml")})
    assert (caught.value.detail, caught.value.source) == ("config file not found", str(tmp_path / "none.toml"))


def test_file_errors_name_the_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[model]\ndtype = 3\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert (caught.value.source, caught.value.line, str(caught.value)) == (
        str(path),
        2,
        f"{path}:2: model.dtype: Expected `str`, got `int` (one of: auto, float32, bfloat16, float16)",
    )
    with pytest.raises(ConfigError) as caught:
        parse_toml("[model]\ndtype = 3\n")
    assert caught.value.source == "config.toml"


def test_non_ascii_file_is_read_as_utf8(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes('[model]\npath = "/mödels/数据"\n'.encode())
    assert load_config(path, env={}).model.path == "/mödels/数据"


def test_unreadable_files(tmp_path):
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe[model]\n")
    with pytest.raises(ConfigError, match="^" + str(binary) + ": config file is not UTF-8 text$"):
        load_config(binary, env={})
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, env={})
    assert (caught.value.detail, caught.value.source) == ("cannot read config file: Is a directory", str(tmp_path))


def test_env_is_applied_in_name_order_and_flags_last(tmp_path):
    env = {"DCOPILOT_MODEL_PATH": "env", "DCOPILOT_COMPLETION_SEED": "3", "XDG_CONFIG_HOME": str(tmp_path)}
    config = load_config(env=env, overrides={"completion.seed": 9, "model.path": None})
    assert (config.model.path, config.completion.seed) == ("env", 9)  # a None flag is not set


@pytest.mark.parametrize(
    "name, key",
    [
        ("DCOPILOT_COMPLETION_MAX_TOKENS", "completion.max_tokens"),
        ("DCOPILOT_SERVER_APPLY_EDIT_TIMEOUT_S", "server.apply_edit_timeout_s"),
        ("DCOPILOT_EDIT_RENOISE", "edit.renoise"),
        ("DCOPILOT_CONFIG", None),
        ("DCOPILOT_MODELPATH", None),
        ("XDCOPILOT_MODEL_PATH", None),
        ("MODEL_PATH", None),
    ],
)
def test_env_key(name, key):
    assert cfg._env_key(name) == key


@pytest.mark.parametrize(
    "key, value, detail",
    [
        ("nope.x", "1", "unknown setting (sections: model, completion, edit, server)"),
        ("model", "1", "unknown setting (sections: model, completion, edit, server)"),
        ("model.", "1", "unknown setting (sections: model, completion, edit, server)"),
        ("edit.amount", "1", "unknown setting (keys in [edit]: renoise, candidates, min_score)"),
        ("model.dtype", "fp8", "Invalid enum value 'fp8' (one of: auto, float32, bfloat16, float16) (got 'fp8')"),
        ("model.device", "tpu", "Expected `str` (auto, cpu, cuda or cuda:N) (got 'tpu')"),
        ("completion.hypotheses", 17, "Expected `int` <= 16 (got 17)"),
        ("model.threads", -1, "Expected `int` >= 0 (got -1)"),
        ("model.threads", 1025, "Expected `int` <= 1024 (got 1025)"),
        ("completion.min_score", 0.5, "Expected `float` <= 0.0 (got 0.5)"),
        ("completion.min_score", -100.5, "Expected `float` >= -100.0 (got -100.5)"),
        ("completion.min_score", "low", "Expected `float`, got `str` (got 'low')"),
        ("completion.snippets", -1, "Expected `int` >= 0 (got -1)"),
        ("completion.snippets", 17, "Expected `int` <= 16 (got 17)"),
        ("completion.retrieve", "maybe", "Expected `bool`, got `str` (got 'maybe')"),
        (
            "model.path.x",
            "1",
            "unknown setting (keys in [model]: path, device, dtype, quantize, prompt_format, compile, threads)",
        ),
        ("server.trace", "maybe", "Expected `bool`, got `str` (got 'maybe')"),
    ],
)
def test_apply_errors(key, value, detail):
    with pytest.raises(ConfigError) as caught:
        load_config(env={"XDG_CONFIG_HOME": "/x"}, overrides={key: value})
    assert (caught.value.detail, caught.value.key, caught.value.source) == (detail, key, f"flag for {key}")


@pytest.mark.parametrize(
    "value, expected",
    [
        ("yes", True),
        ("ON", True),
        ("No", False),
        ("off", False),
        ("FALSE", False),
        ("True", True),
        (True, True),
        ("1", True),
        ("0", False),
        ("Yes", True),
        ("oN", True),
        ("NO", False),
        ("Off", False),
    ],
)
def test_boolean_words(value, expected):
    assert load_config(env={"XDG_CONFIG_HOME": "/x"}, overrides={"server.trace": value}).server.trace is expected


def test_strings_are_not_lowercased_unless_boolean():
    config = load_config(env={"XDG_CONFIG_HOME": "/x"}, overrides={"model.path": "My/Model", "model.device": "cuda:1"})
    assert (config.model.path, config.model.device) == ("My/Model", "cuda:1")


@pytest.mark.parametrize(
    "text, key, line, detail",
    [
        (
            "[model]\nbogus = 1\n",
            "model.bogus",
            2,
            "unknown setting (keys in [model]: path, device, dtype, quantize, prompt_format, compile, threads)",
        ),
        ("bogus = 1\n", "bogus", 1, "unknown setting (sections: model, completion, edit, server)"),
        ("[model.extra]\nx = 1\n", "model.extra", 1, "unknown setting (keys in [model]:"),
        ("[model]\ndevice = 'gpu'\n", "model.device", 2, "Expected `str` (auto, cpu, cuda or cuda:N)"),
        (
            "[model]\ndtype = 'fp8'\n",
            "model.dtype",
            2,
            "Invalid enum value 'fp8' (one of: auto, float32, bfloat16, float16)",
        ),
        ("[completion]\nseed = 'x'\n", "completion.seed", 2, "Expected `int`, got `str`"),
        ("[ model ]\n\n  'dtype' = 1\n", "model.dtype", 3, "Expected `str`, got `int`"),
        (
            "[server]\ntrace = true\n[model]\ncompile = 'yes'\n",
            "model.compile",
            4,
            "Invalid enum value 'yes' (one of: auto, on, off)",
        ),
        ("model = { dtype = 1 }\n", "model.dtype", 1, "Expected `str`, got `int`"),  # inline table: its line
        ("[model]\n[completion]\nhypotheses = -1\n", "completion.hypotheses", 3, "Expected `int` >= 0"),
        ("[completion]\n[model]\n", None, None, None),
    ],
)
def test_file_errors(text, key, line, detail):
    if detail is None:
        assert parse_toml(text) == Config()
        return
    with pytest.raises(ConfigError) as caught:
        parse_toml(text, "c.toml")
    assert (caught.value.key, caught.value.line) == (key, line)
    assert caught.value.detail.startswith(detail)


@pytest.mark.parametrize(
    "text, key, line",
    [
        ("[model]\npath = 'a'\ndtype = 'b'\n", "model.dtype", 3),
        ("[model]\npath = 'a'\n", "model.dtype", 1),  # not set there: its table's header
        ("model.dtype = 'b'\n", "model.dtype", 1),
        ("[completion]\ndtype = 1\n[model]\ndtype = 2\n", "model.dtype", 4),
        ('["model"]\n"dtype" = 1\n', "model.dtype", 2),
        ("x = 1\n", "model.dtype", None),
        ("[model]\n", None, None),
        ("[server]\n[model]\n[model.sub]\n", "model.dtype", 2),  # the first matching header
        ("[model]\nx = 1\n[model]\n", "model.dtype", 1),
        ("[server]\ntrace = 1\n", "model.dtype", None),  # other tables do not count
        ("[model]\nPath = 1\n", "model.Path", 2),
        ("[X]\nX = 1\n", "X.X", 2),
        ("[model]\n  dtype=1\n", "model.dtype", 2),
    ],
)
def test_key_line(text, key, line):
    assert cfg._key_line(text, key) == line


@pytest.mark.parametrize(
    "message, key, detail",
    [
        ("Expected `int`, got `str` - at `$.completion.seed`", "completion.seed", "Expected `int`, got `str`"),
        (
            "Object contains unknown field `zz` - at `$.model`",
            "model.zz",
            "unknown setting (keys in [model]: path, device, dtype, quantize, prompt_format, compile, threads)",
        ),
        ("Object contains unknown field `zz`", "zz", "unknown setting (sections: model, completion, edit, server)"),
        ("Object contains unknown field `q` - at `$.model.x`", "model.x.q", "unknown setting"),
        (
            "Expected `str` matching regex '^a$' - at `$.model.device`",
            "model.device",
            "Expected `str` (auto, cpu, cuda or cuda:N)",
        ),
        ("Expected `object`, got `int` - at `$.nosuch.thing`", "nosuch.thing", "Expected `object`, got `int`"),
        ("Expected `object`, got `int`", None, "Expected `object`, got `int`"),
        ("Expected `int`, got `str` - at `$.completion.maxX`", "completion.maxX", "Expected `int`, got `str`"),
    ],
)
def test_split_validation_error(message, key, detail):
    assert cfg._split_validation_error(message) == (key, detail)


def test_invalid_toml_keeps_its_line_and_drops_the_position():
    with pytest.raises(ConfigError) as caught:
        parse_toml("[model]\npath = 'a'\npath = 'b'\n", "c.toml")
    assert (caught.value.line, caught.value.key) == (3, None)
    assert caught.value.detail == "invalid TOML: Cannot overwrite a value"
    with pytest.raises(ConfigError) as caught:
        parse_toml("[model", "c.toml")  # an error at the end of the document has no line
    assert caught.value.line is None
    assert caught.value.detail == "invalid TOML: Expected ']' at the end of a table declaration (at end of document)"


SAFE_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)


@given(
    path=SAFE_TEXT,
    trace=st.booleans(),
    renoise=st.floats(0.0, 1.0),
    seed=st.integers(-(2**63), 2**63 - 1),
    dtype=st.sampled_from(["auto", "float32", "bfloat16", "float16"]),
)
def test_to_toml_round_trips_any_value(path, trace, renoise, seed, dtype):
    config = Config(
        model=cfg.ModelConfig(path=path, dtype=dtype),
        completion=cfg.CompletionConfig(seed=seed),
        edit=cfg.EditConfig(renoise=renoise),
        server=cfg.ServerConfig(trace=trace, log_file=path),
    )
    assert parse_toml(to_toml(config)) == config


def test_to_toml_layout():
    text = to_toml(Config(server=cfg.ServerConfig(trace=True, log_file='C:\\logs\\"x"')))
    assert text.startswith('[model]\npath = ""\ndevice = "auto"\n')
    assert '\n[server]\nlog_level = "info"\nlog_file = "C:\\\\logs\\\\\\"x\\""\ntrace = true\n' in text
    assert "\nhypotheses = 0\n" in text and "\nrenoise = 0.5\n" in text and text.endswith("\n\n") is False
    assert text.endswith("apply_edit_timeout_s = 30.0\n")


def test_sections_are_the_config_fields():
    assert list(cfg.SECTIONS) == ["model", "completion", "edit", "server"]
    assert cfg.SECTIONS["edit"] is cfg.EditConfig
    assert isinstance(msgspec.structs.fields(Config)[0], msgspec.structs.FieldInfo)
    assert set(string.ascii_lowercase) >= set("".join(cfg.SECTIONS))


def test_min_score_from_env_file_and_default():
    assert Config().completion.min_score == cfg.defaults.MIN_SCORE
    env = {"XDG_CONFIG_HOME": "/x", "DCOPILOT_COMPLETION_MIN_SCORE": "-1.5"}
    assert load_config(env=env).completion.min_score == -1.5
    assert parse_toml("[completion]\nmin_score = -100\n").completion.min_score == -100.0
    with pytest.raises(ConfigError) as caught:
        parse_toml("[completion]\nmin_score = 0.25\n", "c.toml")
    assert (caught.value.key, caught.value.line) == ("completion.min_score", 2)


def test_per_device_defaults_are_auto_and_threads_come_from_env_or_file():
    c = Config()
    assert (c.completion.max_tokens, c.completion.hypotheses, c.model.threads) == (0, 0, 0)
    assert c.completion.max_tokens == cfg.defaults.AUTO and c.completion.hypotheses == cfg.defaults.AUTO
    assert load_config(env={"XDG_CONFIG_HOME": "/x", "DCOPILOT_MODEL_THREADS": "4"}).model.threads == 4
    assert parse_toml("[model]\nthreads = 1024\n").model.threads == 1024
    assert parse_toml("[completion]\nhypotheses = 0\nmax_tokens = 0\n") == Config()

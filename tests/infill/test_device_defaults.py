"""Per-device completion defaults: max_tokens and hypotheses of 0 (AUTO) become the device's (real engine path)."""

import pytest
from dcopilot.copilot.config import Config, load_config
from dcopilot.copilot.requests import infill_request, torch_threads
from dcopilot.engine.tasks.infill import run_infill, step_shapes
from dcopilot.engine.tasks.requests import AUTO, DEVICE_DEFAULTS, InfillRequest, device_defaults, for_device


@pytest.mark.parametrize(
    "device, expected",
    [
        ("cpu", (16, 2)),
        ("cuda", (64, 3)),
        ("cuda:1", (64, 3)),
        ("mps", (16, 2)),  # anything that is not CUDA runs like a CPU
        ("cudax", (16, 2)),
    ],
)
def test_device_defaults_table(device, expected):
    d = device_defaults(device)
    assert (d.max_tokens, d.hypotheses) == expected


@pytest.mark.parametrize(
    "max_tokens, hypotheses, device, expected",
    [
        (AUTO, AUTO, "cpu", (16, 2)),
        (AUTO, AUTO, "cuda", (64, 3)),
        (40, AUTO, "cpu", (40, 2)),  # a value the user set is kept
        (AUTO, 5, "cuda:0", (64, 5)),
        (8, 1, "cuda", (8, 1)),
    ],
)
def test_for_device_fills_only_auto(max_tokens, hypotheses, device, expected):
    req = for_device(InfillRequest(text="x", cursor=1, max_tokens=max_tokens, hypotheses=hypotheses), device)
    assert (req.max_tokens, req.hypotheses) == expected
    assert (req.text, req.cursor) == ("x", 1)


def test_shipped_settings_are_auto():
    c = Config().completion
    assert (c.max_tokens, c.hypotheses) == (AUTO, AUTO)
    assert set(DEVICE_DEFAULTS) == {"cpu", "cuda"}


def test_a_cpu_completion_runs_the_cpu_defaults(tiny_model):
    """The request the server builds from the shipped config gives 2 canvases of a 16-token middle on a CPU."""
    text = "def f(a, b):\n    return \n"
    req = infill_request(Config(), text=text, cursor=text.index("return ") + 7, max_candidates=3)
    result = run_infill(tiny_model, req)
    assert len(result.canvases) == DEVICE_DEFAULTS["cpu"].hypotheses == 2
    assert {len(c) for c in result.canvases} == {min(tiny_model.canvas_length, 16 + 1 + len(result.tail))}
    shapes, _ = step_shapes(tiny_model, req)
    assert {s.batch for s in shapes if s.sampled} == {2}  # the scoring pass has its own rows


def test_an_explicit_setting_wins(tiny_model):
    env = {
        "XDG_CONFIG_HOME": "/nonexistent",
        "DCOPILOT_COMPLETION_HYPOTHESES": "1",
        "DCOPILOT_COMPLETION_MAX_TOKENS": "4",
    }
    text = "x = [1, 2, 3]\ny = \n"
    result = run_infill(tiny_model, infill_request(load_config(env=env), text=text, cursor=text.index("y = ") + 4))
    assert len(result.canvases) == 1
    assert len(result.canvases[0]) == 4 + 1 + len(result.tail) < tiny_model.canvas_length


@pytest.mark.parametrize(
    "setting, device, env, expected",
    [
        (0, "cpu", {}, 1),  # one intra-op thread on a CPU
        (0, "cuda", {}, 0),  # torch's own on CUDA
        (0, "cuda:1", {}, 0),
        (3, "cpu", {}, 3),  # model.threads set: it wins
        (0, "cpu", {"OMP_NUM_THREADS": "4"}, 0),  # the environment's, which torch already read
        (2, "cpu", {"OMP_NUM_THREADS": "4"}, 2),
        (0, "cpu", {"OMP_NUM_THREADS": ""}, 1),
    ],
)
def test_torch_threads_table(setting, device, env, expected):
    assert torch_threads(setting, device, env) == expected

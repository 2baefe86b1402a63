"""The score fit a checkpoint carries (dcopilot.engine.tasks.score_fit): read, written, and a missing or corrupt one."""

import json

import pytest
from dcopilot.engine.runtime.loader import EMBEDDED_DIR
from dcopilot.engine.tasks import score_fit
from dcopilot.engine.tasks.calibrate import FEATURES, ScoreFit


@pytest.fixture(autouse=True)
def _fresh():
    score_fit.for_checkpoint.cache_clear()
    yield
    score_fit.for_checkpoint.cache_clear()


def test_the_embedded_model_carries_its_own_fit_with_a_ceiling_for_written_text():
    fitted = score_fit.for_checkpoint(EMBEDDED_DIR)
    assert fitted.own
    # Agreement is left out of the shipped fit (weight 0), so a text the model writes has a bounded score.
    assert fitted.fit.weights[FEATURES.index("agreement")] == 0.0
    assert -10.0 < fitted.fit.ceiling() < 0.0


def test_a_checkpoint_without_a_fit_ranks_with_the_embedded_one_and_is_marked_unfitted(tmp_path):
    fitted = score_fit.for_checkpoint(tmp_path)
    assert not fitted.own
    assert fitted.fit == score_fit.for_checkpoint(EMBEDDED_DIR).fit
    assert score_fit.for_checkpoint(None) == fitted  # a model with no directory (built in memory)


def test_a_written_fit_is_what_the_checkpoint_then_carries(tmp_path):
    fit = ScoreFit(tuple(0.5 for _ in FEATURES), -1.25)
    assert not score_fit.for_checkpoint(tmp_path).own  # read (and cached) before the fit is written
    file = score_fit.write(tmp_path, fit, "a test")
    assert file == tmp_path / score_fit.FILE
    assert json.loads(file.read_text())["fitted_on"] == "a test"
    assert score_fit.for_checkpoint(tmp_path) == score_fit.Fitted(fit, True)


class _Model:
    def __init__(self, path):
        self.path = path


def test_of_model_reads_the_models_directory(tmp_path):
    fit = ScoreFit(tuple(0.25 for _ in FEATURES), -2.0)
    score_fit.write(tmp_path, fit, "")
    assert score_fit.of_model(_Model(str(tmp_path))).fit == fit
    assert not score_fit.of_model(object()).own  # no path at all


@pytest.mark.parametrize(
    "content,why",
    [
        ("{", "Expecting"),
        ('{"weights": {}, "bias": 0}', "other features"),
        ("[]", "expected"),
        (b"\xff\xfe{", "decode"),
    ],
)
def test_a_corrupt_fit_is_an_error_that_names_the_file(tmp_path, content, why):
    file = tmp_path / score_fit.FILE
    (file.write_bytes if isinstance(content, bytes) else file.write_text)(content)
    with pytest.raises(score_fit.ScoreFitError, match=why) as e:
        score_fit.for_checkpoint(tmp_path)
    assert str(file) in str(e.value) and "--write" in str(e.value)

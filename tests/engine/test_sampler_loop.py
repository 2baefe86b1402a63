"""The sampler loop on a real (tiny, random) model: seeds, pinning, seed canvases, canvas lengths, hypotheses
sharing one cache, cancellation and stats."""

import dataclasses
from typing import ClassVar

import pytest
import torch
from dcopilot.engine.runtime.config import GenerationConfig
from dcopilot.engine.runtime.loader import load_model
from dcopilot.engine.runtime.sampler import Cancelled, generate, sample


@pytest.fixture(scope="module")
def model(reference_checkpoint):
    return load_model(reference_checkpoint, device="cpu", dtype=torch.float32)


@pytest.fixture(scope="module")
def cache(model):
    prompt = torch.randint(5, 128, (1, 19), generator=torch.Generator().manual_seed(0))
    return model.encode(prompt)


def _gen(model, **kw):
    return dataclasses.replace(model.generation, **{"max_denoising_steps": 8, **kw})


class Recorder:
    """Wraps the real model's denoise to record the canvases it was given."""

    def __init__(self, model):
        self.model, self.canvases = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def denoise(self, canvas, cache, self_conditioning_logits=None):
        self.canvases.append(canvas.clone())
        return self.model.denoise(canvas, cache, self_conditioning_logits=self_conditioning_logits)


def test_same_seed_same_tokens_other_seed_other_tokens(model, cache):
    run = lambda s: sample(model, cache, 6, 2, generation=_gen(model), generator=torch.Generator().manual_seed(s))  # noqa: E731
    a, b, c = run(1), run(1), run(2)
    assert a.tokens.shape == (2, 6) and a.tokens.dtype == torch.long
    assert torch.equal(a.tokens, b.tokens)
    assert not torch.equal(a.tokens, c.tokens)
    assert int(a.tokens.min()) >= 0 and int(a.tokens.max()) < model.config.vocab_size


def test_cache_is_not_modified_by_sampling(model, cache):
    length, keys = cache.length, [k if k is None else k.clone() for k in cache.keys]
    sample(model, cache, 6, 3, generation=_gen(model), generator=torch.Generator().manual_seed(0))
    assert cache.length == length
    assert all(torch.equal(a, b) for a, b in zip(keys, cache.keys, strict=True) if a is not None)


def test_pinned_positions_hold_the_seed_on_every_step(model, cache):
    seed = torch.tensor([[7, 8, 9, 10, 11, 12, 13, 14]])
    pinned = torch.tensor([[False, False, False, False, False, True, True, True]])
    rec = Recorder(model)
    result = sample(
        rec,
        cache,
        8,
        3,
        seed_canvas=seed,
        pinned=pinned,
        generation=_gen(model),
        generator=torch.Generator().manual_seed(3),
    )
    assert rec.canvases and torch.equal(rec.canvases[0], seed.expand(3, 8))  # starts from the seed
    for canvas in rec.canvases:
        assert torch.equal(canvas[:, 5:], seed[:, 5:].expand(3, 3))
    assert torch.equal(result.tokens[:, 5:], seed[:, 5:].expand(3, 3))
    # free positions do move (the seed is only a starting point for them)
    assert any(not torch.equal(c[:, :5], seed[:, :5].expand(3, 5)) for c in rec.canvases[1:])
    # pinned positions never count as accepted: at most 5 free positions per row
    assert all(0 < n <= 3 * 5 for n in result.stats.accepted_per_step)


def test_seed_canvas_without_pins_is_only_the_start(model, cache):
    seed = torch.full((1, 6), 42)
    rec = Recorder(model)
    sample(rec, cache, 6, 1, seed_canvas=seed, generation=_gen(model), generator=torch.Generator().manual_seed(0))
    assert torch.equal(rec.canvases[0], seed)
    assert not torch.equal(rec.canvases[-1], seed)


@pytest.mark.parametrize("length", [1, 3, 6, 10])
def test_canvas_lengths_other_than_the_models(model, cache, length):
    rec = Recorder(model)
    result = sample(rec, cache, length, 2, generation=_gen(model), generator=torch.Generator().manual_seed(length))
    assert result.tokens.shape == (2, length)
    assert all(c.shape == (2, length) for c in rec.canvases)


def test_hypotheses_share_a_batch_one_cache(model):
    """B canvases on a batch-1 cache see what B canvases on B copies of the prompt's cache see."""
    prompt = torch.randint(5, 128, (1, 12), generator=torch.Generator().manual_seed(4))
    shared = model.encode(prompt)
    copies = model.encode(prompt.expand(3, -1))
    canvas = torch.randint(0, 128, (3, 6), generator=torch.Generator().manual_seed(5))
    # Batch 1 and batch 3 caches run differently shaped GEMMs whose reductions round differently (~1e-5 on some
    # CPUs), so the tolerance is float32 noise, far below any real difference in what the canvases see.
    torch.testing.assert_close(model.denoise(canvas, shared), model.denoise(canvas, copies), rtol=1e-4, atol=1e-4)
    result = sample(model, shared, 6, 3, generation=_gen(model), generator=torch.Generator().manual_seed(9))
    assert shared.batch == 1 and result.tokens.shape == (3, 6)
    assert len({tuple(r) for r in result.tokens.tolist()}) > 1  # rows are independent draws


def test_stats_report_steps_and_acceptances(model, cache):
    result = sample(
        model, cache, 6, 2, generation=_gen(model, max_denoising_steps=5), generator=torch.Generator().manual_seed(0)
    )
    stats = result.stats
    assert stats.steps == 5 and not stats.cancelled and stats.seconds > 0
    assert len(stats.accepted_per_step) == 5
    assert all(2 <= n <= 12 for n in stats.accepted_per_step)  # >= 1 per row, <= every position


def test_early_stop_ends_before_the_step_budget(model, cache):
    gen = _gen(model, max_denoising_steps=30, stability_threshold=0, confidence_threshold=10.0)
    result = sample(model, cache, 6, 2, generation=gen, generator=torch.Generator().manual_seed(0))
    assert result.stats.steps == 1  # stability off and every entropy below 10 nats: done after one step


def test_cancel_stops_between_steps(model, cache):
    rec = Recorder(model)
    polls = []

    def cancel():
        polls.append(len(rec.canvases))
        return len(rec.canvases) >= 2

    with pytest.raises(Cancelled) as info:
        sample(rec, cache, 6, 1, generation=_gen(model), generator=torch.Generator().manual_seed(0), cancel=cancel)
    assert len(rec.canvases) == 2 and polls == [0, 1, 2]
    assert info.value.stats.cancelled and info.value.stats.steps == 2


def test_cancel_before_any_step(model, cache):
    rec = Recorder(model)
    with pytest.raises(Cancelled):
        sample(rec, cache, 6, 1, generation=_gen(model), cancel=lambda: True)
    assert rec.canvases == []


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"pinned": torch.ones(1, 6, dtype=torch.bool)}, "seed_canvas"),
        ({"seed_canvas": torch.full((1, 6), 5), "pinned": torch.ones(1, 6, dtype=torch.bool)}, "every position"),
        ({"seed_canvas": torch.full((1, 6), 128)}, "seed_canvas ids"),
        ({"seed_canvas": torch.full((1, 6), -1)}, "seed_canvas ids"),
        ({"draw": "gumbel"}, "draw method"),
    ],
)
def test_bad_inputs_raise_clear_errors(model, cache, kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample(model, cache, 6, 1, generation=_gen(model), **kwargs)


@pytest.mark.parametrize("length, batch", [(0, 1), (6, 0)])
def test_empty_canvas_is_rejected(model, cache, length, batch):
    with pytest.raises(ValueError, match="positive"):
        sample(model, cache, length, batch)


@pytest.mark.parametrize("draw", ["race", "cdf"])
def test_both_draw_methods_run_and_are_reproducible(model, cache, draw):
    def run():
        return sample(
            model, cache, 6, 2, generation=_gen(model), draw=draw, generator=torch.Generator().manual_seed(4)
        ).tokens

    assert torch.equal(run(), run())


def test_generate_commits_canvases_into_the_cache(model):
    prompt = torch.randint(5, 128, (2, 9), generator=torch.Generator().manual_seed(1))
    cache = model.encode(prompt)
    gen = _gen(model, eos_token_ids=())  # no stop ids: always three canvases
    result = generate(model, prompt, 13, generation=gen, generator=torch.Generator().manual_seed(0), cache=cache)
    assert result.tokens.shape == (2, 18) and len(result.stats) == 3
    assert cache.length == 9 + 12  # the last canvas is returned, not committed


def test_generate_rejects_nonpositive_lengths(model):
    with pytest.raises(ValueError):
        generate(model, torch.tensor([[5, 6]]), 0)


def test_absorbing_noise_starts_from_and_renoises_with_the_noise_token(model, cache):
    """noise_token_id: every slot starts as that id, every slot not accepted goes back to it, and it is never an
    answer (even where the random model would rank it first)."""
    noise = 3
    rec = Recorder(model)
    gen = _gen(model, noise_token_id=noise, max_denoising_steps=4, confidence_threshold=None)
    res = sample(rec, cache, 6, 2, generation=gen, generator=torch.Generator().manual_seed(0))
    assert torch.equal(rec.canvases[0], torch.full((2, 6), noise))
    accepted = res.stats.accepted_per_step
    for k, canvas in enumerate(rec.canvases[1:]):
        # slots holding anything but the noise id are exactly the ones accepted at the step before
        assert int((canvas != noise).sum()) == accepted[k]
    assert not bool((res.tokens == noise).any())


def test_absorbing_noise_keeps_pins_and_rejects_an_id_outside_the_vocabulary(model, cache):
    seed = torch.tensor([[3, 3, 3, 3, 11, 12]])
    pinned = torch.tensor([[False, False, False, False, True, True]])
    res = sample(
        model,
        cache,
        6,
        1,
        seed_canvas=seed,
        pinned=pinned,
        generation=_gen(model, noise_token_id=3),
        generator=torch.Generator().manual_seed(0),
    )
    assert res.tokens[0, 4:].tolist() == [11, 12]
    with pytest.raises(ValueError, match="noise_token_id"):
        sample(model, cache, 6, 1, generation=_gen(model, noise_token_id=model.config.vocab_size))


class SettlingModel:
    """A stand-in denoiser whose answer is certain at every step (so no draw can change it) and settles per row:
    row r (named by its pinned first slot) keeps changing its answer until step SETTLE[r], then holds it. It records
    the batch each step was asked for."""

    SETTLE: ClassVar[dict[int, int]] = {0: 1, 1: 6, 2: 3}
    V = 32

    def __init__(self):
        self.device, self.embed_dtype = torch.device("cpu"), torch.float32
        self.config = type("C", (), {"vocab_size": self.V})()
        self.generation = GenerationConfig(max_denoising_steps=12, entropy_bound=1.0, t_min=0.1, t_max=0.3)
        self.batches: list[int] = []

    def denoise(self, canvas, cache, self_conditioning_logits=None):
        step = len(self.batches)
        self.batches.append(canvas.shape[0])
        logits = torch.zeros(*canvas.shape, self.V)
        for i, row in enumerate(canvas[:, 0].tolist()):
            token = 20 + row if step >= self.SETTLE[row] else 8 + (step + row) % 5
            logits[i, :, token] = 60.0
        return logits


def test_stopped_rows_leave_the_batch_on_cpu_and_the_answers_do_not_change():
    seed = torch.tensor([[0, 4, 4, 4], [1, 4, 4, 4], [2, 4, 4, 4]])
    pinned = torch.zeros(3, 4, dtype=torch.bool)
    pinned[:, 0] = True
    runs = {}
    for draw in ("cdf", "race"):  # race draws keep the whole batch (the reference's random stream)
        m = SettlingModel()
        out = sample(
            m, None, 4, 3, seed_canvas=seed, pinned=pinned, generator=torch.Generator().manual_seed(0), draw=draw
        )
        runs[draw] = (out, m.batches)
    (cdf, cdf_batches), (race, race_batches) = runs["cdf"], runs["race"]
    assert race_batches == [3] * len(race_batches)
    # a row stops one step after it settles (stable: the same argmax twice): row 0 after 3 steps, 2 after 5, 1 after 8
    assert cdf_batches == [3, 3, 3, 2, 2, 1, 1, 1]
    assert len(race_batches) == len(cdf_batches) == cdf.stats.steps == race.stats.steps
    assert torch.equal(cdf.tokens, race.tokens)
    assert cdf.tokens[:, 1:].tolist() == [[20] * 3, [21] * 3, [22] * 3]
    assert cdf.stats.accepted_per_step == race.stats.accepted_per_step


def test_shrinking_batch_keeps_stopped_rows_frozen(model, cache):
    """On the real model with CPU draws: every row's committed answer is one its own steps produced, and a second
    run with the same seed gives the same answers."""
    gen = _gen(model, max_denoising_steps=16, confidence_threshold=10.0)  # rows stop as soon as they are stable
    rec = Recorder(model)
    a = sample(rec, cache, 6, 3, generation=gen, generator=torch.Generator().manual_seed(3), draw="cdf")
    b = sample(model, cache, 6, 3, generation=gen, generator=torch.Generator().manual_seed(3), draw="cdf")
    assert torch.equal(a.tokens, b.tokens)
    sizes = [c.shape[0] for c in rec.canvases]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == 3

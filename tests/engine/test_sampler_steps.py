"""Table tests for the pure sampler steps on fixed logits, checked against hand values and the reference rules.

The reference (transformers' DiffusionGemma generation code) is a test-only oracle.
"""

import math

import pytest
import torch
from dcopilot.engine.runtime.sampler import (
    LOGP_FLOOR,
    accept_mask,
    distribution,
    draw_tokens,
    finalize_canvas,
    mean_entropy,
    renoise,
    stop_check,
    temperatures,
    token_entropy,
)

ref = pytest.importorskip("transformers.models.diffusion_gemma.generation_diffusion_gemma")


def _uniform_logits(k: int, v: int = 8) -> torch.Tensor:
    """Logits whose softmax is uniform over the first k of v ids (entropy log k)."""
    z = torch.full((v,), -math.inf)
    z[:k] = 0.0
    return z


@pytest.mark.parametrize(
    "n, t_min, t_max, first, last",
    [
        (48, 0.4, 0.8, 0.8, 0.4 + 0.4 / 48),
        (4, 0.4, 0.8, 0.8, 0.5),
        (1, 0.2, 1.0, 1.0, 1.0),
        (10, 0.0, 1.0, 1.0, 0.1),
    ],
)
def test_temperature_schedule_endpoints(n, t_min, t_max, first, last):
    temps = temperatures(n, t_min, t_max)
    assert temps.shape == (n,)
    assert temps[0].item() == pytest.approx(first, abs=1e-6)
    assert temps[-1].item() == pytest.approx(last, abs=1e-6)
    assert torch.all(temps[1:] <= temps[:-1])


@pytest.mark.parametrize("n", [1, 6, 48])
def test_temperature_matches_reference_bitwise(n):
    """logits / T must be bit-identical to the reference processor so acceptance decisions agree."""
    proc = ref.LinearTemperatureScheduleLogitsProcessor(t_min=0.4, t_max=0.8, max_denoising_steps=n)
    logits = torch.randn(2, 5, 11) * 7
    temps = temperatures(n, 0.4, 0.8)
    for k, remaining in enumerate(range(n, 0, -1)):
        expected = proc(None, logits, cur_step=torch.tensor(remaining, dtype=torch.int32))
        assert torch.equal(logits / temps[k], expected)


@pytest.mark.parametrize(
    "k_support, expected",
    [(1, 0.0), (2, math.log(2)), (5, math.log(5)), (8, math.log(8))],
)
def test_entropy_of_uniform_supports(k_support, expected):
    z = _uniform_logits(k_support)[None, None]
    assert token_entropy(z).item() == pytest.approx(expected, abs=1e-6)


def test_entropy_matches_reference_categorical():
    z = torch.randn(3, 7, 50) * 4
    z[0, 0, 10:] = -math.inf  # masked vocab must not produce nan
    expected = torch.distributions.Categorical(logits=z).entropy()
    probs, entropy = distribution(z)
    torch.testing.assert_close(entropy, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(probs, torch.softmax(z, dim=-1), rtol=1e-5, atol=1e-7)
    assert not torch.isnan(entropy).any()
    assert torch.equal(token_entropy(z), entropy)


# log-probabilities -> probabilities the sampler uses: at or below LOGP_FLOOR (e^-87, under float32's smallest
# normal number) flushed to exactly 0, above it exp() unchanged.
@pytest.mark.parametrize(
    "logp, expected",
    [
        ([0.0], [1.0]),
        ([math.log(0.5), math.log(0.5)], [0.5, 0.5]),
        ([0.0, -86.9, -87.0, -87.5, -100.0, -1e30], [1.0, math.exp(-86.9), 0.0, 0.0, 0.0, 0.0]),
        ([0.0, -80.0, -math.inf], [1.0, math.exp(-80.0), 0.0]),
    ],
)
def test_distribution_flushes_probabilities_under_the_floor(logp, expected):
    assert LOGP_FLOOR == -87.0
    z = torch.tensor(logp, dtype=torch.float32)[None, None]  # log_softmax of normalised log-probs is themselves
    probs, entropy = distribution(z)
    torch.testing.assert_close(probs[0, 0], torch.tensor(expected, dtype=torch.float32), rtol=1e-5, atol=0.0)
    kept = [(p, lp) for p, lp in zip(expected, logp, strict=True) if p > 0]
    assert entropy.item() == pytest.approx(-sum(p * lp for p, lp in kept), rel=1e-4, abs=1e-6)


def test_flushing_leaves_the_samples_of_low_temperature_logits_alone():
    """At the sampler's temperatures most of the vocabulary sits under the floor; the draws do not change."""
    z = torch.randn(3, 20, 4096) * 30 / 0.1
    probs, _ = distribution(z)
    exact = torch.softmax(z.double(), dim=-1)
    assert (exact < math.exp(-87)).float().mean() > 0.5  # the case the flush is for
    assert (probs[exact.float() >= 1e-30] > 0).all() and torch.equal(probs.argmax(-1), exact.argmax(-1))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    flushed = draw_tokens(probs.view(-1, 4096), g1, "race")
    unflushed = draw_tokens(exact.float().view(-1, 4096), g2, "race")
    assert torch.equal(flushed, unflushed)


# entropies per position -> accepted positions (bound 0.1). Sorted ascending, accept while cumsum - own <= bound.
ACCEPT_TABLE = [
    # lowest always accepted even if above the bound
    ([0.5, 0.9, 0.7], 0.1, [True, False, False]),
    # 0.0 + 0.02 + 0.03 = 0.05 <= 0.1 before 0.2 -> the 0.2 position is accepted too (cumsum before it is 0.05)
    ([0.2, 0.0, 0.02, 0.03, 0.9], 0.1, [True, True, True, True, False]),
    # cumsum before 0.9 is 0.25 > 0.1 -> stop
    ([0.05, 0.05, 0.15, 0.9], 0.1, [True, True, True, False]),
    # ties: everything exactly on the bound is accepted (<=); powers of two keep float32 sums exact
    ([0.0625, 0.0625, 0.0625, 0.0625], 0.125, [True, True, True, False]),
    ([0.0, 0.0, 0.0, 0.0], 0.1, [True, True, True, True]),
    # larger bound accepts more
    ([0.3, 0.3, 0.3, 0.3], 0.7, [True, True, True, False]),
]


@pytest.mark.parametrize("entropies, bound, expected", ACCEPT_TABLE)
def test_accept_mask_table(entropies, bound, expected):
    h = torch.tensor([entropies])
    assert accept_mask(h, bound)[0].tolist() == expected


def _reference_accept(z: torch.Tensor, bound: float) -> torch.Tensor:
    sampler = ref.EntropyBoundSampler(ref.EntropyBoundSamplerConfig(entropy_bound=bound), z.shape[1], z.shape[2], 4)
    current = torch.zeros(z.shape[:2], dtype=torch.long)
    denoised = torch.ones(z.shape[:2], dtype=torch.long)
    return sampler.accept_canvas(current, denoised, z, 1) == 1


@pytest.mark.parametrize("seed, scale, bound", [(0, 1.0, 0.1), (1, 6.0, 0.1), (2, 12.0, 0.1), (3, 12.0, 1.5)])
def test_accept_mask_matches_reference_on_random_logits(seed, scale, bound):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(4, 16, 32, generator=g) * scale
    ours = accept_mask(token_entropy(z), bound)
    assert torch.equal(ours, _reference_accept(z, bound))
    assert ours.any(dim=-1).all()  # at least one position per row


def test_pinned_positions_do_not_consume_the_entropy_budget():
    h = torch.tensor([[0.06, 0.0, 0.08, 0.5]])
    # unpinned: sorted 0, .06, .08, .5 -> cumsum before: 0, 0, .06, .14 -> the 0.5 position is rejected
    assert accept_mask(h, 0.1)[0].tolist() == [True, True, True, False]
    # pinning position 0 removes its 0.06 from the budget: before 0.5 only 0.08 is spent -> accepted;
    # the pinned position itself is never reported as accepted
    pinned = torch.tensor([[True, False, False, False]])
    assert accept_mask(h, 0.1, pinned)[0].tolist() == [False, True, True, True]


RENOISE_TABLE = [
    # accepted, candidates, noise, pinned, seed -> next
    ([1, 0, 1, 0], [10, 11, 12, 13], [90, 91, 92, 93], None, None, [10, 91, 12, 93]),
    ([1, 0, 1, 0], [10, 11, 12, 13], [90, 91, 92, 93], [0, 0, 0, 1], [5, 6, 7, 8], [10, 91, 12, 8]),
    ([0, 0, 0, 0], [10, 11, 12, 13], [90, 91, 92, 93], [1, 1, 0, 0], [5, 6, 7, 8], [5, 6, 92, 93]),
]


@pytest.mark.parametrize("accepted, cand, noise, pinned, seed, expected", RENOISE_TABLE)
def test_renoise_table(accepted, cand, noise, pinned, seed, expected):
    t = lambda x, dt=torch.long: None if x is None else torch.tensor([x], dtype=dt)  # noqa: E731
    out = renoise(t(accepted, torch.bool), t(cand), t(noise), t(pinned, torch.bool), t(seed))
    assert out[0].tolist() == expected


def test_renoise_matches_reference_rule():
    """Reference: accepted = where(mask, denoised, current); next = where(~mask, random, accepted)."""
    g = torch.Generator().manual_seed(4)
    mask = torch.rand(3, 9, generator=g) > 0.5
    cand = torch.randint(0, 50, (3, 9), generator=g)
    noise = torch.randint(0, 50, (3, 9), generator=g)
    current = torch.randint(0, 50, (3, 9), generator=g)
    expected = torch.where(~mask, noise, torch.where(mask, cand, current))
    assert torch.equal(renoise(mask, cand, noise), expected)


def test_race_draw_equals_multinomial_stream():
    probs = torch.softmax(torch.randn(20, 64) * 3, dim=-1)
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(draw_tokens(probs, g1, "race"), torch.multinomial(probs, 1, generator=g2).squeeze(-1))
    # the generators are left in the same state
    assert torch.equal(torch.randint(0, 1000, (8,), generator=g1), torch.randint(0, 1000, (8,), generator=g2))


@pytest.mark.parametrize("method", ["race", "cdf"])
def test_draws_never_pick_zero_probability_ids(method):
    probs = torch.zeros(500, 10)
    probs[:, 0] = 0.25  # first, middle and last ids exercise both ends of the binary search
    probs[:, 3] = 0.5
    probs[:, 9] = 0.25
    got = draw_tokens(probs, torch.Generator().manual_seed(0), method)
    assert set(got.tolist()) == {0, 3, 9}


@pytest.mark.parametrize("method", ["race", "cdf"])
def test_draws_follow_the_distribution(method):
    """20000 draws from a fixed 6-way distribution: each frequency within 4 standard errors."""
    p = torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05, 0.0])
    n = 20000
    got = draw_tokens(p.expand(n, 6).contiguous(), torch.Generator().manual_seed(1), method)
    freq = torch.bincount(got, minlength=6).float() / n
    se = (p * (1 - p) / n).sqrt()
    assert torch.all((freq - p).abs() <= 4 * se + 1e-9), freq


def test_cdf_draw_is_reproducible_and_uses_one_uniform_per_row():
    probs = torch.softmax(torch.randn(30, 100), dim=-1)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(draw_tokens(probs, g1, "cdf"), draw_tokens(probs, g2, "cdf"))
    g3 = torch.Generator().manual_seed(3)
    torch.rand(30, 1, generator=g3)
    assert torch.equal(torch.rand(5, generator=g1), torch.rand(5, generator=g3))


def test_unknown_draw_method():
    with pytest.raises(ValueError, match="draw method"):
        draw_tokens(torch.ones(2, 3) / 3, None, "gumbel")


def test_mean_entropy_ignores_pinned_positions():
    h = torch.tensor([[0.0, 0.002, 5.0]])
    assert mean_entropy(h)[0].item() == pytest.approx(5.002 / 3)
    free = torch.tensor([[True, True, False]])
    assert mean_entropy(h, free)[0].item() == pytest.approx(0.001)


# (history, argmax, mean entropy) -> done; threshold 0.005
STOP_TABLE = [
    ([[-1, -1]], [4, 5], 0.0, False),  # first step never stable with S = 1
    ([[4, 5]], [4, 5], 0.001, True),
    ([[4, 5]], [4, 6], 0.001, False),  # not stable
    ([[4, 5]], [4, 5], 0.005, False),  # strict <
    ([[4, 5], [4, 5]], [4, 5], 0.0, True),  # S = 2
    ([[4, 6], [4, 5]], [4, 5], 0.0, False),
]


@pytest.mark.parametrize("history, amax, mean_h, expected", STOP_TABLE)
def test_stop_check_table(history, amax, mean_h, expected):
    hist = torch.tensor(history)[:, None, :]
    done, new_hist = stop_check(hist, torch.tensor([amax]), torch.tensor([mean_h]), 0.005)
    assert done.tolist() == [expected]
    assert new_hist[-1, 0].tolist() == amax
    assert new_hist.shape == hist.shape


def test_stop_check_without_stability_uses_confidence_only():
    done, hist = stop_check(None, torch.tensor([[1, 2]]), torch.tensor([0.001]), 0.005)
    assert done.tolist() == [True] and hist is None


@pytest.mark.parametrize("stability", [1, 2, 3])
def test_stop_check_matches_reference_over_a_run(stability):
    """Feed the same sequence of argmax canvases and logits to ours and the reference criterion."""
    crit = ref.StableAndConfidentStoppingCriteria(stability_threshold=stability, confidence_threshold=0.005)
    g = torch.Generator().manual_seed(stability)
    hist = torch.full((stability, 2, 5), -1, dtype=torch.long)
    sharp = torch.zeros(2, 5, 16)
    sharp[..., 3] = 40.0  # near-zero entropy
    amax_seq = [torch.randint(0, 4, (2, 5), generator=g) for _ in range(3)]
    amax_seq += [amax_seq[-1]] * 4
    for i, amax in enumerate(amax_seq):
        z = sharp if i >= 2 else torch.randn(2, 5, 16, generator=g)
        ours, hist = stop_check(hist, amax, mean_entropy(token_entropy(z)), 0.005)
        assert torch.equal(ours, crit(amax, z)), i


FINALIZE_TABLE = [
    # canvas, finished before, stop ids (1, 3), -> canvas, finished
    ([7, 1, 8, 9], False, [7, 1, 0, 0], True),
    ([7, 8, 9, 3], False, [7, 8, 9, 3], True),
    ([7, 8, 9, 6], False, [7, 8, 9, 6], False),
    ([1, 1, 8, 3], False, [1, 0, 0, 0], True),
    ([7, 8, 9, 6], True, [0, 0, 0, 0], True),
]


@pytest.mark.parametrize("canvas, before, expected, finished", FINALIZE_TABLE)
def test_finalize_canvas_table(canvas, before, expected, finished):
    out, fin = finalize_canvas(torch.tensor([canvas]), torch.tensor([before]), torch.tensor([1, 3]), 0)
    assert out[0].tolist() == expected
    assert fin.tolist() == [finished]

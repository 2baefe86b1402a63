"""Prefix reuse gives the logits a fresh encode gives, encodes only the new tokens, and stays within its cap."""

import pytest
import torch
from dcopilot.engine.runtime.cache import KVCache
from dcopilot.engine.runtime.loader import load_model
from dcopilot.engine.runtime.prefix_cache import PrefixCache, common_prefix, storage_bytes

VOCAB = 128


@pytest.fixture(scope="module")
def model(reference_checkpoint):
    return load_model(reference_checkpoint, device="cpu", dtype=torch.float32)


def ids(seed: int, n: int) -> torch.Tensor:
    return torch.randint(5, VOCAB, (n,), generator=torch.Generator().manual_seed(seed))


def assert_same_logits(model, cache, prompt):
    canvas = torch.randint(0, VOCAB, (2, 6), generator=torch.Generator().manual_seed(99))
    fresh = model.denoise(canvas, model.encode(prompt[None]))
    got = model.denoise(canvas, cache)
    assert cache.length == prompt.numel()
    torch.testing.assert_close(got, fresh, rtol=1e-4, atol=1e-4 * fresh.abs().max().item())


@pytest.mark.parametrize(
    "a, b, expected",
    [([1, 2, 3], [1, 2, 3, 4], 3), ([1, 2, 3], [1, 9, 3], 1), ([5], [6], 0), ([], [1], 0), ([1, 2], [1, 2], 2)],
)
def test_common_prefix_table(a, b, expected):
    assert common_prefix(torch.tensor(a, dtype=torch.long), torch.tensor(b, dtype=torch.long)) == expected


def test_typing_encodes_only_new_tokens(model):
    pc = PrefixCache(model)
    base = ids(0, 30)
    assert_same_logits(model, pc.encode(base), base)
    assert (pc.stats.last_reused, pc.stats.last_encoded, pc.stats.misses) == (0, 30, 1)
    typed = torch.cat([base, ids(1, 3)])
    cache = pc.encode(typed)
    assert (pc.stats.last_reused, pc.stats.last_encoded, pc.stats.hits) == (30, 3, 1)
    assert_same_logits(model, cache, typed)


def test_edit_near_the_end_rewinds_and_reencodes_the_tail(model):
    pc = PrefixCache(model)
    a = ids(2, 40)
    pc.encode(a)
    b = a.clone()
    b[35:] = ids(3, 5)
    b = torch.cat([b, ids(4, 2)])  # changed 5 tokens and typed 2 more
    cache = pc.encode(b)
    assert (pc.stats.last_reused, pc.stats.last_encoded) == (common_prefix(a, b), b.numel() - common_prefix(a, b))
    assert_same_logits(model, cache, b)


def test_backspace_to_a_shorter_prompt_encodes_nothing(model):
    pc = PrefixCache(model)
    a = ids(5, 25)
    pc.encode(a)
    cache = pc.encode(a[:22])
    assert (pc.stats.last_reused, pc.stats.last_encoded) == (22, 0)
    assert_same_logits(model, cache, a[:22])


def test_rewind_beyond_the_spare_rows_falls_back_to_a_full_encode(model):
    """Sliding layers keep window-1 + 256 rows; a prefix shared only far back cannot be rewound to."""
    pc = PrefixCache(model)
    a = ids(6, 300)
    pc.encode(a)
    b = torch.cat([a[:10], ids(7, 5)])
    cache = pc.encode(b)
    assert (pc.stats.last_reused, pc.stats.last_encoded) == (0, 15)
    assert_same_logits(model, cache, b)


def test_caller_appending_to_its_copy_leaves_the_entry_intact(model):
    pc = PrefixCache(model)
    a = ids(8, 20)
    cache = pc.encode(a)
    model.encode(ids(9, 6)[None], cache)  # e.g. a committed canvas
    assert cache.length == 26
    again = pc.encode(a)
    assert (pc.stats.last_reused, pc.stats.last_encoded) == (20, 0)
    assert_same_logits(model, again, a)


def test_lru_eviction_keeps_within_the_cap(model):
    one = storage_bytes([model.encode(ids(10, 20)[None])])
    pc = PrefixCache(model, max_bytes=int(2.5 * one))
    prompts = [ids(11 + i, 20) for i in range(3)]
    pc.encode(prompts[0])
    pc.encode(prompts[1])
    pc.encode(prompts[0])  # touch: prompts[1] is now the least recently used
    pc.encode(prompts[2])
    assert pc.nbytes() <= pc.max_bytes and pc.stats.evictions == 1
    pc.encode(prompts[0])
    assert pc.stats.last_encoded == 0  # still cached
    pc.encode(prompts[1])
    assert pc.stats.last_encoded == 20  # was evicted


def test_extended_prompt_replaces_the_entry_it_extends(model):
    pc = PrefixCache(model)
    a = ids(20, 12)
    pc.encode(a)
    pc.encode(torch.cat([a, ids(21, 4)]))
    assert len(pc.entries) == 1


def test_entry_larger_than_the_cap_is_not_kept(model):
    pc = PrefixCache(model, max_bytes=1)
    cache = pc.encode(ids(30, 10))
    assert isinstance(cache, KVCache) and cache.length == 10
    assert len(pc.entries) == 0


@pytest.mark.parametrize("bad", [torch.zeros(0, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long)])
def test_bad_prompt_shapes_raise(model, bad):
    with pytest.raises(ValueError):
        PrefixCache(model).encode(bad)

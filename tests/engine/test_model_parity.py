"""Our model against the transformers 5.23.0 reference on tiny checkpoints written by its save_pretrained.

Tolerance: max |ours - ref| <= 1e-4 * max |ref| in float32. The two sum in different orders (fused experts,
SDPA), which costs a few ulps per layer; a wrong norm, mask or RoPE is off by far more than 1e-4 relative.
"""

import pytest
import torch
from dcopilot.engine.runtime.cache import KVCache
from dcopilot.engine.runtime.loader import load_model
from transformers import DiffusionGemmaForBlockDiffusion

VOCAB = 128


def close(ours: torch.Tensor, ref: torch.Tensor) -> None:
    assert ours.shape == ref.shape and ours.dtype == torch.float32
    err, scale = (ours - ref).abs().max().item(), ref.abs().max().item()
    assert err <= 1e-4 * scale, f"max error {err} vs scale {scale}"


@pytest.fixture(scope="module")
def pair(reference_checkpoint):
    ref = DiffusionGemmaForBlockDiffusion.from_pretrained(reference_checkpoint, dtype=torch.float32).eval()
    ours = load_model(reference_checkpoint, device="cpu", dtype=torch.float32)
    return ref, ours


@pytest.mark.parametrize("prompt_len", [5, 8, 21])  # shorter than, equal to and longer than the window (8)
def test_denoise_matches_reference(pair, prompt_len):
    ref, ours = pair
    g = torch.Generator().manual_seed(prompt_len)
    prompt = torch.randint(0, VOCAB, (2, prompt_len), generator=g)
    canvas = torch.randint(0, VOCAB, (2, 6), generator=g)
    with torch.no_grad():
        expected = ref(input_ids=prompt, decoder_input_ids=canvas).logits
        got = ours.denoise(canvas, ours.encode(prompt))
    close(got, expected)


def test_self_conditioning_matches_reference(pair):
    ref, ours = pair
    g = torch.Generator().manual_seed(7)
    prompt = torch.randint(0, VOCAB, (2, 17), generator=g)
    canvas = torch.randint(0, VOCAB, (2, 6), generator=g)
    sc = torch.randn(2, 6, VOCAB, generator=g) * 4
    with torch.no_grad():
        expected = ref(input_ids=prompt, decoder_input_ids=canvas, self_conditioning_logits=sc).logits
        got = ours.denoise(canvas, ours.encode(prompt), self_conditioning_logits=sc)
        without = ours.denoise(canvas, ours.encode(prompt))
    close(got, expected)
    assert (got - without).abs().max() > 1e-3  # the signal really changes the logits


def test_after_commit_matches_reference(pair):
    """Prompt, then a committed canvas appended to the same cache, then a new canvas."""
    ref, ours = pair
    g = torch.Generator().manual_seed(3)
    prompt = torch.randint(0, VOCAB, (2, 11), generator=g)
    first = torch.randint(0, VOCAB, (2, 6), generator=g)
    committed = torch.randint(0, VOCAB, (2, 6), generator=g)
    second = torch.randint(0, VOCAB, (2, 6), generator=g)
    with torch.no_grad():
        out = ref(input_ids=prompt, decoder_input_ids=first)
        expected = ref(input_ids=committed, past_key_values=out.past_key_values, decoder_input_ids=second).logits
        cache = ours.encode(prompt)
        ours.denoise(first, cache)  # must not write the cache
        ours.encode(committed, cache)
        got = ours.denoise(second, cache)
    assert cache.length == 17
    close(got, expected)


def test_chunked_encode_equals_one_shot(pair):
    """Encoding a prompt in pieces (prefix reuse) gives the same cache semantics as encoding it at once."""
    _, ours = pair
    g = torch.Generator().manual_seed(5)
    prompt = torch.randint(0, VOCAB, (1, 30), generator=g)
    canvas = torch.randint(0, VOCAB, (1, 6), generator=g)
    with torch.no_grad():
        whole = ours.denoise(canvas, ours.encode(prompt))
        cache = ours.encode(prompt[:, :9])
        ours.encode(prompt[:, 9:20], cache)
        ours.encode(prompt[:, 20:], cache)
        pieces = ours.denoise(canvas, cache)
    close(pieces, whole)


def test_truncate_then_reencode_equals_fresh(pair):
    _, ours = pair
    g = torch.Generator().manual_seed(9)
    a = torch.randint(0, VOCAB, (1, 25), generator=g)
    b = a.clone()
    b[0, 20:] = torch.randint(0, VOCAB, (5,), generator=g)
    canvas = torch.randint(0, VOCAB, (1, 6), generator=g)
    with torch.no_grad():
        cache = ours.encode(a)
        cache.truncate(20)
        ours.encode(b[:, 20:], cache)
        close(ours.denoise(canvas, cache), ours.denoise(canvas, ours.encode(b)))


def test_hypotheses_share_one_cache(pair):
    """A batch of canvases against a batch-1 cache equals each canvas run alone."""
    _, ours = pair
    g = torch.Generator().manual_seed(11)
    prompt = torch.randint(0, VOCAB, (1, 14), generator=g)
    canvases = torch.randint(0, VOCAB, (3, 6), generator=g)
    with torch.no_grad():
        cache = ours.encode(prompt)
        batched = ours.denoise(canvases, cache)
        for i in range(3):
            close(batched[i : i + 1], ours.denoise(canvases[i : i + 1], cache))


def test_shorter_canvas(pair):
    ref, ours = pair
    g = torch.Generator().manual_seed(13)
    prompt = torch.randint(0, VOCAB, (1, 12), generator=g)
    canvas = torch.randint(0, VOCAB, (1, 3), generator=g)
    with torch.no_grad():
        close(ours.denoise(canvas, ours.encode(prompt)), ref(input_ids=prompt, decoder_input_ids=canvas).logits)


def test_sliding_cache_keeps_bounded_rows(pair):
    _, ours = pair
    cache = KVCache(ours.config, rewind=4)
    with torch.no_grad():
        ours.encode(torch.randint(0, VOCAB, (1, 40)), cache)
    for i, sliding in enumerate(cache.sliding):
        rows = cache.keys[i].shape[2]
        assert rows == (ours.config.sliding_window - 1 + 4 if sliding else 40)


def test_full_layers_with_the_base_head_dim(checkpoint_factory):
    """save_pretrained omits a per-layer head_dim equal to the base one; it must not fall back to 512."""
    path = checkpoint_factory(global_head_dim=8)
    ref = DiffusionGemmaForBlockDiffusion.from_pretrained(path, dtype=torch.float32).eval()
    ours = load_model(path)
    prompt, canvas = torch.tensor([[2, 40, 41, 42, 43, 44, 45, 46, 47, 48]]), torch.tensor([[9, 8, 7, 6, 5, 4]])
    with torch.no_grad():
        close(ours.denoise(canvas, ours.encode(prompt)), ref(input_ids=prompt, decoder_input_ids=canvas).logits)


def test_each_mode_uses_its_own_layer_scalar(checkpoint_factory):
    """A checkpoint whose encoder layer_scalar copies differ from the decoder's: the prompt is encoded with the
    encoder's and the canvas denoised with the decoder's, as the reference does."""
    path = checkpoint_factory(seed=4, distinct_encoder_scalars=True)
    ref = DiffusionGemmaForBlockDiffusion.from_pretrained(path, dtype=torch.float32).eval()
    enc = ref.model.encoder.language_model.layers[0].layer_scalar
    dec = ref.model.decoder.layers[0].layer_scalar
    assert (enc - dec).abs().item() > 0.1, "the saved checkpoint lost the differing encoder copy"
    ours = load_model(path, device="cpu", dtype=torch.float32)
    g = torch.Generator().manual_seed(9)
    prompt = torch.randint(0, VOCAB, (2, 13), generator=g)
    canvas = torch.randint(0, VOCAB, (2, 6), generator=g)
    committed = torch.randint(0, VOCAB, (2, 6), generator=g)
    with torch.no_grad():
        out = ref(input_ids=prompt, decoder_input_ids=canvas)
        after = ref(input_ids=committed, past_key_values=out.past_key_values, decoder_input_ids=canvas).logits
        cache = ours.encode(prompt)
        close(ours.denoise(canvas, cache), out.logits)
        ours.encode(committed, cache)
        close(ours.denoise(canvas, cache), after)

import numpy as np
import torch

from training.quant import codec_levels, quantize_exact, quantize_ste


def numpy_codec(x, L):
    """Independent float32 transcription of the codec's formula."""
    x = x.astype(np.float32)
    out = np.empty_like(x)
    Lf = np.float32(L)
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            ch = x[b, c]
            mn, mx = ch.min(), ch.max()
            rng = np.float32(mx - mn)
            if rng == 0:
                out[b, c] = mn
                continue
            t = (ch - mn) / rng * Lf
            q = np.clip(np.floor(t + np.float32(0.5)), 0, Lf).astype(np.float32)
            out[b, c] = mn + q * np.float32(rng / Lf)
    return out


def test_matches_float32_formula_bit_for_bit():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 5, 7, 9, generator=g) * 3 + 1
    for L in (65535, 255, 15, 3, 1):
        got = quantize_exact(x, L).numpy()
        want = numpy_codec(x.numpy(), L)
        assert np.array_equal(got, want), L


def test_error_bound_and_levels():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(3, 4, 14, 14, generator=g) * 6
    for L in (65535, 255, 15, 3, 1):
        q, mn, rng = codec_levels(x, L)
        assert torch.equal(q, torch.round(q))
        assert q.min() >= 0 and q.max() <= L
        xh = quantize_exact(x, L)
        bound = rng / (2 * L) * (1 + 1e-4) + 1e-6
        assert torch.all((xh - x).abs() <= bound), L
        # the per-channel minimum is level 0 and is reproduced exactly
        assert torch.equal(xh.flatten(2).amin(2), x.flatten(2).amin(2))


def test_constant_channel_guard():
    x = torch.zeros(2, 3, 5, 5)
    x[0, 1] = 2.5
    x[1, 2] = torch.arange(25.0).view(5, 5)
    for L in (255, 1):
        xh = quantize_exact(x, L)
        assert torch.isfinite(xh).all()
        assert torch.equal(xh[0, 1], torch.full((5, 5), 2.5))
        assert torch.equal(xh[0, 0], torch.zeros(5, 5))
        q, _, _ = codec_levels(x, L)
        assert torch.equal(q[0, 1], torch.zeros(5, 5))


def test_per_image_statistics():
    # quantizing a batch equals quantizing each image alone (no batch-wide min/max)
    g = torch.Generator().manual_seed(5)
    x = torch.rand(4, 2, 6, 6, generator=g)
    x[2] *= 100
    whole = quantize_exact(x, 15)
    for i in range(4):
        assert torch.equal(whole[i:i + 1], quantize_exact(x[i:i + 1], 15))


def test_straight_through_gradient():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 3, 4, 4, generator=g, requires_grad=True)
    w = torch.randn(2, 3, 4, 4, generator=g)
    y = quantize_ste(x, 3)
    assert torch.equal(y.detach(), quantize_exact(x.detach(), 3))
    (y * w).sum().backward()
    assert torch.equal(x.grad, w)

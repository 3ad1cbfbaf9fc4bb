"""The partition quantizer, exactly as the codec computes it, in float32.

Per image and per channel: mn = min, mx = max, range = mx - mn,
t = (x - mn) / range * L, q = floor(t + 0.5) clamped to [0, L], x_hat = mn + q * (range / L);
x_hat = mn everywhere when range == 0. During training the gradient passes straight through
(d x_hat / d x = 1).
"""
import torch


def codec_minmax(x):
    """Per image and channel min and max of a [B, C, H, W] tensor, shaped [B, C, 1, 1]."""
    flat = x.flatten(2)
    return flat.amin(dim=2)[..., None, None], flat.amax(dim=2)[..., None, None]


def codec_levels(x, L):
    """Integer levels q (as float32) plus min and range, as the codec's encoder computes them."""
    x = x.float()
    mn, mx = codec_minmax(x)
    rng = mx - mn
    zero = rng == 0
    safe = torch.where(zero, torch.ones_like(rng), rng)
    Lf = torch.tensor(float(L), dtype=torch.float32, device=x.device)
    t = (x - mn) / safe * Lf
    q = torch.clamp(torch.floor(t + 0.5), min=0.0, max=float(L))
    q = torch.where(zero, torch.zeros_like(q), q)
    return q, mn, rng


def codec_dequantize(q, mn, rng, L):
    zero = rng == 0
    safe = torch.where(zero, torch.ones_like(rng), rng)
    Lf = torch.tensor(float(L), dtype=torch.float32, device=q.device)
    xh = mn + q * (safe / Lf)
    return torch.where(zero, mn.expand_as(xh), xh)


def quantize_exact(x, L):
    """Quantize then dequantize, no gradient semantics (what the codec round trip yields)."""
    q, mn, rng = codec_levels(x, L)
    return codec_dequantize(q, mn, rng, L)


class _StraightThrough(torch.autograd.Function):
    # Forward returns the exact codec values (x + (xh - x) could be off by an ulp).
    @staticmethod
    def forward(ctx, x, L):
        return quantize_exact(x, L)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def quantize_ste(x, L):
    """Codec round trip in the forward pass, identity in the backward pass."""
    return _StraightThrough.apply(x, L)

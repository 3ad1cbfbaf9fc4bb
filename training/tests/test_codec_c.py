"""The PyTorch quantizer against the C codec (inference/codec.c, built as a shared library)."""
import numpy as np
import pytest
import torch

from training import codec_ffi, steps
from training.quant import codec_levels, quantize_exact

LEVELS = (65535, 255, 15, 3, 1)


@pytest.fixture(scope="module")
def codec(tmp_path_factory):
    c = codec_ffi.load(str(tmp_path_factory.mktemp("codec")))
    if c is None:
        pytest.skip("inference/codec.c, a C compiler or libzstd headers missing")
    return c


def cases():
    rs = np.random.RandomState(11)
    yield (rs.randn(4, 14, 14) * 3 + 1).astype(np.float32)
    yield rs.uniform(0, 6, (3, 9, 7)).astype(np.float32)              # ReLU6 range
    yield (rs.randn(2, 5, 5) * 1e-6 + 100).astype(np.float32)         # tiny range, large offset
    z = np.zeros((3, 4, 4), np.float32)
    z[1] = 2.5
    z[2, 0, 0] = 6.0
    yield z                                                           # constant channels
    # values on rounding boundaries: (k + 0.5) / L of the range
    b = np.zeros((5, 1, 8), np.float32)
    for i, L in enumerate(LEVELS):
        b[i, 0, :6] = (np.arange(6) + 0.5) / max(L, 1) * 6.0
        b[i, 0, 6] = 0.0
        b[i, 0, 7] = 6.0
    yield b
    yield np.clip(rs.randn(32, 14, 14) * 2, 0, 6).astype(np.float32)  # sparse, many exact zeros


@pytest.mark.parametrize("L", LEVELS)
def test_quantizer_matches_codec_bit_for_bit(codec, L):
    for x in cases():
        want = codec.quantize_ref(x, L)
        got = quantize_exact(torch.from_numpy(x)[None], L)[0].numpy()
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (L, x.shape)


@pytest.mark.parametrize("L", LEVELS)
def test_packed_codes_and_frames_match_codec(codec, L):
    for x in cases():
        c = max(1, x.shape[0] - 1)
        side, packed = codec.quantize_pack(x, c, L)
        t = torch.from_numpy(x[:c])[None]
        q, mn, rng = codec_levels(t, L)
        assert np.array_equal(side[:, 0], mn.reshape(-1).numpy())
        assert np.array_equal(side[:, 1], x[:c].reshape(c, -1).max(1))
        assert steps.pack_levels(q[0].numpy(), steps.bits_of(L)) == packed
        frame = codec.encode(x, c, L)
        dec = codec.decode(frame, (c,) + x.shape[1:])
        assert np.array_equal(dec, quantize_exact(t, L)[0].numpy())
        assert steps.frame_bytes(torch.from_numpy(x[:c]), L)[28 + 8 * c:] == packed


def test_payload_estimate_without_codec_matches_codec_frames(codec):
    from shutil import which
    if not which("zstd"):
        pytest.skip("zstd tool missing")
    from training.geometry import setup_space
    rs = np.random.RandomState(2)
    ss = setup_space()[::7]
    parts = [torch.from_numpy(np.clip(rs.randn(3, 32, 14, 14) * 2, 0, 6).astype(np.float32))[:, :s.c]
             .contiguous() for s in ss]
    est = steps._payload_zstd_cli(parts, ss, 1)
    for s, p in zip(ss, parts):
        exact = np.mean([len(codec.encode(p[i].numpy(), s.c, s.L)) for i in range(3)])
        assert abs(est[s.id] - exact) <= 0.02 * exact, (s, est[s.id], exact)

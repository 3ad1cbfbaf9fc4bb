"""int8 calibration (python3 -m training calibrate) and the fake-quant reference."""
import json
import os

import numpy as np
import pytest
import torch

from training import calibrate, int8
from training.geometry import get_geometry
from training.golden import generate, make_inputs
from training.model import SWCNN
from training.modelfile import (default_metadata, export_model, load_model, read_raw,
                                read_tensors, setups_from_metadata)
from training.rawfile import write_raw

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = os.path.join(ROOT, "models", "fmnist-swcnn.rtcm")


def tiny_geometry():
    # a t == 1 block (no expand, residual on block1's chain), then a new chain of two blocks
    g = get_geometry("fmnist")
    g.update(name="tiny", blocks=[[1, 16, 1, 1], [6, 24, 2, 2]], last_channels=32)
    return g


def make_model(path, g=None, channels=(2, 32), levels=(255, 3)):
    torch.manual_seed(3)
    g = g or tiny_geometry()
    meta = default_metadata(g, channels=list(channels), levels=list(levels))
    m = SWCNN(g, len(meta["setups"]))
    with torch.no_grad():
        for name, t in m.state_dict().items():
            if name.endswith("running_mean"):
                t.normal_(0, 0.2)
            elif name.endswith("running_var"):
                t.uniform_(0.5, 2.0)
            elif name.endswith("bn1.weight") or name.endswith("bn2.weight"):
                t.uniform_(0.5, 1.5)
    export_model(m, path, meta)
    return str(path)


def run_cli(*args):
    return calibrate.main([str(a) for a in args])


def test_chains_and_points():
    assert int8.chains(get_geometry("fmnist")) == [1, 2, 2, 3, 3, 4, 4]
    assert int8.n_points(get_geometry("fmnist")) == 5
    assert int8.n_points(get_geometry("mnv2-224")) == 8
    assert int8.chains(tiny_geometry()) == [1, 1, 2, 2]


def test_calibrate_writes_the_block_and_keeps_the_rest(tmp_path):
    src = make_model(tmp_path / "m.rtcm")
    # other blocks and tensors the geometry does not name must come through untouched
    doc, entries = read_raw(src)
    doc["spinn"] = {"coverage": 0.5, "exit_accuracy": 0.9, "rest_factor": 0.8, "exit_ms": 0.1}
    entries.append(("extra.t", "F32", [3], np.arange(3, dtype="<f4").tobytes()))
    write_raw(src, doc, entries)
    out = tmp_path / "c.rtcm"
    assert run_cli(src, "--out", out, "--data", "synthetic", "--images", 6) == 0
    d0, e0 = read_raw(src)
    d1, e1 = read_raw(out)
    blk = d1.pop("int8")
    assert d0 == d1
    assert json.dumps(d0) == json.dumps(d1)  # same keys in the same order
    new = {n: (t, s, b) for n, t, s, b in e1}
    for n, t, s, b in e0:
        assert new.pop(n) == (t, s, b), n
    assert list(new) == ["int8.act_scale"]
    assert blk == {"points": 3, "images": 6, "data": "synthetic", "method": "max",
                   "weights": int8.WEIGHTS, "activations": int8.ACTIVATIONS}
    doc, tensors = read_tensors(out)
    sc = int8.scales_from(doc, tensors)
    assert tuple(sc.shape) == (4, 3) and bool((sc > 0).all())
    # run again, in place: the block is replaced, not added twice
    assert run_cli(out, "--data", "synthetic", "--images", 4, "--method", "p99.9") == 0
    d2, e2 = read_raw(out)
    assert d2["int8"]["method"] == "percentile 99.9" and d2["int8"]["images"] == 4
    assert [n for n, *_ in e2].count("int8.act_scale") == 1


def test_max_scales_are_the_largest_magnitudes(tmp_path):
    src = make_model(tmp_path / "m.rtcm")
    model, doc = load_model(src)
    setups = setups_from_metadata(doc)
    x = make_inputs(doc["geometry"], 5, 9)
    t = int8.calibrate(model, setups, [x], [("max", None), ("percentile", 99.0)])
    s = setups[1]
    with torch.no_grad():
        model.set_slot(s.bn_slot)
        deq = model.quantize(model.head(x)[:, : s.c], s.L)
        y1 = model.block1(deq)
        y2 = model.blocks[0](y1)
        y3 = model.blocks[1](y2)
        y4 = model.blocks[2](y3)
    want = [deq.abs().max() / 255, max(y1.abs().max(), y2.abs().max()) / 127,
            max(y3.abs().max(), y4.abs().max()) / 127]
    assert np.allclose(t[("max", None)][1], [float(v) for v in want], rtol=1e-6)
    assert (t[("percentile", 99.0)] <= t[("max", None)]).all()


def test_calibrate_refuses_bad_input(tmp_path, capsys):
    src = make_model(tmp_path / "m.rtcm")
    assert run_cli(src, "--images", 0, "--data", "synthetic") == 2
    assert run_cli(src, "--method", "p120", "--data", "synthetic") == 2
    assert run_cli(src, "--method", "median", "--data", "synthetic") == 2
    assert run_cli(src, "--method", "max,p99.9", "--data", "synthetic", "--images", 2) == 2
    bad = tmp_path / "bad.rtcm"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    assert run_cli(bad, "--data", "synthetic") == 2
    assert run_cli(tmp_path / "missing.rtcm", "--data", "synthetic") == 2
    g = tiny_geometry()
    g.update(name="rgb", input=[3, 32, 32])
    rgb = make_model(tmp_path / "rgb.rtcm", g)
    assert run_cli(rgb, "--data", "train", "--images", 2) == 2
    err = capsys.readouterr().err
    assert "--images" in err and "--method" in err and "synthetic" in err
    assert read_raw(src)[0].get("int8") is None  # nothing written


def test_scales_are_checked(tmp_path):
    src = make_model(tmp_path / "m.rtcm")
    doc, tensors = read_tensors(src)
    with pytest.raises(int8.Int8Error, match="no int8 calibration"):
        int8.scales_from(doc, tensors)
    doc["int8"] = int8.block(3, 1, "synthetic", "max")
    for bad in (np.ones((4, 2), np.float32), np.zeros((4, 3), np.float32),
                np.full((4, 3), np.inf, np.float32)):
        tensors["int8.act_scale"] = bad
        with pytest.raises(int8.Int8Error):
            int8.scales_from(doc, tensors)


def test_weight_quantization_per_channel():
    w = torch.tensor([[1.0, -2.0], [0.0, 0.0], [0.3, 0.1]]).view(3, 2, 1, 1)
    q, s = int8.quantize_weight(w)
    assert torch.equal(s, torch.tensor([2.0 / 127, 1.0, 0.3 / 127], dtype=torch.float32))
    assert q.view(3, 2).tolist() == [[64.0, -127.0], [0.0, 0.0], [127.0, 42.0]]


# --- the spec computed directly on integers (numpy int64), layer by layer -------------------

def _conv_int(qx, qw, stride, pad, groups):
    """Exact integer convolution, NCHW, int64."""
    b, cin, h, w = qx.shape
    cout, cg, k, _ = qw.shape
    xp = np.pad(qx, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    out = np.zeros((b, cout, ho, wo), np.int64)
    og = cout // groups
    for oc in range(cout):
        g0 = (oc // og) * cg
        for i in range(k):
            for j in range(k):
                patch = xp[:, g0:g0 + cg, i:i + stride * ho:stride, j:j + stride * wo:stride]
                out[:, oc] += np.einsum("bchw,c->bhw", patch, qw[oc, :, i, j])
    return out


def _layer(qx, s_x, w, bn, slot, eps, stride=1, pad=0, groups=1, s_y=None, lo=0, hi=255,
           res=None):
    w = w.astype(np.float32)
    sw = np.abs(w).reshape(len(w), -1).max(axis=1) / np.float32(127)
    sw = np.where(sw > 0, sw, np.float32(1)).astype(np.float32)
    qw = np.clip(np.rint(w / sw[:, None, None, None]), -127, 127).astype(np.int64)
    acc = _conv_int(qx, qw[:, : qx.shape[1] // groups] if groups == 1 else qw, stride, pad,
                    groups)
    g, b_, m, v = (bn[k] for k in ("weight", "bias", "running_mean", "running_var"))
    a = (g / np.sqrt(v[slot] + np.float32(eps))).astype(np.float32)
    b = (b_ - m[slot] * a).astype(np.float32)
    acc = acc.astype(np.float32)
    if s_y is None:
        return acc * (s_x * sw * a)[:, None, None] + b[:, None, None]
    y = acc * (s_x * sw * a / s_y)[:, None, None] + (b / s_y)[:, None, None]
    if res is not None:
        y = y + res
    return np.clip(np.rint(y), lo, hi).astype(np.int64)


def _reference_tail(t, g, deq, sc, slot):
    bn = lambda p: {k: t[p + "." + k] for k in ("weight", "bias", "running_mean", "running_var")}
    eps, r6 = g["bn_eps"], np.float32(6.0 / 255.0)
    qx = np.clip(np.rint(deq / sc[0]), 0, 255).astype(np.int64)
    q = _layer(qx, sc[0], t["block1.conv1.weight"], bn("block1.bn1"), slot, eps, pad=1, s_y=r6)
    ch = int8.chains(g)
    s_x = sc[ch[0]]
    q = _layer(q, r6, t["block1.conv2.weight"], bn("block1.bn2"), slot, eps, s_y=s_x,
               lo=-128, hi=127)
    c, i = g["block1"]["out"], 0
    for tt, cout, n, s in g["blocks"]:
        for j in range(n):
            p, st = "blocks.%d." % i, (s if j == 0 else 1)
            h, s_h = q, s_x
            if tt != 1:
                h = _layer(h, s_h, t[p + "expand.weight"], bn(p + "bn1"), slot, eps, s_y=r6)
                s_h = r6
            h = _layer(h, s_h, t[p + "dw.weight"], bn(p + "bn2"), slot, eps, st, 1,
                       c * tt, s_y=r6)
            s_y = sc[ch[i + 1]]
            q = _layer(h, r6, t[p + "project.weight"], bn(p + "bn3"), slot, eps, s_y=s_y,
                       lo=-128, hi=127, res=q if (st == 1 and c == cout) else None)
            s_x, c, i = s_y, cout, i + 1
    y = np.clip(_layer(q, s_x, t["last.conv.weight"], bn("last.bn"), slot, eps), 0, 6)
    return y.mean(axis=(2, 3)) @ t["classifier.weight"].T + t["classifier.bias"]


def test_fake_quant_matches_integer_computation(tmp_path):
    src = make_model(tmp_path / "m.rtcm")
    assert run_cli(src, "--data", "synthetic", "--images", 8, "--method", "p99") == 0
    model, doc = load_model(src)
    doc, tensors = read_tensors(src)
    scales = int8.scales_from(doc, tensors)
    fq = int8.FakeQuant(model, scales)
    x = make_inputs(doc["geometry"], 3, 5)
    for s in setups_from_metadata(doc):
        with torch.no_grad():
            model.set_slot(s.bn_slot)
            deq = model.quantize(model.head(x)[:, : s.c], s.L)
        got = fq.tail(deq, s).numpy()
        want = _reference_tail(tensors, doc["geometry"], deq.numpy(), scales[s.id].numpy(),
                               s.bn_slot)
        assert np.allclose(got, want, rtol=1e-5, atol=1e-5), s
        fp32 = model.tail(deq).detach().numpy()
        assert not np.array_equal(got, fp32)  # it does quantize


def test_exact_conv_is_exact_past_float32_sums():
    g = torch.Generator().manual_seed(1)
    qx = torch.randint(0, 256, (2, 4000, 2, 2), generator=g).float()
    qw = torch.randint(-127, 128, (3, 4000, 1, 1), generator=g).float()
    got = int8._exact_conv(qx, qw, 1, 0, 1, 255.0)
    want = np.einsum("bchw,oc->bohw", qx.numpy().astype(np.int64),
                     qw.numpy()[:, :, 0, 0].astype(np.int64))
    assert got.dtype == torch.float32
    assert np.array_equal(got.numpy(), want.astype(np.float32))


def test_golden_int8(tmp_path):
    src = make_model(tmp_path / "m.rtcm", get_geometry("fmnist"), channels=(4, 32),
                     levels=(15,))
    with pytest.raises(int8.Int8Error, match="calibrate"):
        generate(src, str(tmp_path / "g0"), batches=[2], precision="int8", log=lambda *a: None)
    assert run_cli(src, "--data", "synthetic", "--images", 4) == 0
    out = tmp_path / "g"
    idx = generate(src, str(out), batches=[2], seed=3, precision="int8", log=lambda *a: None)
    model, doc = load_model(src)
    fq = int8.FakeQuant(model, int8.scales_from(*read_tensors(src)))
    for case in idx["cases"]:
        assert case["tail_logits_int8"] == "b2_s%d_tail_logits_int8.f32" % case["setup"]
        got = np.fromfile(out / case["tail_logits_int8"], dtype="<f4").reshape(
            case["logits_shape"])
        deq = torch.from_numpy(np.fromfile(out / case["dequant"], dtype="<f4").reshape(
            case["partition_shape"]))
        s = setups_from_metadata(doc)[case["setup"]]
        assert np.array_equal(got, fq.tail(deq, s).numpy())
    plain = generate(src, str(tmp_path / "g2"), batches=[2], log=lambda *a: None)
    assert "tail_logits_int8" not in plain["cases"][0]


def test_shipped_model_int8_close_to_fp32(fmnist_available):
    doc, tensors = read_tensors(SHIPPED)
    if "int8" not in doc:
        pytest.skip("the shipped model has no int8 block")
    scales = int8.scales_from(doc, tensors)
    assert doc["int8"]["data"] == "fashion-mnist train"
    model, doc = load_model(SHIPPED)
    fq = int8.FakeQuant(model, scales)
    te = calibrate.data.load(fmnist_available, "test", 300)
    x = calibrate.data.to_input(te.images)
    setups = setups_from_metadata(doc)
    with torch.no_grad():
        sc = model.stem_conv(x)
        for sid in (4, 17, 45):
            s = setups[sid]
            f = model.forward_from_stem(sc, s)
            q = fq.forward(x, s, sc)
            acc_f = (f.argmax(1) == te.labels).float().mean().item()
            acc_q = (q.argmax(1) == te.labels).float().mean().item()
            assert acc_q >= acc_f - 0.02, (sid, acc_f, acc_q)
            assert (f.argmax(1) == q.argmax(1)).float().mean().item() >= 0.97

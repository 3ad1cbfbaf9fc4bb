import json
import struct

import numpy as np
import pytest
import torch

from training.geometry import get_geometry
from training.model import SWCNN
from training.modelfile import (ModelFileError, default_metadata, export_model, load_model,
                                read_tensors, set_groups)


def _model(geom="fmnist"):
    torch.manual_seed(1)
    m = SWCNN(get_geometry(geom), 50)
    for k, v in m.state_dict().items():
        if k.endswith("running_var"):
            v.uniform_(0.5, 2.0)
        elif k.endswith("running_mean"):
            v.normal_()
    return m


def test_round_trip_is_bit_exact(tmp_path):
    m = _model()
    meta = set_groups(default_metadata(m.geometry), [[0, 1, 5], [2, 3]])
    meta["setups"][3]["accuracy"] = 0.5
    p = tmp_path / "m.rtcm"
    export_model(m, p, meta)
    m2, doc = load_model(p)
    for (k, a), (k2, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    assert doc["geometry"] == get_geometry("fmnist")
    assert doc["groups"] == [[0, 1, 5], [2, 3]]
    assert doc["setups"][5]["group"] == 0 and doc["setups"][4]["group"] == -1
    assert doc["setups"][3]["accuracy"] == 0.5
    x = torch.rand(2, 1, 28, 28)
    m.eval()
    assert torch.equal(m(x), m2(x))


def test_layout_follows_the_contract(tmp_path):
    m = _model()
    p = tmp_path / "m.rtcm"
    export_model(m, p, default_metadata(m.geometry))
    raw = p.read_bytes()
    (n,) = struct.unpack_from("<Q", raw, 0)
    assert n % 8 == 0
    hdr = json.loads(raw[8:8 + n])
    md = hdr.pop("__metadata__")
    assert md["format"] == "rtci-swcnn" and md["format_version"] == "1"
    assert isinstance(md["rtci"], str) and json.loads(md["rtci"])["bn_slots"] == 50
    end = 0
    for name, d in hdr.items():
        assert d["dtype"] == "F32"
        assert d["data_offsets"][0] == end
        end = d["data_offsets"][1]
        assert end - d["data_offsets"][0] == 4 * int(np.prod(d["shape"]))
    assert 8 + n + end == len(raw)
    assert hdr["stem.conv.weight"]["shape"] == [32, 1, 3, 3]
    assert hdr["stem.bn.running_mean"]["shape"] == [50, 32]
    got = np.frombuffer(raw, "<f4", 32 * 9, 8 + n + hdr["stem.conv.weight"]["data_offsets"][0])
    assert np.array_equal(got, m.stem.conv.weight.detach().numpy().ravel())


def _write_foreign(path, tensors, doc, pad=0, version="1", reverse=True):
    """A writer independent of ours: other tensor order, unpadded header (as another tool may do)."""
    hdr = {"__metadata__": {"format": "rtci-swcnn", "format_version": version,
                            "rtci": json.dumps(doc)}}
    items = list(tensors.items())
    if reverse:
        items.reverse()
    blob = b""
    for k, v in items:
        b = np.ascontiguousarray(v, "<f4").tobytes()
        hdr[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [len(blob), len(blob) + len(b)]}
        blob += b
    h = json.dumps(hdr).encode() + b" " * pad
    path.write_bytes(struct.pack("<Q", len(h)) + h + blob)
    return hdr


def test_reads_files_from_another_writer(tmp_path):
    m = _model()
    t = {k: v.numpy() for k, v in m.state_dict().items()}
    p = tmp_path / "f.rtcm"
    _write_foreign(p, t, default_metadata(m.geometry), pad=3)
    m2, _ = load_model(p)
    for k, v in m2.state_dict().items():
        assert np.array_equal(v.numpy(), t[k])


def test_extra_tensors_are_ignored(tmp_path):
    m = _model()
    t = {k: v.numpy() for k, v in m.state_dict().items()}
    t["notes.extra"] = np.ones(3, np.float32)
    p = tmp_path / "x.rtcm"
    _write_foreign(p, t, default_metadata(m.geometry))
    m2, _ = load_model(p)
    assert "notes.extra" not in m2.state_dict()


@pytest.mark.parametrize("damage", ["version", "shape", "missing", "truncated", "overlap",
                                    "header_len", "dtype", "nonfinite"])
def test_rejects_damaged_files(tmp_path, damage):
    m = _model()
    t = {k: v.numpy() for k, v in m.state_dict().items()}
    doc = default_metadata(m.geometry)
    p = tmp_path / "bad.rtcm"
    if damage == "version":
        _write_foreign(p, t, doc, version="2")
    elif damage == "shape":
        t["classifier.bias"] = np.zeros(11, np.float32)
        _write_foreign(p, t, doc)
    elif damage == "missing":
        del t["last.bn.weight"]
        _write_foreign(p, t, doc)
    elif damage == "truncated":
        _write_foreign(p, t, doc)
        p.write_bytes(p.read_bytes()[:-4])
    elif damage == "overlap":
        hdr = _write_foreign(p, t, doc)
        raw = bytearray(p.read_bytes())
        (n,) = struct.unpack_from("<Q", raw, 0)
        b0 = hdr["classifier.weight"]["data_offsets"][0]
        hdr["classifier.bias"]["data_offsets"] = [b0, b0 + 40]
        h = json.dumps(hdr).encode()
        p.write_bytes(struct.pack("<Q", len(h)) + h + bytes(raw[8 + n:]))
    elif damage == "header_len":
        _write_foreign(p, t, doc)
        raw = bytearray(p.read_bytes())
        raw[0:8] = struct.pack("<Q", 1 << 40)
        p.write_bytes(bytes(raw))
    elif damage == "nonfinite":
        t["block1.bn1.running_var"][3, 2] = np.nan
        _write_foreign(p, t, doc)
    elif damage == "dtype":
        hdr = _write_foreign(p, t, doc)
        raw = p.read_bytes()
        (n,) = struct.unpack_from("<Q", raw, 0)
        hdr["classifier.bias"]["dtype"] = "F16"
        h = json.dumps(hdr).encode()
        p.write_bytes(struct.pack("<Q", len(h)) + h + raw[8 + n:])
    with pytest.raises(ModelFileError):
        load_model(p)


def test_large_geometry_round_trip(tmp_path):
    m = _model("mnv2-224")
    p = tmp_path / "big.rtcm"
    export_model(m, p, default_metadata(m.geometry))
    doc, t = read_tensors(p)
    assert doc["geometry"]["name"] == "mnv2-224"
    assert t["classifier.weight"].shape == (196, 1280)
    assert t["stem.conv.weight"].shape == (32, 3, 3, 3)
    assert np.array_equal(t["blocks.15.project.weight"], m.blocks[15].project.weight.detach().numpy())

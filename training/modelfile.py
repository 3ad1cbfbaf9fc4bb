"""Model file writer and reader (docs/model-format.md): safetensors layout, F32 tensors only.

    offset 0    u64 LE  N, the JSON header length (1 <= N <= 16 MiB)
    offset 8    N bytes JSON header: {"__metadata__": {"format": "rtci-swcnn",
                        "format_version": "1", "rtci": "<JSON text>"}, "<tensor>": {"dtype": "F32",
                        "shape": [...], "data_offsets": [begin, end]}, ...}
    offset 8+N  data    raw little-endian float32 tensors

Written with json + struct (no safetensors package needed); reads files made by the C tool
`rtci-model synth` as well.
"""
import json
import struct

import numpy as np
import torch

from .geometry import CHANNELS, LEVELS, raw_bytes, setup_space
from .model import SWCNN

FORMAT = "rtci-swcnn"
FORMAT_VERSION = "1"
MAX_HEADER = 16 << 20


class ModelFileError(ValueError):
    pass


def default_metadata(geometry, bn_slots=None, channels=None, levels=None):
    channels = list(CHANNELS if channels is None else channels)
    levels = list(LEVELS if levels is None else levels)
    setups = setup_space(channels, levels)
    if bn_slots is None:
        bn_slots = len(setups)
    return {
        "geometry": geometry,
        "channels": channels,
        "levels": levels,
        "bn_slots": bn_slots,
        "setups": [{"id": s.id, "c": s.c, "L": s.L, "bn_slot": s.bn_slot if bn_slots > 1 else 0,
                    "group": -1, "accuracy": None, "payload_bytes": None,
                    "raw_bytes": raw_bytes(geometry, s.c, s.L)} for s in setups],
        "groups": [],
        "provenance": "",
    }


def set_groups(meta, groups):
    """Records groups (lists of setup ids) in the metadata and each setup's group index."""
    meta["groups"] = [sorted(int(i) for i in g) for g in groups]
    index = {}
    for gi, g in enumerate(meta["groups"]):
        for sid in g:
            index[sid] = gi
    for s in meta["setups"]:
        s["group"] = index.get(s["id"], -1)
    return meta


def write_tensors(path, tensors, metadata_doc):
    """tensors: ordered (name, float32 array/tensor) pairs. metadata_doc: the rtci document."""
    header = {"__metadata__": {"format": FORMAT, "format_version": FORMAT_VERSION,
                               "rtci": json.dumps(metadata_doc, sort_keys=False)}}
    blobs = []
    off = 0
    for name, t in tensors:
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().numpy()
        a = np.ascontiguousarray(t, dtype="<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)  # keeps tensors 8-byte aligned
    tmp = str(path) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
    import os
    os.replace(tmp, path)


def export_model(model, path, meta):
    meta = dict(meta)
    meta["geometry"] = model.geometry
    meta["bn_slots"] = model.bn_slots
    validate_metadata(meta)
    write_tensors(path, list(model.state_dict().items()), meta)


def read_raw(path):
    """The one reader of a model file: (metadata document, [(name, dtype, shape, raw bytes)] in
    data order). Checks the header length, the JSON header, format and format_version, the rtci
    document, and that every tensor's bytes lie inside the data section without overlapping;
    raises ModelFileError."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ModelFileError("%s: shorter than the 8-byte header length" % path)
    (n,) = struct.unpack_from("<Q", data, 0)
    if n < 1 or n > MAX_HEADER or 8 + n > len(data):
        raise ModelFileError("%s: header length %d out of range" % (path, n))
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ModelFileError("%s: header is not JSON: %s" % (path, e))
    if not isinstance(header, dict):
        raise ModelFileError("%s: header is not an object" % path)
    md = header.pop("__metadata__", None)
    if not isinstance(md, dict) or md.get("format") != FORMAT:
        raise ModelFileError("%s: __metadata__.format is not %r" % (path, FORMAT))
    if md.get("format_version") != FORMAT_VERSION:
        raise ModelFileError("%s: unknown format_version %r" % (path, md.get("format_version")))
    try:
        doc = json.loads(md["rtci"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError("%s: __metadata__.rtci is not a JSON document: %s" % (path, e))
    base = 8 + n
    size = len(data) - base
    found = []
    for name, d in header.items():
        try:
            dtype, shape, (b, e) = d["dtype"], list(d["shape"]), d["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise ModelFileError("%s: tensor %s: malformed entry" % (path, name))
        if not all(isinstance(x, int) and x >= 0 for x in shape + [b, e]) or b > e or e > size:
            raise ModelFileError("%s: tensor %s: bad shape or byte range [%s, %s) in %d data "
                                 "bytes" % (path, name, b, e, size))
        found.append((b, e, name, dtype, shape))
    found.sort()
    for (b0, e0, n0, _, _), (b1, _, n1, _, _) in zip(found, found[1:]):
        if b1 < e0:
            raise ModelFileError("%s: tensors %s and %s overlap" % (path, n0, n1))
    return doc, [(name, dtype, shape, data[base + b:base + e]) for b, e, name, dtype, shape in found]


def read_tensors(path):
    """Returns (metadata document, {name: np.ndarray float32}); raises ModelFileError."""
    doc, entries = read_raw(path)
    tensors = {}
    for name, dtype, shape, blob in entries:
        if dtype != "F32":
            raise ModelFileError("%s: tensor %s: dtype %s, only F32 is used" % (path, name, dtype))
        count = int(np.prod(shape)) if shape else 1
        if len(blob) != 4 * count:
            raise ModelFileError("%s: tensor %s: %d bytes do not fit shape %s" %
                                 (path, name, len(blob), shape))
        tensors[name] = np.frombuffer(blob, dtype="<f4", count=count).reshape(shape).copy()
    return doc, tensors


def validate_metadata(doc):
    for k in ("geometry", "channels", "levels", "bn_slots", "setups"):
        if k not in doc:
            raise ModelFileError("metadata: missing %r" % k)
    ns = len(doc["channels"]) * len(doc["levels"])
    if len(doc["setups"]) != ns:
        raise ModelFileError("metadata: %d setups, expected %d" % (len(doc["setups"]), ns))
    for s in doc["setups"]:
        ci, li = divmod(s["id"], len(doc["levels"]))
        if s["c"] != doc["channels"][ci] or s["L"] != doc["levels"][li]:
            raise ModelFileError("metadata: setup %d is not (c, L) = (%d, %d)"
                                 % (s["id"], doc["channels"][ci], doc["levels"][li]))
        if not 0 <= s["bn_slot"] < doc["bn_slots"]:
            raise ModelFileError("metadata: setup %d: bn_slot out of range" % s["id"])


def load_model(path, device="cpu"):
    """Reads a model file into an SWCNN (eval mode). Returns (model, metadata document)."""
    doc, tensors = read_tensors(path)
    validate_metadata(doc)
    model = SWCNN(doc["geometry"], int(doc["bn_slots"]))
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    if missing:
        raise ModelFileError("%s: tensors missing: %s" % (path, ", ".join(missing[:5])))
    # Tensors the geometry does not name are ignored, as the C reader does.
    sd = {}
    for k, v in expected.items():
        if tuple(tensors[k].shape) != tuple(v.shape):
            raise ModelFileError("%s: tensor %s has shape %s, geometry wants %s"
                                 % (path, k, list(tensors[k].shape), list(v.shape)))
        if not np.isfinite(tensors[k]).all():
            raise ModelFileError("%s: tensor %s: not finite" % (path, k))
        sd[k] = torch.from_numpy(tensors[k])
    model.load_state_dict(sd)
    model.eval()
    return model.to(device), doc


def setups_from_metadata(doc):
    from .geometry import Setup
    return [Setup(s["id"], s["c"], s["L"], s["bn_slot"]) for s in doc["setups"]]

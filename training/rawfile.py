"""Model files at the byte level: every tensor kept as (name, dtype, shape, raw bytes), whatever
its dtype, so a step that adds blocks or tensors never alters what it does not own."""
import json
import os
import struct

from .modelfile import FORMAT, FORMAT_VERSION, MAX_HEADER, ModelFileError


def read_raw(path):
    """Returns (metadata document, [(name, dtype, shape, bytes)] in data order)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ModelFileError("%s: shorter than the 8-byte header length" % path)
    (n,) = struct.unpack_from("<Q", data, 0)
    if n < 1 or n > MAX_HEADER or 8 + n > len(data):
        raise ModelFileError("%s: header length %d out of range" % (path, n))
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
        md = header.pop("__metadata__", {})
        if md.get("format") != FORMAT:
            raise ModelFileError("%s: __metadata__.format is not %r" % (path, FORMAT))
        doc = json.loads(md["rtci"])
        base = 8 + n
        entries = []
        for name, d in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            b, e = d["data_offsets"]
            if not (isinstance(b, int) and isinstance(e, int) and 0 <= b <= e <= len(data) - base):
                raise ModelFileError("%s: tensor %s: byte range out of the file" % (path, name))
            entries.append((name, d["dtype"], list(d["shape"]), data[base + b:base + e]))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
        if isinstance(e, ModelFileError):
            raise
        raise ModelFileError("%s: malformed header: %s" % (path, e))
    return doc, entries


def write_raw(path, doc, entries):
    header = {"__metadata__": {"format": FORMAT, "format_version": FORMAT_VERSION,
                               "rtci": json.dumps(doc, sort_keys=False)}}
    off = 0
    for name, dtype, shape, blob in entries:
        pad = (8 - off % 8) % 8  # keeps every tensor 8-byte aligned
        off += pad
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(blob)]}
        off += len(blob)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    tmp = str(path) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        pos = 0
        for name, _, _, blob in entries:
            start = header[name]["data_offsets"][0]
            f.write(b"\0" * (start - pos))
            f.write(blob)
            pos = start + len(blob)
    os.replace(tmp, path)

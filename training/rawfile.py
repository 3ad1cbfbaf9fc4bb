"""Model files written at the byte level: every tensor kept as (name, dtype, shape, raw bytes),
whatever its dtype, so a step that adds blocks or tensors never alters what it does not own.
modelfile.read_raw reads them (the one reader of the format)."""
import json
import os
import struct

from .modelfile import FORMAT, FORMAT_VERSION


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

"""Network geometries and the compression setup space (docs/model-format.md).

A geometry is a plain dict, identical to the `geometry` object of a model file's metadata, so the
network can be rebuilt from a file alone.
"""
import copy
import math

GEOMETRIES = {
    "mnv2-224": {
        "name": "mnv2-224",
        "input": [3, 224, 224],
        "input_mean": [0.485, 0.456, 0.406],
        "input_std": [0.229, 0.224, 0.225],
        "classes": 196,
        "stem": {"out": 32, "kernel": 3, "stride": 2, "pad": 1},
        "block1": {"out": 16},
        "blocks": [[6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                   [6, 160, 3, 2], [6, 320, 1, 1]],
        "last_channels": 1280,
        "bn_eps": 1e-5,
    },
    "fmnist": {
        "name": "fmnist",
        "input": [1, 28, 28],
        "input_mean": [0.2860],
        "input_std": [0.3530],
        "classes": 10,
        "stem": {"out": 32, "kernel": 3, "stride": 2, "pad": 1},
        "block1": {"out": 16},
        "blocks": [[6, 24, 2, 2], [6, 32, 2, 2], [6, 64, 2, 1]],
        "last_channels": 256,
        "bn_eps": 1e-5,
    },
}

CHANNELS = [1, 2, 3, 4, 5, 6, 7, 8, 16, 32]
LEVELS = [65535, 255, 15, 3, 1]


def get_geometry(name):
    if name not in GEOMETRIES:
        raise KeyError("unknown geometry %r (known: %s)" % (name, ", ".join(sorted(GEOMETRIES))))
    return copy.deepcopy(GEOMETRIES[name])


def conv_out(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


def partition_shape(geometry):
    """(C, H', W') of the stem output (the partition tensor before slicing)."""
    st = geometry["stem"]
    _, h, w = geometry["input"]
    return (st["out"], conv_out(h, st["kernel"], st["stride"], st["pad"]),
            conv_out(w, st["kernel"], st["stride"], st["pad"]))


def bits_of(L):
    return int(math.ceil(math.log2(L + 1)))


class Setup:
    """One compression setup: keep c channels, quantize to L+1 levels, use BN row bn_slot.

    L = None means no quantization (the uncompressed network used for initialization)."""

    __slots__ = ("id", "c", "L", "bn_slot")

    def __init__(self, id, c, L, bn_slot):
        self.id, self.c, self.L, self.bn_slot = id, c, L, bn_slot

    def __repr__(self):
        return "Setup(id=%d, c=%d, L=%s, slot=%d)" % (self.id, self.c, self.L, self.bn_slot)


def uncompressed_setup(geometry):
    return Setup(-1, geometry["stem"]["out"], None, 0)


def setup_space(channels=None, levels=None):
    """All setups in file order: id = ci * len(levels) + li, bn_slot = id."""
    channels = list(CHANNELS if channels is None else channels)
    levels = list(LEVELS if levels is None else levels)
    out = []
    for ci, c in enumerate(channels):
        for li, L in enumerate(levels):
            sid = ci * len(levels) + li
            out.append(Setup(sid, c, L, sid))
    return out


def largest_setup(setups):
    return max(setups, key=lambda s: (s.c * bits_of(s.L), s.c, s.L))


def smallest_setup(setups):
    return min(setups, key=lambda s: (s.c * bits_of(s.L), s.c, s.L))


def raw_bytes(geometry, c, L):
    """Payload before entropy coding: packed bits rounded up to bytes plus 8 bytes per channel."""
    _, h, w = partition_shape(geometry)
    return (c * h * w * bits_of(L) + 7) // 8 + 8 * c

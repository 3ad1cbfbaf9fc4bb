"""The C feature codec (inference/codec.c) from Python, through ctypes.

Used to check the PyTorch quantizer against the codec bit for bit and to measure exact payload
sizes for the model file's metadata. The shared library is compiled from the repository's own
sources with the system C compiler on first use (cached by source hash); `load()` returns None
when the sources, a compiler or libzstd's headers are missing, so callers can fall back.
"""
import ctypes
import hashlib
import os
import shutil
import subprocess

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ["inference/codec.c", "common/rtci_error.c"]
HEADERS = ["inference/codec.h", "common/rtci_error.h"]


class _Desc(ctypes.Structure):
    _fields_ = [("c", ctypes.c_uint32), ("levels", ctypes.c_uint32),
                ("channels", ctypes.c_uint32), ("height", ctypes.c_uint32),
                ("width", ctypes.c_uint32)]


class _Config(ctypes.Structure):
    _fields_ = [("level", ctypes.c_int), ("max_elements", ctypes.c_uint32),
                ("checksum", ctypes.c_bool)]


def build(cache_dir=None):
    """Compiles the codec into a shared library; returns its path or None."""
    paths = [os.path.join(REPO, p) for p in SOURCES + HEADERS]
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if not cc or not all(os.path.exists(p) for p in paths):
        return None
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            h.update(f.read())
    cache_dir = cache_dir or os.path.join(REPO, "training", "runs", ".codec")
    os.makedirs(cache_dir, exist_ok=True)
    lib = os.path.join(cache_dir, "librtci_codec_%s.so" % h.hexdigest()[:16])
    if os.path.exists(lib):
        return lib
    tmp = lib + ".%d.tmp" % os.getpid()
    cmd = [cc, "-std=c17", "-O2", "-D_GNU_SOURCE", "-shared", "-fPIC", "-I" + REPO] + \
        [os.path.join(REPO, s) for s in SOURCES] + ["-lzstd", "-lm", "-o", tmp]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return None
    os.replace(tmp, lib)
    return lib


class Codec:
    def __init__(self, path, level=0):
        self.lib = lib = ctypes.CDLL(path)
        f = ctypes.c_float
        lib.rtci_codec_quantize_ref.argtypes = [ctypes.POINTER(f), ctypes.c_size_t,
                                                ctypes.c_size_t, ctypes.c_uint32]
        lib.rtci_codec_quantize_ref.restype = ctypes.c_int
        lib.rtci_codec_create.argtypes = [ctypes.POINTER(_Config), ctypes.POINTER(ctypes.c_void_p)]
        lib.rtci_codec_create.restype = ctypes.c_int
        lib.rtci_codec_destroy.argtypes = [ctypes.c_void_p]
        lib.rtci_codec_encode.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Desc),
                                          ctypes.POINTER(f), ctypes.c_void_p, ctypes.c_size_t]
        lib.rtci_codec_encode.restype = ctypes.c_ssize_t
        lib.rtci_codec_decode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                                          ctypes.POINTER(f), ctypes.c_size_t, ctypes.c_uint32,
                                          ctypes.POINTER(_Desc)]
        lib.rtci_codec_decode.restype = ctypes.c_int
        lib.rtci_codec_quantize_pack.argtypes = [ctypes.POINTER(_Desc), ctypes.POINTER(f),
                                                 ctypes.POINTER(f), ctypes.c_void_p]
        lib.rtci_codec_quantize_pack.restype = ctypes.c_int
        lib.rtci_codec_max_encoded_size.argtypes = [ctypes.c_uint32] * 4
        lib.rtci_codec_max_encoded_size.restype = ctypes.c_ssize_t
        lib.rtci_codec_packed_size.argtypes = [ctypes.c_uint32] * 4
        lib.rtci_codec_packed_size.restype = ctypes.c_ssize_t
        lib.rtci_strerror.argtypes = [ctypes.c_int]
        lib.rtci_strerror.restype = ctypes.c_char_p
        cfg = _Config(level, 0, False)
        self.ctx = ctypes.c_void_p()
        rc = lib.rtci_codec_create(ctypes.byref(cfg), ctypes.byref(self.ctx))
        if rc != 0:
            raise RuntimeError("rtci_codec_create: %s" % self.err(rc))

    def err(self, rc):
        return self.lib.rtci_strerror(int(rc)).decode()

    def close(self):
        if self.ctx:
            self.lib.rtci_codec_destroy(self.ctx)
            self.ctx = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    @staticmethod
    def _fptr(a):
        return a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))

    def quantize_ref(self, x, L):
        """x: float32 [channels, ...]; returns the codec's dequantized copy."""
        a = np.array(x, dtype=np.float32, order="C", copy=True)
        rc = self.lib.rtci_codec_quantize_ref(self._fptr(a), a.shape[0], a.size // a.shape[0], L)
        if rc != 0:
            raise RuntimeError("rtci_codec_quantize_ref: %s" % self.err(rc))
        return a

    def _desc(self, x, c, L):
        C_, H, W = x.shape
        return _Desc(c, L, C_, H, W)

    def quantize_pack(self, x, c, L):
        """Side info [c, 2] (min, max) and the packed codes of channels 0..c-1 of x [C, H, W]."""
        a = np.ascontiguousarray(x, dtype=np.float32)
        d = self._desc(a, c, L)
        side = np.zeros(2 * c, np.float32)
        n = self.lib.rtci_codec_packed_size(c, L, a.shape[1], a.shape[2])
        packed = (ctypes.c_uint8 * n)()
        rc = self.lib.rtci_codec_quantize_pack(ctypes.byref(d), self._fptr(a), self._fptr(side),
                                               packed)
        if rc != 0:
            raise RuntimeError("rtci_codec_quantize_pack: %s" % self.err(rc))
        return side.reshape(c, 2), bytes(packed)

    def encode(self, x, c, L):
        """One frame (bytes) of channels 0..c-1 of x [C, H, W]."""
        a = np.ascontiguousarray(x, dtype=np.float32)
        d = self._desc(a, c, L)
        cap = self.lib.rtci_codec_max_encoded_size(c, L, a.shape[1], a.shape[2])
        buf = (ctypes.c_uint8 * cap)()
        n = self.lib.rtci_codec_encode(self.ctx, ctypes.byref(d), self._fptr(a), buf, cap)
        if n < 0:
            raise RuntimeError("rtci_codec_encode: %s" % self.err(n))
        return bytes(buf[:n])

    def decode(self, frame, shape):
        """Decodes a frame into float32 of `shape` [c, H, W]."""
        out = np.zeros(shape, np.float32)
        src = (ctypes.c_uint8 * len(frame)).from_buffer_copy(frame)
        rc = self.lib.rtci_codec_decode(self.ctx, src, len(frame), self._fptr(out), out.size, 0,
                                        None)
        if rc != 0:
            raise RuntimeError("rtci_codec_decode: %s" % self.err(rc))
        return out


def load(cache_dir=None, level=0):
    path = build(cache_dir)
    if path is None:
        return None
    try:
        return Codec(path, level)
    except (OSError, AttributeError):
        return None

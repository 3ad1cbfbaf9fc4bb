"""Fashion-MNIST from the IDX gzip files (Debian package dataset-fashion-mnist); no downloads.

Images stay uint8 in memory; batches are made on the fly as pixel/255 float32 [B, 1, 28, 28],
with optional augmentation (random shift by up to `pad` pixels and horizontal flip), seeded per
step so a resumed run sees the same batches.
"""
import gzip
import os
import struct

import numpy as np
import torch

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError("%s: not an IDX file" % path)
    dtype_code, ndim = data[2], data[3]
    if dtype_code != 0x08:
        raise ValueError("%s: only unsigned byte IDX files are supported" % path)
    dims = struct.unpack_from(">" + "I" * ndim, data, 4)
    off = 4 + 4 * ndim
    n = int(np.prod(dims))
    if len(data) - off != n:
        raise ValueError("%s: %d data bytes, dimensions %s need %d" % (path, len(data) - off,
                                                                       dims, n))
    return np.frombuffer(data, dtype=np.uint8, offset=off).reshape(dims)


class Split:
    def __init__(self, images, labels):
        assert len(images) == len(labels)
        self.images = torch.from_numpy(np.array(images, dtype=np.uint8)).unsqueeze(1)  # [N,1,H,W]
        self.labels = torch.from_numpy(labels.astype(np.int64))

    def __len__(self):
        return len(self.labels)

    def subset(self, n):
        out = Split.__new__(Split)
        out.images, out.labels = self.images[:n], self.labels[:n]
        return out


def load(data_dir=DEFAULT_DIR, split="train", limit=None):
    """A Split; `limit` keeps the first N images (tiny runs). Raises FileNotFoundError."""
    img, lab = FILES[split]
    s = Split(read_idx(os.path.join(data_dir, img)), read_idx(os.path.join(data_dir, lab)))
    if limit:
        s = s.subset(int(limit))
    return s


def epoch_order(n, seed, epoch):
    g = torch.Generator().manual_seed(seed * 7919 + epoch)
    return torch.randperm(n, generator=g)


def augment(x, gen, pad=2, flip=True):
    """Random shift by up to `pad` pixels (zero fill) and horizontal flip; x uint8 [B,1,H,W]."""
    b, c, h, w = x.shape
    if pad:
        xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        oy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
        ox = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
        iy = (oy[:, None] + torch.arange(h)[None, :])  # [B,H]
        ix = (ox[:, None] + torch.arange(w)[None, :])  # [B,W]
        bi = torch.arange(b)[:, None, None]
        x = torch.stack([xp[bi, ch, iy[:, :, None], ix[:, None, :]] for ch in range(c)], dim=1)
    if flip:
        m = torch.rand(b, generator=gen) < 0.5
        x = torch.where(m[:, None, None, None], x.flip(3), x)
    return x


def to_input(x_u8):
    return x_u8.float() / 255.0


def train_batches(split, batch_size, seed, epoch, start=0, aug=True, pad=2):
    """Yields (index_in_epoch, images float, labels) for one epoch, from batch `start` on."""
    order = epoch_order(len(split), seed, epoch)
    nb = len(split) // batch_size
    for i in range(start, nb):
        idx = order[i * batch_size:(i + 1) * batch_size]
        x = split.images[idx]
        if aug:
            g = torch.Generator().manual_seed((seed * 1000003 + epoch) * 100003 + i)
            x = augment(x, g, pad=pad)
        yield i, to_input(x), split.labels[idx]


def steps_per_epoch(split, batch_size):
    return len(split) // batch_size


def test_batches(split, batch_size=1000):
    for i in range(0, len(split), batch_size):
        yield to_input(split.images[i:i + batch_size]), split.labels[i:i + batch_size]

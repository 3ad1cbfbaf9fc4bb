import gzip
import struct

import numpy as np
import pytest
import torch

from training import data


def test_idx_reader(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / "x.gz"
    with gzip.open(p, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 3, 4) + arr.tobytes())
    assert np.array_equal(data.read_idx(str(p)), arr)
    with gzip.open(p, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 3, 5) + arr.tobytes())
    with pytest.raises(ValueError):
        data.read_idx(str(p))


def test_fashion_mnist_files(fmnist_available):
    tr = data.load(fmnist_available, "train")
    te = data.load(fmnist_available, "test", limit=100)
    assert len(tr) == 60000 and len(te) == 100
    assert tr.images.shape == (60000, 1, 28, 28) and tr.images.dtype == torch.uint8
    assert sorted(torch.bincount(tr.labels).tolist()) == [6000] * 10


def test_batches_are_reproducible_and_augmented():
    split = data.Split(np.random.RandomState(0).randint(0, 255, (50, 28, 28)).astype(np.uint8),
                       np.arange(50) % 10)
    a = list(data.train_batches(split, 16, 5, 2))
    b = list(data.train_batches(split, 16, 5, 2, start=1))
    assert len(a) == 3 and torch.equal(a[1][1], b[0][1]) and torch.equal(a[2][2], b[1][2])
    plain = list(data.train_batches(split, 16, 5, 2, aug=False))
    assert torch.equal(plain[0][2], a[0][2])
    assert not torch.equal(plain[0][1], a[0][1])
    assert a[0][1].min() >= 0 and a[0][1].max() <= 1
    other_epoch = list(data.train_batches(split, 16, 5, 3, aug=False))
    assert not torch.equal(other_epoch[0][2], plain[0][2])

import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

torch.set_num_threads(1)

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"


@pytest.fixture
def fmnist_available():
    if not os.path.exists(os.path.join(FMNIST_DIR, "train-images-idx3-ubyte.gz")):
        pytest.skip("Fashion-MNIST IDX files not installed")
    return FMNIST_DIR

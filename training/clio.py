"""CLIO: progressive slices of the partition tensor, one server model per width.

The device computes the 32-channel partition tensor once (one BN slot for every width: the slot of
the setup (32 channels, CLIO's L)), quantizes it at L and sends the channels in order; the server
runs the model of the widest slice that arrived. Each width's server model is the SW-CNN's tail
with that width's setup BN slot (w channels, L), fine-tuned on the frozen shared partition tensor.
"""
import torch
import torch.nn.functional as F

from .geometry import Setup
from .model import SWCNN
from .quant import quantize_exact, quantize_ste

WIDTHS = [1, 2, 4, 8, 16, 32]


def find_setup(doc, c, L):
    for s in doc["setups"]:
        if s["c"] == c and s["L"] == L:
            return Setup(s["id"], s["c"], s["L"], s["bn_slot"])
    raise ValueError("no setup (c=%d, L=%d) in the model file" % (c, L))


def server_model(model, slot):
    """A one-slot copy of the SW-CNN with BN statistics of `slot` (the width's setup)."""
    m = SWCNN(model.geometry, 1)
    sd = {}
    for k, v in model.state_dict().items():
        if k.endswith("running_mean") or k.endswith("running_var"):
            sd[k] = v[slot:slot + 1].clone()
        else:
            sd[k] = v.clone()
    m.load_state_dict(sd)
    m.set_slot(0)
    return m


@torch.no_grad()
def shared_partition(model, x, stem_setup):
    model.eval()
    model.set_slot(stem_setup.bn_slot)
    return model.head(x)


def server_logits(server, part, width, L, train):
    p = part[:, :width]
    return server.tail(quantize_ste(p, L) if train else quantize_exact(p, L))


def batch_fn(model, stem_setup, width, L):
    def fn(server, x, y, step):
        out = server_logits(server, shared_partition(model, x, stem_setup), width, L, True)
        loss = F.cross_entropy(out, y)
        loss.backward()
        return loss.item(), (out.argmax(1) == y).sum().item(), len(y)
    return fn


@torch.no_grad()
def accuracy(model, server, split, stem_setup, width, L, batch_size=1000):
    from . import data
    server.eval()
    correct = 0
    for x, y in data.test_batches(split, batch_size):
        out = server_logits(server, shared_partition(model, x, stem_setup), width, L, False)
        correct += (out.argmax(1) == y).sum().item()
    return correct / len(split)

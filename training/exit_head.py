"""The exit head: a small classifier on the partition tensor, run on the device.

It is SPINN's early-exit branch (docs/ablation.md) and the device's local exit
(docs/model-format.md, `exit.*` tensors): conv 3x3 (32 -> 128, stride 2) + BN + ReLU6,
conv 3x3 (128 -> 128, stride 2) + BN + ReLU6, global average pool, linear (128 -> classes).

Its input is the full 32-channel partition tensor computed with the BN slot of the exit's input
setup: the setup with every channel and the most levels (`exit_input_setup`). The SW-CNN stays
frozen; only the head is trained.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .geometry import Setup

WIDTH = 128


class ExitHead(nn.Module):
    def __init__(self, cin, classes, width=WIDTH, eps=1e-5):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width, eps=eps)
        self.conv2 = nn.Conv2d(width, width, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width, eps=eps)
        self.fc = nn.Linear(width, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, p):
        x = F.relu6(self.bn1(self.conv1(p)))
        x = F.relu6(self.bn2(self.conv2(x)))
        return self.fc(x.mean(dim=(2, 3)))


def build(geometry):
    return ExitHead(geometry["stem"]["out"], geometry["classes"], eps=geometry["bn_eps"])


def exit_input_setup(doc):
    """The setup whose BN slot computes the exit's input: all channels, the most levels."""
    c = doc["geometry"]["stem"]["out"]
    best = None
    for s in doc["setups"]:
        if s["c"] == c and (best is None or s["L"] > best["L"]):
            best = s
    if best is None:
        raise ValueError("no setup keeps all %d partition channels" % c)
    return Setup(best["id"], best["c"], best["L"], best["bn_slot"])


def exit_tensors(head):
    """(name, tensor) pairs as stored in the model file: `exit.` + the module's names."""
    return [("exit." + k, v) for k, v in head.state_dict().items()
            if not k.endswith("num_batches_tracked")]


def load_exit_tensors(head, tensors):
    sd = head.state_dict()
    for k in sd:
        if k.endswith("num_batches_tracked"):
            continue
        name = "exit." + k
        if name not in tensors:
            raise KeyError("tensor %s missing" % name)
        sd[k] = torch.as_tensor(tensors[name]).reshape(sd[k].shape)
    head.load_state_dict(sd)
    return head.eval()


@torch.no_grad()
def partition(model, x, setup):
    """The device's partition tensor for `setup` (all channels), frozen SW-CNN in eval mode."""
    model.eval()
    model.set_slot(setup.bn_slot)
    return model.head(x)


@torch.no_grad()
def predict(model, head, split, setup, batch_size=1000):
    """Softmax confidence (max probability) and predicted class per image of a split."""
    from . import data
    head.eval()
    conf, pred = [], []
    for x, _ in data.test_batches(split, batch_size):
        pr = torch.softmax(head(partition(model, x, setup)), dim=1)
        c, p = pr.max(dim=1)
        conf.append(c)
        pred.append(p)
    return torch.cat(conf), torch.cat(pred)


__all__ = ["ExitHead", "build", "exit_input_setup", "exit_tensors", "load_exit_tensors",
           "partition", "predict"]

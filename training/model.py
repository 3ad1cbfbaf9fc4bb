"""The switchable CNN (SW-CNN) of docs/model-format.md, in PyTorch.

Module and parameter names are the model file's tensor names; do not rename them.
Every BatchNorm keeps one row of running statistics per BN slot; the affine weight and bias are
shared. `set_slot()` chooses the row for all BatchNorms at once (a setup uses one slot for the whole
network). In training mode a BatchNorm normalizes with batch statistics and updates only the
chosen slot's running statistics.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .geometry import Setup, partition_shape, uncompressed_setup
from .quant import quantize_exact, quantize_ste


class SwitchBatchNorm2d(nn.Module):
    def __init__(self, channels, slots, eps, momentum=0.1):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(slots, channels))
        self.register_buffer("running_var", torch.ones(slots, channels))
        self.eps = eps
        self.momentum = momentum
        self.slot = 0

    def forward(self, x):
        # Row views share storage, so the training-mode update lands in the chosen slot.
        rm = self.running_mean[self.slot]
        rv = self.running_var[self.slot]
        return F.batch_norm(x, rm, rv, self.weight, self.bias, self.training, self.momentum,
                            self.eps)


class ConvBN(nn.Module):
    """conv (no bias) + BN (+ ReLU6); module names 'conv' and 'bn' as in the file."""

    def __init__(self, cin, cout, k, s, p, slots, eps, relu=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, p, bias=False)
        self.bn = SwitchBatchNorm2d(cout, slots, eps)
        self.relu = relu

    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.relu6(x) if self.relu else x


class Block1(nn.Module):
    """Dense 3x3 conv over the (zero-filled) partition, BN, ReLU6, 1x1 conv, BN."""

    def __init__(self, cin, out, slots, eps):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, 1, 1, bias=False)
        self.bn1 = SwitchBatchNorm2d(cin, slots, eps)
        self.conv2 = nn.Conv2d(cin, out, 1, 1, 0, bias=False)
        self.bn2 = SwitchBatchNorm2d(out, slots, eps)

    def forward(self, x):
        # x has c <= 32 channels; conv with weight[:, :c] equals zero-filling x to 32 channels.
        c = x.shape[1]
        w = self.conv1.weight if c == self.conv1.in_channels else self.conv1.weight[:, :c]
        x = F.relu6(self.bn1(F.conv2d(x, w, None, 1, 1)))
        return self.bn2(self.conv2(x))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, t, s, slots, eps):
        super().__init__()
        hid = cin * t
        if t != 1:
            self.expand = nn.Conv2d(cin, hid, 1, 1, 0, bias=False)
            self.bn1 = SwitchBatchNorm2d(hid, slots, eps)
        else:
            self.expand = None
        self.dw = nn.Conv2d(hid, hid, 3, s, 1, groups=hid, bias=False)
        self.bn2 = SwitchBatchNorm2d(hid, slots, eps)
        self.project = nn.Conv2d(hid, cout, 1, 1, 0, bias=False)
        self.bn3 = SwitchBatchNorm2d(cout, slots, eps)
        self.residual = s == 1 and cin == cout

    def forward(self, x):
        y = x
        if self.expand is not None:
            y = F.relu6(self.bn1(self.expand(y)))
        y = F.relu6(self.bn2(self.dw(y)))
        y = self.bn3(self.project(y))
        return x + y if self.residual else y


class SWCNN(nn.Module):
    def __init__(self, geometry, bn_slots):
        super().__init__()
        g = geometry
        self.geometry = g
        self.bn_slots = bn_slots
        eps = g["bn_eps"]
        cin = g["input"][0]
        st = g["stem"]
        self.stem = ConvBN(cin, st["out"], st["kernel"], st["stride"], st["pad"], bn_slots, eps)
        self.block1 = Block1(st["out"], g["block1"]["out"], bn_slots, eps)
        blocks = []
        c = g["block1"]["out"]
        for t, cout, n, s in g["blocks"]:
            for i in range(n):
                blocks.append(InvertedResidual(c, cout, t, s if i == 0 else 1, bn_slots, eps))
                c = cout
        self.blocks = nn.Sequential(*blocks)
        self.last = ConvBN(c, g["last_channels"], 1, 1, 0, bn_slots, eps)
        self.classifier = nn.Linear(g["last_channels"], g["classes"])
        mean = torch.tensor(g["input_mean"], dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(g["input_std"], dtype=torch.float32).view(1, -1, 1, 1)
        # Not in the file: derived from the geometry.
        self.register_buffer("input_mean", mean, persistent=False)
        self.register_buffer("input_std", std, persistent=False)
        self._init_weights()

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def set_slot(self, slot):
        if not 0 <= slot < self.bn_slots:
            raise ValueError("BN slot %d outside [0, %d)" % (slot, self.bn_slots))
        for m in self.modules():
            if isinstance(m, SwitchBatchNorm2d):
                m.slot = slot

    # The pipeline in stages, as the edge and the gateway split it.
    def stem_conv(self, x):
        """Normalization and the stem convolution (shared by every setup)."""
        return self.stem.conv((x - self.input_mean) / self.input_std)

    def stem_finish(self, y):
        """Stem BN + ReLU6 on stem_conv's output, with the current slot."""
        return F.relu6(self.stem.bn(y))

    def head(self, x):
        """Edge side: input image (pixel/255) to the 32-channel partition tensor."""
        return self.stem_finish(self.stem_conv(x))

    def quantize(self, p, L):
        if L is None:
            return p
        return quantize_ste(p, L) if self.training else quantize_exact(p, L)

    def tail(self, xq):
        """Gateway side: the dequantized c-channel partition tensor to logits."""
        x = self.block1(xq)
        x = self.blocks(x)
        x = self.last(x)
        x = x.mean(dim=(2, 3))
        return self.classifier(x)

    def forward(self, x, setup=None):
        if setup is None:
            setup = uncompressed_setup(self.geometry)
        self.set_slot(setup.bn_slot)
        p = self.head(x)[:, : setup.c]
        return self.tail(self.quantize(p, setup.L))

    def forward_from_stem(self, stem_conv_out, setup):
        """As forward(), reusing a precomputed stem_conv() output."""
        self.set_slot(setup.bn_slot)
        p = self.stem_finish(stem_conv_out)[:, : setup.c]
        return self.tail(self.quantize(p, setup.L))

    def tensor_names(self):
        return list(self.state_dict().keys())


def build(geometry, bn_slots):
    return SWCNN(geometry, bn_slots)


def broadcast_bn_slots(src, dst):
    """Copies a model's weights into a model with more BN slots; every slot of dst gets slot 0's
    statistics of src (the Initialization of the SW-CNN)."""
    sd = src.state_dict()
    out = {}
    for k, v in dst.state_dict().items():
        s = sd[k]
        if k.endswith("running_mean") or k.endswith("running_var"):
            out[k] = s[0:1].expand_as(v).clone()
        else:
            out[k] = s.clone()
    dst.load_state_dict(out)
    return dst


def partition_hw(geometry):
    return partition_shape(geometry)[1:]


__all__ = ["SWCNN", "SwitchBatchNorm2d", "Setup", "build", "broadcast_bn_slots"]

"""The int8 tail (docs/model-format.md, "int8 calibration"): calibration points and the
fake-quant reference the C engine is checked against.

Activations: the tail input u8 with a calibrated scale (point 0); every ReLU6 output u8 with the
fixed scale 6/255; linear bottlenecks s8 with one calibrated scale per residual chain (points
1..). Weights s8 per output channel, symmetric. Per layer, for setup S (BN folded from S's slot):

    acc = sum q_w * q_x                                   (exact integers)
    y   = acc * (s_x * s_w * a / s_y) + b / s_y  (+ q_residual)
    q_y = saturate(round_half_even(y))

all in float32 like the engine. The convolutions run in float32 when every partial sum stays
below 2^24 (then exact), in float64 otherwise.
"""
import numpy as np
import torch
import torch.nn.functional as F

RELU6_SCALE = torch.tensor(6.0 / 255.0, dtype=torch.float32)
U8 = (0.0, 255.0)
S8 = (-128.0, 127.0)
WEIGHTS = "per-channel symmetric s8"
ACTIVATIONS = "u8 relu6 fixed 6/255; s8 per residual chain"


class Int8Error(ValueError):
    pass


def chains(geometry):
    """Chain number (1..) of block1's output and of each MobileNetV2 block's output."""
    out, c, k = [], geometry["block1"]["out"], 1
    for t, cout, n, s in geometry["blocks"]:
        for i in range(n):
            residual = (s if i == 0 else 1) == 1 and c == cout
            if not residual:
                k += 1
            out.append(k)
            c = cout
    return [1] + out


def n_points(geometry):
    """Point 0 (the tail input) plus one per residual chain."""
    return 1 + max(chains(geometry))


# --- calibration -------------------------------------------------------------------------------

def parse_method(text):
    """'max' or 'pNN.NN' (a percentile of |x|) -> (key, the metadata's wording)."""
    if text == "max":
        return ("max", None), "max"
    if text.startswith("p"):
        try:
            q = float(text[1:])
        except ValueError:
            q = -1.0
        if 50.0 <= q < 100.0:
            return ("percentile", q), "percentile %s" % text[1:]
    raise Int8Error("--method %r: use 'max' or 'pNN.NN' (a percentile of |x|, 50 <= NN < 100)"
                    % text)


def statistic(values, method):
    """The statistic of |x| over a flat float32 array."""
    kind, q = method
    if values.size == 0:
        return 0.0
    if kind == "max":
        return float(values.max())
    k = min(values.size - 1, int(np.floor(q / 100.0 * (values.size - 1) + 0.5)))
    return float(np.partition(values, k)[k])


@torch.no_grad()
def record_points(model, deq):
    """|x| of every point for one batch of the tail (fp32): [flat float32 array per point]."""
    g = model.geometry
    ch = chains(g)
    pts = [[] for _ in range(n_points(g))]
    pts[0].append(deq.abs().flatten())
    x = model.block1(deq)
    pts[ch[0]].append(x.abs().flatten())
    for blk, k in zip(model.blocks, ch[1:]):
        x = blk(x)
        pts[k].append(x.abs().flatten())
    return [torch.cat(p) for p in pts]


@torch.no_grad()
def calibrate(model, setups, batches, methods, log=lambda *a: None):
    """Runs each setup's deployed pipeline (head with its BN slot, codec quantize + dequantize of
    the first c channels, tail) on `batches` (list of image tensors) and returns, for each method,
    a float32 array [len(setups), n_points] of scales: stat / 255 for point 0, stat / 127 else."""
    model.eval()
    npts = n_points(model.geometry)
    stems = [model.stem_conv(x) for x in batches]
    out = {m: np.zeros((len(setups), npts), dtype=np.float32) for m in methods}
    for row, s in enumerate(setups):
        model.set_slot(s.bn_slot)
        acc = [[] for _ in range(npts)]
        for sc in stems:
            part = model.stem_finish(sc)[:, : s.c]
            for k, v in enumerate(record_points(model, model.quantize(part, s.L))):
                acc[k].append(v)
        vals = [torch.cat(a).numpy() for a in acc]
        for m in methods:
            for k, v in enumerate(vals):
                stat = np.float32(statistic(v, m))
                sc = stat / np.float32(255.0 if k == 0 else 127.0)
                # a point that is zero everywhere still needs a positive scale
                out[m][row, k] = sc if sc > 0 and np.isfinite(sc) else np.float32(1.0 / 255.0)
        log("calibrate: setup %d (c %d, L %d) done" % (s.id, s.c, s.L))
    return out


# --- the model file's int8 block --------------------------------------------------------------

def block(points, images, data, method_text):
    return {"points": points, "images": images, "data": data, "method": method_text,
            "weights": WEIGHTS, "activations": ACTIVATIONS}


def scales_from(doc, tensors):
    """The checked int8.act_scale tensor of a file read by modelfile.read_tensors, or raises
    Int8Error (also when the file has no int8 block)."""
    if "int8" not in doc or "int8.act_scale" not in tensors:
        raise Int8Error("model has no int8 calibration: run python3 -m training calibrate")
    a = tensors["int8.act_scale"]
    want = (len(doc["setups"]), n_points(doc["geometry"]))
    if tuple(a.shape) != want:
        raise Int8Error("int8.act_scale has shape %s, expected %s" % (list(a.shape), list(want)))
    if doc["int8"].get("points") != want[1]:
        raise Int8Error("int8.points is %r, expected %d" % (doc["int8"].get("points"), want[1]))
    if not (np.isfinite(a).all() and (a > 0).all()):
        raise Int8Error("int8.act_scale: every scale must be finite and > 0")
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


# --- fake-quant reference ---------------------------------------------------------------------

def quantize_weight(w):
    """(q_w as float32, s_w [oc]) per output channel, symmetric, in float32."""
    w = w.detach().float()
    m = w.abs().flatten(1).amax(dim=1)
    s = torch.where(m > 0, m / 127.0, torch.ones_like(m))
    q = torch.clamp(torch.round(w / s.view(-1, 1, 1, 1)), -127.0, 127.0)
    return q, s


def fold_bn(bn):
    """(a, b) of the BN's current slot: y = x * a + b, float32."""
    a = bn.weight.detach() / torch.sqrt(bn.running_var[bn.slot] + bn.eps)
    return a, bn.bias.detach() - bn.running_mean[bn.slot] * a


def _exact_conv(qx, qw, stride, pad, groups, xmax):
    """sum q_w * q_x of integer-valued tensors (|q_x| <= xmax), exact, then as float32 (rounded
    to nearest like an int32 -> float conversion when past 2^24)."""
    fan_in = qw.shape[1] * qw.shape[2] * qw.shape[3]
    if fan_in * 127.0 * xmax < 2.0 ** 24:
        return F.conv2d(qx, qw, None, stride, pad, 1, groups)
    return F.conv2d(qx.double(), qw.double(), None, stride, pad, 1, groups).float()


def qconv(qx, s_x, qw_sw, bn, stride=1, pad=0, groups=1, s_y=None, rng=None, residual=None):
    """One int8 layer. s_y None: f32 output (acc * s_x * s_w * a + b), else q_y in rng."""
    qw, sw = qw_sw
    y = _exact_conv(qx, qw, stride, pad, groups, 255.0).float()
    a, b = fold_bn(bn)
    # in place: the tensors are large and the steps are the engine's, one rounding each
    if s_y is None:
        return y.mul_((s_x * sw * a).view(1, -1, 1, 1)).add_(b.view(1, -1, 1, 1))
    y.mul_((s_x * sw * a / s_y).view(1, -1, 1, 1)).add_((b / s_y).view(1, -1, 1, 1))
    if residual is not None:
        y.add_(residual)
    return y.round_().clamp_(*rng)


class FakeQuant:
    """The int8 tail of a model (eval mode) with a scale table [n_setups, n_points]."""

    def __init__(self, model, scales):
        self.model = model
        self.scales = scales
        self.chains = chains(model.geometry)
        self.qw = {name: quantize_weight(p) for name, p in model.named_parameters()
                   if p.dim() == 4 and not name.startswith("stem.")}

    @torch.no_grad()
    def tail(self, deq, setup):
        """Logits of the int8 tail on a dequantized partition tensor (float32)."""
        m, sc, w = self.model, self.scales[setup.id], self.qw
        m.set_slot(setup.bn_slot)
        c = deq.shape[1]
        qx = torch.clamp(torch.round(deq / sc[0]), *U8)
        qw1, sw1 = w["block1.conv1.weight"]
        q = qconv(qx, sc[0], (qw1[:, :c], sw1), m.block1.bn1, 1, 1, s_y=RELU6_SCALE, rng=U8)
        s_x = sc[self.chains[0]]
        q = qconv(q, RELU6_SCALE, w["block1.conv2.weight"], m.block1.bn2, s_y=s_x, rng=S8)
        for i, (blk, k) in enumerate(zip(m.blocks, self.chains[1:])):
            pre = "blocks.%d." % i
            h, s_h = q, s_x
            if blk.expand is not None:
                h = qconv(h, s_h, w[pre + "expand.weight"], blk.bn1, s_y=RELU6_SCALE, rng=U8)
                s_h = RELU6_SCALE
            h = qconv(h, s_h, w[pre + "dw.weight"], blk.bn2, blk.dw.stride, 1, blk.dw.groups,
                      s_y=RELU6_SCALE, rng=U8)
            s_y = sc[k]
            q = qconv(h, RELU6_SCALE, w[pre + "project.weight"], blk.bn3, s_y=s_y, rng=S8,
                      residual=q if blk.residual else None)
            s_x = s_y
        y = torch.clamp(qconv(q, s_x, w["last.conv.weight"], m.last.bn), 0.0, 6.0)
        return m.classifier(y.mean(dim=(2, 3)))

    @torch.no_grad()
    def forward(self, images, setup, stem=None):
        m = self.model
        m.set_slot(setup.bn_slot)
        sc = m.stem_conv(images) if stem is None else stem
        part = m.stem_finish(sc)[:, : setup.c]
        return self.tail(m.quantize(part, setup.L), setup)

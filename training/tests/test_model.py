import torch
import torch.nn.functional as F

from training.geometry import get_geometry, partition_shape, raw_bytes, setup_space
from training.model import SWCNN, broadcast_bn_slots


def small_model(slots=50):
    torch.manual_seed(0)
    return SWCNN(get_geometry("fmnist"), slots)


def test_setup_ids_follow_the_contract():
    s = setup_space()
    assert len(s) == 50
    assert (s[45].c, s[45].L) == (32, 65535)
    assert (s[4].c, s[4].L) == (1, 1)
    assert all(x.bn_slot == x.id for x in s)
    assert partition_shape(get_geometry("fmnist")) == (32, 14, 14)
    assert partition_shape(get_geometry("mnv2-224")) == (32, 112, 112)
    assert raw_bytes(get_geometry("fmnist"), 1, 1) == (196 + 7) // 8 + 8


def test_training_updates_only_the_setup_slot():
    m = small_model()
    m.train()
    before = m.stem.bn.running_mean.clone()
    m(torch.rand(8, 1, 28, 28), setup_space()[7])
    after = m.stem.bn.running_mean
    changed = (after != before).any(dim=1)
    assert changed[7] and changed.sum() == 1


def test_eval_uses_slot_statistics():
    m = small_model()
    m.eval()
    x = torch.rand(2, 1, 28, 28)
    s = setup_space()
    a = m(x, s[45])
    m.block1.bn1.running_mean[45] += 1.0
    b = m(x, s[45])
    c = m(x, s[40])  # (16 ch, 16 bit): another slot
    assert not torch.allclose(a, b)
    m.block1.bn1.running_mean[45] -= 1.0
    assert torch.allclose(a, m(x, s[45]))
    assert c.shape == a.shape


def test_slicing_equals_zero_fill():
    m = small_model()
    m.eval()
    xq = torch.rand(3, 5, 14, 14)
    zero_filled = torch.cat([xq, torch.zeros(3, 27, 14, 14)], dim=1)
    m.set_slot(0)
    ref = F.conv2d(zero_filled, m.block1.conv1.weight, None, 1, 1)
    got = F.conv2d(xq, m.block1.conv1.weight[:, :5], None, 1, 1)
    assert torch.allclose(ref, got, atol=1e-5)
    assert m.tail(xq).shape == (3, 10)


def test_stages_compose_to_forward():
    m = small_model()
    m.eval()
    x = torch.rand(4, 1, 28, 28)
    for s in setup_space()[::7]:
        full = m(x, s)
        m.set_slot(s.bn_slot)
        part = m.head(x)[:, : s.c]
        assert torch.equal(m.forward_from_stem(m.stem_conv(x), s), full)
        assert torch.allclose(m.tail(m.quantize(part, s.L)), full, atol=1e-6)


def test_broadcast_initialization():
    src = small_model(1)
    src.stem.bn.running_mean.uniform_()
    dst = broadcast_bn_slots(src, small_model(50))
    assert torch.equal(dst.stem.bn.running_mean, src.stem.bn.running_mean.expand(50, -1))
    assert torch.equal(dst.classifier.weight, src.classifier.weight)
    x = torch.rand(2, 1, 28, 28)
    src.eval()
    dst.eval()
    assert torch.allclose(src(x), dst(x, setup_space()[45]), atol=1e-5)


def test_tensor_names_match_the_contract():
    names = small_model().tensor_names()
    assert names[:5] == ["stem.conv.weight", "stem.bn.weight", "stem.bn.bias",
                         "stem.bn.running_mean", "stem.bn.running_var"]
    for n in ["block1.conv1.weight", "block1.bn1.running_var", "block1.conv2.weight",
              "block1.bn2.weight", "blocks.0.expand.weight", "blocks.0.bn1.bias",
              "blocks.0.dw.weight", "blocks.0.bn2.running_mean", "blocks.5.project.weight",
              "blocks.5.bn3.running_var", "last.conv.weight", "last.bn.weight",
              "classifier.weight", "classifier.bias"]:
        assert n in names, n
    assert not any("num_batches" in n for n in names)
    assert len([n for n in names if n.startswith("blocks.")]) == 6 * 3 * 5


def test_mnv2_224_pipeline_shapes():
    torch.manual_seed(0)
    m = SWCNN(get_geometry("mnv2-224"), 50)
    m.eval()
    x = torch.rand(1, 3, 224, 224)
    s = setup_space()[12]  # (3 ch, 4 bit)
    with torch.no_grad():
        part = m.head(x)
        assert part.shape == (1, 32, 112, 112)
        assert part.min() >= 0 and part.max() <= 6
        out = m(x, s)
        m.set_slot(s.bn_slot)
        assert torch.allclose(m.tail(m.quantize(m.head(x)[:, :3], s.L)), out, atol=1e-5)
    assert out.shape == (1, 196)

import json
import os

import numpy as np
import torch

from training.geometry import get_geometry
from training.golden import generate
from training.model import SWCNN
from training.modelfile import default_metadata, export_model, load_model
from training.quant import quantize_exact


def test_golden_files_are_consistent(tmp_path):
    torch.manual_seed(2)
    m = SWCNN(get_geometry("fmnist"), 50)
    for k, v in m.state_dict().items():
        if k.endswith("running_mean"):
            v.normal_(0, 0.2)
    mp = tmp_path / "m.rtcm"
    export_model(m, mp, default_metadata(m.geometry))
    out = tmp_path / "gold"
    idx = generate(str(mp), str(out), batches=[1, 3], setup_ids="4,20,45", seed=7,
                   log=lambda *a: None)
    assert idx == json.loads((out / "index.json").read_text())
    assert len(idx["cases"]) == 6
    model, _ = load_model(mp)

    def rd(name, shape):
        a = np.fromfile(out / name, dtype="<f4")
        assert a.size == int(np.prod(shape))
        return torch.from_numpy(a.reshape(shape))

    for case in idx["cases"]:
        b, c = case["batch"], case["c"]
        assert case["input_shape"] == [b, 1, 28, 28]
        assert case["partition_shape"] == [b, c, 14, 14]
        assert case["logits_shape"] == [b, 10]
        x = rd(case["input"], case["input_shape"])
        assert torch.all((x * 255 - torch.round(x * 255)).abs() < 1e-4)
        part = rd(case["partition"], case["partition_shape"])
        deq = rd(case["dequant"], case["partition_shape"])
        assert torch.equal(quantize_exact(part, case["L"]), deq)
        from training.geometry import Setup
        s = Setup(case["setup"], c, case["L"], case["bn_slot"])
        with torch.no_grad():
            model.set_slot(s.bn_slot)
            tail = model.tail(deq)
            full = model(x, s)
        assert torch.allclose(rd(case["tail_logits"], case["logits_shape"]), tail, atol=1e-5)
        assert torch.allclose(rd(case["logits"], case["logits_shape"]), full, atol=1e-5)
    # same seed, same inputs
    idx2 = generate(str(mp), str(tmp_path / "g2"), batches=[3], setup_ids="4", seed=7,
                    log=lambda *a: None)
    assert (out / "b3_input.f32").read_bytes() == (tmp_path / "g2" / "b3_input.f32").read_bytes()
    assert os.path.exists(tmp_path / "g2" / idx2["cases"][0]["logits"])

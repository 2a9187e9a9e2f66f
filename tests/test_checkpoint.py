"""Checkpoint I/O: safe by default, strict with a readable report, head replacement, same container."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anyecg_edge.labels import LabelSpec
from quantize.checkpoint import CheckpointError, load_container, load_teacher, save_checkpoint
from quantize.net1d import Net1D, Net1DConfig

TINY = Net1DConfig.ecgfounder(1, 150).scaled(0.125)
SPEC = LabelSpec.from_dict(
    {
        "name": "k",
        "outputs": [
            {"name": "potassium", "kind": "regression", "unit": "mmol/L", "definition": "serum potassium"},
            {"name": "hyperkalemia", "kind": "binary", "definition": "K > 5.5 mmol/L"},
        ],
    }
)


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    return Net1D(TINY).eval()


def official_like(path, model, **extra):
    """The upstream saver: {epoch, step, state_dict, optimizer, scheduler, val_auroc}."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    torch.save({"epoch": 3, "step": 100, "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(), **extra}, path)


def test_official_container_loads_safely_and_strictly(tmp_path, tiny):
    path = tmp_path / "checkpoint_100_0.9204.pth"
    official_like(path, tiny)
    teacher = load_teacher(path, config=TINY)
    assert teacher.report.ok and len(teacher.sha256) == 64
    x = torch.randn(1, 1, 5000)
    with torch.no_grad():
        assert torch.equal(teacher.model(x), tiny(x))
    # the config is inferred from the tensors when not given
    assert load_teacher(path).model.config == TINY


def test_pickled_objects_need_explicit_trust(tmp_path, tiny):
    path = tmp_path / "with_numpy.pth"
    official_like(path, tiny, val_auroc=np.float64(0.92))  # numpy scalar: refused by weights_only
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        load_container(path)
    with pytest.warns(UserWarning, match="full unpickling"):
        container = load_container(path, trust=True)
    assert container["val_auroc"] == pytest.approx(0.92)


def test_truncated_and_missing_files(tmp_path, tiny):
    path = tmp_path / "t.pth"
    save_checkpoint(path, tiny)
    data = path.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_container(tmp_path / "cut.pth")
    with pytest.raises(CheckpointError, match="not found"):
        load_container(tmp_path / "none.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError):
        load_container(tmp_path / "junk.pth")


def test_mismatch_report_is_readable(tmp_path, tiny):
    path = tmp_path / "t.pth"
    save_checkpoint(path, tiny)
    with pytest.raises(CheckpointError) as info:
        load_teacher(path, config=Net1DConfig.ecgfounder(12, 150).scaled(0.125))
    assert "shape mismatch" in str(info.value) and "first_conv.conv.weight checkpoint [8, 1, 16] vs model [8, 12, 16]" in str(info.value)
    state = tiny.state_dict()
    del state["stage_list.6.block_list.3.se_fc2.bias"]
    state["extra.weight"] = torch.zeros(1)
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError, match=r"1 missing key\(s\): stage_list.6.block_list.3.se_fc2.bias; 1 unexpected key\(s\): extra.weight"):
        load_teacher(path, config=TINY)


def test_head_replacement_for_a_new_label_spec(tmp_path, tiny):
    path = tmp_path / "pretrained.pth"
    official_like(path, tiny)
    with pytest.raises(CheckpointError, match="replace_head"):
        load_teacher(path, label_spec=SPEC)
    teacher = load_teacher(path, label_spec=SPEC, replace_head=True)
    assert teacher.model.dense.out_features == 2 and teacher.label_spec == SPEC
    body = {k: v for k, v in tiny.state_dict().items() if not k.startswith("dense.")}
    for key, value in body.items():
        assert torch.equal(teacher.model.state_dict()[key], value)


def test_save_round_trip_carries_spec_and_config(tmp_path):
    torch.manual_seed(2)
    model = Net1D(Net1DConfig.ecgfounder(1, 2).scaled(0.125))
    path = tmp_path / "ft.pth"
    digest = save_checkpoint(path, model, SPEC, epoch=4)
    container = torch.load(path, weights_only=True)  # loadable by the safe loader, like upstream
    assert set(container) >= {"state_dict", "net1d_config", "label_spec", "epoch"}
    teacher = load_teacher(path)
    assert teacher.label_spec == SPEC and teacher.sha256 == digest
    with pytest.raises(CheckpointError, match="label spec has 2 outputs"):
        save_checkpoint(tmp_path / "bad.pth", Net1D(Net1DConfig.ecgfounder(1, 3).scaled(0.125)), SPEC)
    assert not (tmp_path / "bad.pth").exists()


def test_ddp_prefix_is_stripped(tmp_path, tiny):
    path = tmp_path / "ddp.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in tiny.state_dict().items()}}, path)
    assert load_teacher(path, config=TINY).report.ok

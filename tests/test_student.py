"""The student family: configs refuse bad combinations, presets fit the budget, BN folds exactly."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from quantize.net1d import Net1D, Net1DConfig
from quantize.student import (
    DEFAULT_PRESET,
    PRESETS,
    Student,
    StudentConfig,
    count_macs,
    count_params,
    preset,
)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_build_and_run(name):
    config = preset(name, 5)
    model = Student(config).eval()
    out = model(torch.zeros(2, 1, 5000))
    assert out.shape == (2, 5)
    model.return_features = True
    out, features = model(torch.zeros(1, 1, 5000))
    assert features.shape == (1, config.feature_dim)


def test_downsampling_is_what_each_network_does():
    x = torch.zeros(1, 1, 5000)
    student = Student(preset(DEFAULT_PRESET, 5)).eval()
    with torch.no_grad():
        positions = student.blocks(student.stem(x)).shape[-1]
    assert positions == math.ceil(5000 / student.config.downsampling)
    teacher = Net1D(Net1DConfig.ecgfounder(1, 5).scaled(0.0625)).eval()
    seen = []
    teacher.stage_list[-1].register_forward_hook(lambda _module, _inputs, out: seen.append(out.shape[-1]))
    with torch.no_grad():
        teacher(x)
    assert seen == [math.ceil(5000 / teacher.config.downsampling)]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_downsample_in_step_with_ecgfounder(name):
    # The teacher's answer repeats when the window moves by a multiple of its downsampling;
    # a student can only follow that pattern if its own downsampling is such a multiple.
    assert preset(name, 5).downsampling % Net1DConfig.ecgfounder().downsampling == 0


def test_default_preset_meets_the_budget():
    model = Student(preset(DEFAULT_PRESET, 5)).fused()
    assert count_macs(model) < 12_000_000
    assert count_params(model) * 1 < 500_000  # int8 weights: one byte per parameter


def test_wider_presets_cost_more():
    macs = [count_macs(Student(preset(name, 3))) for name in sorted(PRESETS, key=PRESETS.get)]
    assert macs == sorted(macs)


def test_fused_matches_batch_norm_in_eval():
    torch.manual_seed(0)
    for block in ("separable", "plain"):
        model = Student(preset("x0.5", 3, block=block, activation="silu"))
        model.train()
        for _ in range(3):
            model(torch.randn(4, 1, 5000))  # move the running statistics off their defaults
        model.eval()
        fused = model.fused()
        x = torch.randn(3, 1, 5000)
        assert not any(isinstance(m, nn.BatchNorm1d) for m in fused.modules())
        torch.testing.assert_close(fused(x), model(x), atol=1e-5, rtol=1e-4)


def test_mac_counter_on_known_layers():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(1, 4, 3, stride=2, padding=1)
            self.dw = nn.Conv1d(4, 4, 5, padding=2, groups=4)
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return self.fc(self.dw(self.conv(x)).mean(-1))

    # conv: 50 outputs x 4 ch x 1 x 3; depthwise: 50 x 4 x 1 x 5; linear: 4 x 2
    assert count_macs(Tiny(), samples=100) == 50 * 4 * 3 + 50 * 4 * 5 + 8


@pytest.mark.parametrize(
    "change",
    [{"kernel": 8}, {"stem_kernel": 4}, {"activation": "gelu"}, {"block": "inverted"},
     {"widths": (8, 8), "depths": (1,), "strides": (2,)}, {"dropout": 1.0}, {"n_outputs": 0}],
)
def test_config_refuses_bad_combinations(change):
    with pytest.raises(ValueError):
        dataclasses.replace(StudentConfig(), **change)


def test_config_round_trip_and_unknown_keys():
    config = preset("x1.25", 4, activation="relu6")
    assert StudentConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown"):
        StudentConfig.from_dict({**config.to_dict(), "depth": 3})
    with pytest.raises(ValueError, match="unknown student preset"):
        preset("x9", 2)

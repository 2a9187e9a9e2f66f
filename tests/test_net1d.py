"""Net1D matches the released ECGFounder checkpoints key for key, shape for shape."""

from __future__ import annotations

import pytest
import torch

from quantize.net1d import MaxPool1dPadSame, Net1D, Net1DConfig, same_padding


@pytest.fixture(scope="module")
def full_1lead():
    torch.manual_seed(0)
    return Net1D(Net1DConfig.ecgfounder(1, 150)).eval()


def expected_keys(in_ch: int, n_classes: int) -> dict[str, tuple]:
    """The official state_dict schema (docs/ecgfounder facts, §1.5), built independently."""
    keys: dict[str, tuple] = {
        "first_conv.conv.weight": (64, in_ch, 16),
        "first_conv.conv.bias": (64,),
    }
    for stat in ("weight", "bias", "running_mean", "running_var"):
        keys[f"first_bn.{stat}"] = (64,)
    keys["first_bn.num_batches_tracked"] = ()
    widths = [64, 160, 160, 400, 400, 1024, 1024]
    blocks = [2, 2, 2, 3, 3, 4, 4]
    prev = 64
    for i, (c, m) in enumerate(zip(widths, blocks)):
        for j in range(m):
            cin = prev if j == 0 else c
            p = f"stage_list.{i}.block_list.{j}."

            def bn(name, n):
                for stat in ("weight", "bias", "running_mean", "running_var"):
                    keys[p + f"{name}.{stat}"] = (n,)
                keys[p + f"{name}.num_batches_tracked"] = ()

            bn("bn1", cin)
            keys[p + "conv1.conv.weight"], keys[p + "conv1.conv.bias"] = (c, cin, 1), (c,)
            bn("bn2", c)
            keys[p + "conv2.conv.weight"], keys[p + "conv2.conv.bias"] = (c, 16, 16), (c,)
            bn("bn3", c)
            keys[p + "conv3.conv.weight"], keys[p + "conv3.conv.bias"] = (c, c, 1), (c,)
            keys[p + "se_fc1.weight"], keys[p + "se_fc1.bias"] = (c // 2, c), (c // 2,)
            keys[p + "se_fc2.weight"], keys[p + "se_fc2.bias"] = (c, c // 2), (c,)
        prev = c
    keys["dense.weight"], keys["dense.bias"] = (n_classes, 1024), (n_classes,)
    return keys


def test_full_size_1lead_matches_official_schema(full_1lead):
    state = full_1lead.state_dict()
    expected = expected_keys(1, 150)
    assert len(state) == 509
    assert list(state) == list(expected)  # same keys in the same order
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    assert sum(p.numel() for p in full_1lead.parameters()) == 30_807_750
    assert state["first_bn.num_batches_tracked"].dtype == torch.int64


@pytest.mark.parametrize("in_ch, n_classes, params", [(12, 150, 30_819_014), (1, 1, None), (1, 5, None)])
def test_other_configs(in_ch, n_classes, params):
    model = Net1D(Net1DConfig.ecgfounder(in_ch, n_classes))
    state = model.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == expected_keys(in_ch, n_classes)
    if params:
        assert sum(p.numel() for p in model.parameters()) == params


def test_output_length_and_features(full_1lead):
    lengths = []
    modules = [full_1lead.first_conv, *full_1lead.stage_list]
    hooks = [m.register_forward_hook(lambda m, i, o: lengths.append(o.shape[-1])) for m in modules]
    x = torch.randn(2, 1, 5000)
    with torch.no_grad():
        logits = full_1lead(x)
    for h in hooks:
        h.remove()
    assert lengths == [2500, 1250, 625, 313, 157, 79, 40, 20]
    with torch.no_grad():
        full_1lead.return_features = True
        logits2, features = full_1lead(x)
        full_1lead.return_features = False
    assert logits.shape == (2, 150) and features.shape == (2, 1024)
    assert torch.equal(logits, logits2)


def test_same_padding_rules():
    assert same_padding(5000, 16, 2) == (7, 7)
    assert same_padding(625, 16, 2) == (7, 8)
    assert same_padding(313, 16, 1) == (7, 8)
    assert same_padding(40, 1, 1) == (0, 0)


def test_shortcut_pool_pads_zero_not_minus_inf():
    pool = MaxPool1dPadSame(2)
    x = torch.tensor([[[-3.0, -1.0, -2.0]]])
    assert pool(x).tolist() == [[[-1.0, 0.0]]]  # last output is max(x_last, 0)


def test_train_and_eval_agree_for_released_config():
    torch.manual_seed(1)
    model = Net1D(Net1DConfig.ecgfounder(1, 3).scaled(0.125))
    x = torch.randn(1, 1, 5000)
    with torch.no_grad():
        a = model.train()(x)
        b = model.eval()(x)
    assert torch.equal(a, b)


def test_config_inferred_from_state_dict_and_width_multiplier():
    cfg = Net1DConfig.ecgfounder(1, 5).scaled(0.25)
    assert cfg.filter_list == (16, 40, 40, 100, 100, 256, 256) and cfg.groups_width == 4
    model = Net1D(cfg)
    # the number of groups per grouped conv is that of the full model
    groups = [s.block_list[0].conv2.conv.groups for s in model.stage_list]
    assert groups == [4, 10, 10, 25, 25, 64, 64]
    assert Net1DConfig.from_state_dict(model.state_dict()) == cfg
    with pytest.raises(ValueError, match="whole channels"):
        Net1DConfig.ecgfounder().scaled(0.3)

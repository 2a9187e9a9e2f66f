"""The student family: small 1-D CNNs built for full-integer int8 on XNNPACK and TFLite Micro.

Every student is a stack of the plainest ops a microcontroller kernel library has:

* a stem ``Conv1d`` (stride 2) from the single lead to the first width,
* stages of blocks; a block is either *separable* (depthwise ``Conv1d`` then a 1x1
  pointwise ``Conv1d``) or *plain* (one full ``Conv1d``), each followed by BatchNorm and
  the activation; the first block of a stage downsamples by ``stride``; the other blocks
  add a residual,
* a global average pool over time and one ``Linear`` head.

The default strides (2, 2, 2, 4, 4) downsample 256x in all, as ECGFounder's Net1D does (a
stride-2 first convolution and seven stride-2 stages). A strided network's answer moves with
where the window starts by a fraction of its downsampling, and repeats when the window moves
by a whole multiple of it; a student whose downsampling is a multiple of the teacher's can
follow that pattern, one at 64x cannot (docs/shrink.md, section 2).

Batch norm exists for training only: :meth:`Student.fused` folds it into the convolutions,
so the exported graph holds nothing but Conv, Relu (or Sigmoid and Mul for SiLU), Add,
ReduceMean and Gemm. Convolutions pad symmetrically by ``kernel // 2`` with zeros and the
kernels are odd, so no asymmetric ``SAME`` padding and no max-pool is involved.

Presets are named by width multiplier (``x0.5`` ... ``x2``): channel counts scale, depth and
kernels stay. :func:`count_macs` counts multiply-accumulates of one 10 s window.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from anyecg_edge.preprocess import WINDOW_SAMPLES

from .settings import checked_fields

__all__ = [
    "ACTIVATIONS",
    "BLOCKS",
    "DEFAULT_PRESET",
    "PRESETS",
    "Student",
    "StudentConfig",
    "count_macs",
    "count_params",
    "preset",
]

#: Stride of the stem convolution; the stages then downsample by ``StudentConfig.strides``.
STEM_STRIDE = 2
ACTIVATIONS = ("relu", "relu6", "silu")
BLOCKS = ("separable", "plain")


@dataclass(frozen=True)
class StudentConfig:
    """Architecture of a student; refuses combinations that cannot be built.

    Attributes:
        n_outputs: model outputs (one per label spec output).
        in_channels: leads (1 for a wearable's lead I).
        stem_width: channels of the stem convolution.
        stem_kernel: its kernel (odd); the stem always has stride 2.
        widths: output channels of each stage.
        depths: blocks per stage.
        strides: downsampling of each stage's first block.
        kernel: kernel of the depthwise (or plain) convolutions (odd).
        block: ``separable`` (depthwise + pointwise) or ``plain``.
        activation: ``relu``, ``relu6`` or ``silu``.
        dropout: dropout before the head, training only.
    """

    n_outputs: int = 1
    in_channels: int = 1
    stem_width: int = 16
    stem_kernel: int = 15
    widths: tuple[int, ...] = (24, 32, 48, 64, 96)
    depths: tuple[int, ...] = (1, 2, 2, 2, 1)
    strides: tuple[int, ...] = (2, 2, 2, 4, 4)
    kernel: int = 9
    block: str = "separable"
    activation: str = "relu"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("widths", "depths", "strides"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if not (len(self.widths) == len(self.depths) == len(self.strides)) or not self.widths:
            raise ValueError("widths, depths and strides need one entry per stage (at least one stage)")
        if self.n_outputs < 1 or self.in_channels < 1 or self.stem_width < 1 or min(self.widths) < 1:
            raise ValueError("n_outputs, in_channels and every width must be positive")
        if min(self.depths) < 1 or min(self.strides) < 1:
            raise ValueError("depths and strides must be at least 1")
        if self.kernel % 2 == 0 or self.stem_kernel % 2 == 0:
            raise ValueError("kernels must be odd so that zero padding is symmetric")
        if self.block not in BLOCKS:
            raise ValueError(f"block must be one of {BLOCKS}, not {self.block!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, not {self.activation!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1)")

    @property
    def downsampling(self) -> int:
        """Input samples per output position of the last stage (stem stride 2 times the strides)."""
        return STEM_STRIDE * math.prod(self.strides)

    @property
    def feature_dim(self) -> int:
        """Width of the pooled feature vector that feeds the head."""
        return self.widths[-1]

    def scaled(self, width: float) -> "StudentConfig":
        """Every channel count times ``width`` (rounded to a multiple of 4, at least 4)."""
        if width <= 0:
            raise ValueError("width multiplier must be positive")

        def scale(c: int) -> int:
            return max(4, int(round(c * width / 4)) * 4)

        return dataclasses.replace(
            self, stem_width=scale(self.stem_width), widths=tuple(scale(w) for w in self.widths)
        )

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        for name in ("widths", "depths", "strides"):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "StudentConfig":
        return cls(**checked_fields(cls, data, "student config keys"))


#: Width presets of the default architecture (see docs/shrink.md for the measured table).
PRESETS: dict[str, float] = {"x0.5": 0.5, "x0.75": 0.75, "x1": 1.0, "x1.25": 1.25, "x1.5": 1.5, "x2": 2.0}
DEFAULT_PRESET = "x1.25"


def preset(name: str, n_outputs: int, **overrides) -> StudentConfig:
    """A named width preset for ``n_outputs`` outputs; ``overrides`` replace config fields."""
    if name not in PRESETS:
        raise ValueError(f"unknown student preset {name!r}; choose from {sorted(PRESETS)}")
    base = dataclasses.replace(StudentConfig(n_outputs=n_outputs), **overrides)
    return base.scaled(PRESETS[name])


def _activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "relu6": nn.ReLU6, "silu": nn.SiLU}[name]()


class ConvNorm(nn.Sequential):
    """Conv1d (symmetric zero padding) + BatchNorm1d; :func:`_fuse` folds the norm away."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
            nn.BatchNorm1d(c_out),
        )


class Block(nn.Module):
    """A separable or plain block; a residual is added when the shape is kept."""

    def __init__(self, c_in: int, c_out: int, stride: int, config: StudentConfig):
        super().__init__()
        if config.block == "separable":
            self.body = nn.Sequential(
                ConvNorm(c_in, c_in, config.kernel, stride, groups=c_in),
                _activation(config.activation),
                ConvNorm(c_in, c_out, 1),
            )
        else:
            self.body = nn.Sequential(ConvNorm(c_in, c_out, config.kernel, stride))
        self.residual = stride == 1 and c_in == c_out
        self.act = _activation(config.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        if self.residual:
            y = y + x
        return self.act(y)


class Student(nn.Module):
    """A student network. Input (batch, leads, 5000); output (batch, n_outputs).

    With ``return_features=True`` the forward returns ``(outputs, pooled_features)``.
    """

    def __init__(self, config: StudentConfig, return_features: bool = False):
        super().__init__()
        self.config = config
        self.return_features = return_features
        self.stem = nn.Sequential(
            ConvNorm(config.in_channels, config.stem_width, config.stem_kernel, STEM_STRIDE),
            _activation(config.activation),
        )
        blocks = []
        c_in = config.stem_width
        for width, depth, stride in zip(config.widths, config.depths, config.strides):
            for j in range(depth):
                blocks.append(Block(c_in, width, stride if j == 0 else 1, config))
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(c_in, config.n_outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x)).mean(dim=-1)

    def forward(self, x: torch.Tensor):
        features = self.features(x)
        out = self.head(self.dropout(features))
        if self.return_features:
            return out, features
        return out

    def fused(self) -> "Student":
        """An eval-mode copy with every BatchNorm folded into its convolution (for export)."""
        model = copy.deepcopy(self).eval()
        model.return_features = False
        for module in model.modules():
            if isinstance(module, ConvNorm):
                _fuse(module)
        return model


def _fuse(module: ConvNorm) -> None:
    conv, bn = module[0], module[1]
    if isinstance(bn, nn.Identity):
        return
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused = nn.Conv1d(
            conv.in_channels, conv.out_channels, conv.kernel_size[0], stride=conv.stride[0],
            padding=conv.padding[0], groups=conv.groups, bias=True,
        )
        fused.weight.copy_(conv.weight * scale[:, None, None])
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    module[0] = fused
    module[1] = nn.Identity()


def count_params(model: nn.Module) -> int:
    """Parameters that take part in inference (BatchNorm folded: count on :meth:`Student.fused`)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, samples: int = WINDOW_SAMPLES, in_channels: int | None = None) -> int:
    """Multiply-accumulates of one forward pass on a (1, leads, samples) input.

    Counts Conv1d (``out_len * out_ch * in_ch / groups * kernel``) and Linear layers; the
    element-wise ops, pooling and activations are left out, as is usual.
    """
    if in_channels is None:
        in_channels = getattr(getattr(model, "config", None), "in_channels", 1)
    total = 0

    def conv_hook(module, _inputs, output):
        nonlocal total
        total += output.numel() // output.shape[0] * (module.in_channels // module.groups) * module.kernel_size[0]

    def linear_hook(module, inputs, _output):
        nonlocal total
        total += inputs[0].numel() // inputs[0].shape[-1] // inputs[0].shape[0] * module.in_features * module.out_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv1d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, in_channels, samples))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return int(total)

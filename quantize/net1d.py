"""Net1D, the ECGFounder backbone, written from its published description.

The module tree reproduces the official checkpoints' ``state_dict`` key for key
(509 keys for the released 7-stage configuration), so ``load_state_dict(strict=True)``
accepts ``1_lead_ECGFounder.pth`` and ``12_lead_ECGFounder.pth`` unchanged.

Two padding details decide whether outputs match the original:

* convolutions pad like TensorFlow ``SAME``: ``out = ceil(L / stride)``, total pad
  ``max(0, (out - 1) * stride + k - L)``, the odd zero on the right;
* the shortcut max-pool pads one **zero** (not ``-inf``) on the right before a
  ``MaxPool1d(2, 2)``, so for odd lengths the last output is ``max(x_last, 0)``.

References:
    Li J. et al. An electrocardiogram foundation model built on over 10 million
    recordings with external evaluation across multiple domains. NEJM AI 2(7), 2025.
    See ``docs/teacher.md`` in this repository for the facts this file is built on.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .settings import checked_fields

__all__ = ["Net1D", "Net1DConfig"]

# Stride of first_conv; every stage then downsamples by Net1DConfig.stride.
FIRST_STRIDE = 2


@dataclass(frozen=True)
class Net1DConfig:
    """Hyper-parameters of a Net1D; the defaults are the released ECGFounder ones.

    ``width`` documents a uniform width multiplier: every filter count *and* the
    group width are multiplied by it, so the number of groups per grouped convolution,
    the block structure and the code path are exactly those of the full model.
    """

    in_channels: int = 1
    n_classes: int = 150
    base_filters: int = 64
    ratio: float = 1.0
    filter_list: tuple[int, ...] = (64, 160, 160, 400, 400, 1024, 1024)
    m_blocks_list: tuple[int, ...] = (2, 2, 2, 3, 3, 4, 4)
    kernel_size: int = 16
    stride: int = 2
    groups_width: int = 16
    use_bn: bool = False
    use_do: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "filter_list", tuple(int(f) for f in self.filter_list))
        object.__setattr__(self, "m_blocks_list", tuple(int(m) for m in self.m_blocks_list))
        if len(self.filter_list) != len(self.m_blocks_list):
            raise ValueError("filter_list and m_blocks_list must have one entry per stage")
        if self.in_channels < 1 or self.n_classes < 1:
            raise ValueError("in_channels and n_classes must be positive")
        for width in self.filter_list:
            middle = int(width * self.ratio)
            if middle % self.groups_width:
                raise ValueError(
                    f"stage width {middle} is not a multiple of groups_width {self.groups_width}"
                )

    @property
    def downsampling(self) -> int:
        """Input samples per output position of the last stage (first conv 2, then ``stride`` per stage)."""
        return FIRST_STRIDE * self.stride ** len(self.filter_list)

    @classmethod
    def ecgfounder(cls, in_channels: int = 1, n_classes: int = 150) -> "Net1DConfig":
        """The released ECGFounder configuration (30.8 M parameters for one lead)."""
        return cls(in_channels=in_channels, n_classes=n_classes)

    def scaled(self, width: float) -> "Net1DConfig":
        """The same architecture with every width (and the group width) times ``width``."""
        if width <= 0:
            raise ValueError("width multiplier must be positive")

        def scale(value: int) -> int:
            scaled = value * width
            if abs(scaled - round(scaled)) > 1e-9 or round(scaled) < 1:
                raise ValueError(f"width {width} does not divide {value} into whole channels")
            return int(round(scaled))

        return dataclasses.replace(
            self,
            base_filters=scale(self.base_filters),
            filter_list=tuple(scale(f) for f in self.filter_list),
            groups_width=scale(self.groups_width),
        )

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["filter_list"] = list(self.filter_list)
        data["m_blocks_list"] = list(self.m_blocks_list)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Net1DConfig":
        return cls(**checked_fields(cls, data, "Net1D config keys"))

    @classmethod
    def from_state_dict(cls, state_dict: dict) -> "Net1DConfig":
        """Infer the configuration from a checkpoint's tensors (ratio 1 assumed)."""
        try:
            first = state_dict["first_conv.conv.weight"]
            dense = state_dict["dense.weight"]
        except KeyError as exc:
            raise ValueError(f"not a Net1D state_dict: no {exc.args[0]!r}") from None
        base_filters, in_channels, kernel_size = (int(s) for s in first.shape)
        filters: list[int] = []
        blocks: list[int] = []
        groups_width = None
        stage = 0
        while f"stage_list.{stage}.block_list.0.conv3.conv.weight" in state_dict:
            count = 0
            while f"stage_list.{stage}.block_list.{count}.conv3.conv.weight" in state_dict:
                count += 1
            filters.append(int(state_dict[f"stage_list.{stage}.block_list.0.conv3.conv.weight"].shape[0]))
            if groups_width is None:
                groups_width = int(state_dict[f"stage_list.{stage}.block_list.0.conv2.conv.weight"].shape[1])
            blocks.append(count)
            stage += 1
        if not filters:
            raise ValueError("not a Net1D state_dict: no stage_list blocks")
        return cls(
            in_channels=in_channels,
            n_classes=int(dense.shape[0]),
            base_filters=base_filters,
            filter_list=tuple(filters),
            m_blocks_list=tuple(blocks),
            kernel_size=kernel_size,
            groups_width=groups_width or 16,
        )


def same_padding(length: int, kernel_size: int, stride: int) -> tuple[int, int]:
    """TensorFlow ``SAME`` padding (left, right) for a 1-D convolution."""
    out_len = math.ceil(length / stride)
    total = max(0, (out_len - 1) * stride + kernel_size - length)
    left = total // 2
    return left, total - left


class Swish(nn.Module):
    """x * sigmoid(x), written out so every exporter keeps it as LOGISTIC + MUL."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class Conv1dPadSame(nn.Module):
    """Conv1d preceded by TF-style SAME zero padding (keys ``conv.weight``/``conv.bias``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right = same_padding(x.shape[-1], self.kernel_size, self.stride)
        if left or right:
            x = F.pad(x, (left, right))
        return self.conv(x)


class MaxPool1dPadSame(nn.Module):
    """Zero pad of ``kernel_size - 1`` on the right, then a VALID max-pool."""

    def __init__(self, kernel_size: int = 2):
        super().__init__()
        self.kernel_size = kernel_size
        self.pool = nn.MaxPool1d(kernel_size, stride=kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.pad(x, (0, self.kernel_size - 1)))


class BasicBlock(nn.Module):
    """Pre-activation bottleneck block with squeeze-excitation (r = 2)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ratio: float,
        kernel_size: int,
        stride: int,
        groups: int,
        downsample: bool,
        is_first_block: bool,
        use_bn: bool,
        use_do: bool,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.downsample = downsample
        self.is_first_block = is_first_block
        self.use_bn = use_bn
        self.use_do = use_do
        middle = int(out_channels * ratio)

        # Registration order fixes the state_dict key order: bn1, conv1, bn2, conv2, bn3, conv3, se.
        self.bn1 = nn.BatchNorm1d(in_channels)
        self.activation1 = Swish()
        self.do1 = nn.Dropout(p=0.5)
        self.conv1 = Conv1dPadSame(in_channels, middle, 1)
        self.bn2 = nn.BatchNorm1d(middle)
        self.activation2 = Swish()
        self.do2 = nn.Dropout(p=0.5)
        self.conv2 = Conv1dPadSame(middle, middle, kernel_size, stride=stride if downsample else 1, groups=groups)
        self.bn3 = nn.BatchNorm1d(middle)
        self.activation3 = Swish()
        self.do3 = nn.Dropout(p=0.5)
        self.conv3 = Conv1dPadSame(middle, out_channels, 1)
        self.se_fc1 = nn.Linear(out_channels, out_channels // 2)
        self.se_fc2 = nn.Linear(out_channels // 2, out_channels)
        self.se_activation = Swish()
        self.pool = MaxPool1dPadSame(kernel_size=stride) if downsample else None
        pad = out_channels - in_channels
        self.channel_pad = (pad // 2, pad - pad // 2)

    def _stage(self, x: torch.Tensor, bn: nn.Module, activation: nn.Module, dropout: nn.Module) -> torch.Tensor:
        if self.use_bn:
            x = bn(x)
        x = activation(x)
        if self.use_do:
            x = dropout(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = x
        if not self.is_first_block:
            out = self._stage(out, self.bn1, self.activation1, self.do1)
        out = self.conv1(out)
        out = self._stage(out, self.bn2, self.activation2, self.do2)
        out = self.conv2(out)
        out = self._stage(out, self.bn3, self.activation3, self.do3)
        out = self.conv3(out)

        se = out.mean(dim=-1)
        se = self.se_activation(self.se_fc1(se))
        se = torch.sigmoid(self.se_fc2(se))
        out = out * se.unsqueeze(-1)

        if self.pool is not None:
            identity = self.pool(identity)
        if self.channel_pad != (0, 0):
            # Pad the channel axis of (N, C, L): F.pad pads the last dims first.
            identity = F.pad(identity, (0, 0, *self.channel_pad))
        return out + identity


class BasicStage(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, config: Net1DConfig, m_blocks: int, i_stage: int):
        super().__init__()
        middle = int(out_channels * config.ratio)
        groups = middle // config.groups_width
        self.block_list = nn.ModuleList(
            BasicBlock(
                in_channels=in_channels if j == 0 else out_channels,
                out_channels=out_channels,
                ratio=config.ratio,
                kernel_size=config.kernel_size,
                stride=config.stride,
                groups=groups,
                downsample=j == 0,
                is_first_block=i_stage == 0 and j == 0,
                use_bn=config.use_bn,
                use_do=config.use_do,
            )
            for j in range(m_blocks)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block_list:
            x = block(x)
        return x


class Net1D(nn.Module):
    """ECGFounder's Net1D. Input (batch, leads, samples); output logits (batch, n_classes).

    With ``return_features=True`` the forward also returns the pooled features
    (batch, filter_list[-1]); 1024-d for the released configuration.
    """

    def __init__(self, config: Net1DConfig | None = None, return_features: bool = False):
        super().__init__()
        self.config = config or Net1DConfig()
        self.return_features = return_features
        cfg = self.config
        self.first_conv = Conv1dPadSame(cfg.in_channels, cfg.base_filters, cfg.kernel_size, stride=FIRST_STRIDE)
        self.first_bn = nn.BatchNorm1d(cfg.base_filters)
        self.first_activation = Swish()
        stages = []
        in_channels = cfg.base_filters
        for i, (out_channels, m_blocks) in enumerate(zip(cfg.filter_list, cfg.m_blocks_list)):
            stages.append(BasicStage(in_channels, out_channels, cfg, m_blocks, i))
            in_channels = out_channels
        self.stage_list = nn.ModuleList(stages)
        self.dense = nn.Linear(in_channels, cfg.n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled feature vector that feeds ``dense``."""
        out = self.first_conv(x)
        if self.config.use_bn:
            out = self.first_bn(out)
        out = self.first_activation(out)
        for stage in self.stage_list:
            out = stage(out)
        return out.mean(dim=-1)

    def forward(self, x: torch.Tensor):
        features = self.features(x)
        logits = self.dense(features)
        if self.return_features:
            return logits, features
        return logits

    def replace_head(self, n_classes: int) -> None:
        """Swap ``dense`` for a freshly initialised Linear with ``n_classes`` outputs."""
        self.dense = nn.Linear(self.dense.in_features, n_classes)
        self.config = dataclasses.replace(self.config, n_classes=n_classes)

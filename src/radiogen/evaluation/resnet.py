"""A compact ResNet-18 encoder (He et al. 2016) for one-channel radio images (Section 5.3).

Written here rather than taken from torchvision: the PyPI torchvision wheel fails to import beside
the CPU build of torch 2.13 that this project installs (its compiled operators are built against
the CUDA build, a 5.5 GB install), and the classifier needs nothing else from it. The network is
torchvision's ``resnet18`` layout: a 7×7 stride-2 stem with max pooling, four stages of two
:class:`BasicBlock` s with 64-128-256-512 channels (strides 1, 2, 2, 2), global average pooling,
and torchvision's initialisation; the only change is one input channel. An 80×80 image gives a
512-d feature vector. ``width`` scales every stage (64 is ResNet-18; the bundled classifier uses
32, tests smaller).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BasicBlock", "ResNet18"]


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm and an identity (or 1×1 projection) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 encoder: images (B, C, H, W) → features (B, 8·width).

    Parameters
    ----------
    in_channels : int
        Image channels (1 for radio continuum images).
    width : int
        Channels of the first stage; 64 is ResNet-18 with 512-d features.
    """

    def __init__(self, in_channels: int = 1, width: int = 64):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 7, 2, 3, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, 1))
        stages, channels = [], width
        for i, out_channels in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(BasicBlock(channels, out_channels, stride),
                                        BasicBlock(out_channels, out_channels)))
            channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.out_features = channels
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stages(self.stem(x))
        return h.mean(dim=(-2, -1))

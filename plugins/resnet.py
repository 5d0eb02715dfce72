import math

import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import Tensor, nn

import ganzoo

from .conditioning import ClassBatchNorm2d, CriticConfig, FeatureCritic
from .sides import base_side, check_image_shape

# The ResNets of Miyato et al. 2018 (SNGAN), the CIFAR-10 networks of Gulrajani et al. 2017: at 32x32
# the generator is z(128) -> 4x4x256 -> three up-sampling blocks of 256 maps -> BN, ReLU, 3x3 conv, tanh,
# and the critic two down-sampling blocks and two plain ones of 128 maps, ReLU, global sum pooling, linear.
# Other sides follow the same rules: the generator starts at the side's innermost maps (7x7 for 28,
# 6x6 for 48) and doubles up to the image; the critic halves down to at most 8x8, then adds plain blocks
# up to four.


def _init(module: nn.Module) -> None:
    # Xavier-uniform, as in the SNGAN and Mimicry code: gain sqrt(2) in the blocks, 1 for the rest
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.xavier_uniform_(module.weight, math.sqrt(2) if getattr(module, "in_block", False) else 1.0)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _conv(cin: int, cout: int, kernel: int = 3, in_block: bool = True, bias: bool = True) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=bias)
    conv.in_block = in_block and kernel == 3
    return conv


class UpBlock(nn.Module):
    """BN, ReLU, 2x nearest up-sampling, 3x3 conv, BN, ReLU, 3x3 conv, plus an up-sampled 1x1 shortcut;
    conditional, each BatchNorm takes its class's scale and shift."""

    def __init__(self, cin: int, cout: int, classes: int) -> None:
        super().__init__()
        norm = (lambda maps: ClassBatchNorm2d(maps, classes)) if classes else nn.BatchNorm2d
        # No biases: every convolution here feeds a BatchNorm (norm2, or the next block's or the output's),
        # which removes any, so their gradients would be rounding noise that Adam scales to full steps
        self.norm1, self.conv1, self.norm2 = norm(cin), _conv(cin, cout, bias=False), norm(cout)
        self.conv2, self.shortcut = _conv(cout, cout, bias=False), _conv(cin, cout, kernel=1, bias=False)

    def forward(self, x: Tensor, labels: Tensor | None) -> Tensor:
        norm = (lambda layer, h: layer(h)) if labels is None else (lambda layer, h: layer(h, labels))
        h = F.interpolate(F.relu(norm(self.norm1, x)), scale_factor=2)
        h = self.conv2(F.relu(norm(self.norm2, self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2))


class DownBlock(nn.Module):
    """(ReLU,) 3x3 conv, ReLU, 3x3 conv, (2x2 average pooling,) plus a 1x1 shortcut where the shape
    changes; the first block of the critic starts with its conv on the image (SNGAN's optimised block)."""

    def __init__(self, cin: int, cout: int, down: bool, first: bool) -> None:
        super().__init__()
        self.down, self.first = down, first
        self.conv1, self.conv2 = _conv(cin, cout), _conv(cout, cout)
        self.shortcut = _conv(cin, cout, kernel=1) if down or cin != cout else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        pool = (lambda t: F.avg_pool2d(t, 2)) if self.down else (lambda t: t)
        if self.shortcut is None:
            return h + x
        shortcut = self.shortcut(pool(x)) if self.first else pool(self.shortcut(x))
        return pool(h) + shortcut


class ResNetGenerator(ganzoo.Generator):
    """The SNGAN / WGAN-GP ResNet generator (Miyato et al. 2018), conditional BatchNorm when conditional.

    Up-sampling residual blocks from the innermost side (4x4 at 32) to the image."""

    class Config(ganzoo.GeneratorConfig, ganzoo.ConditionalConfig):
        latent_dim: int = Field(128, gt=0, description="size of z")
        width: int = Field(256, gt=0, description="feature maps of every residual block")

        @field_validator("sample_shape")
        @classmethod
        def _image(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
            return check_image_shape("resnet", shape)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        channels, side, _ = self.sample_shape
        self.base, width = base_side(side), config.width
        self.linear = nn.Linear(config.latent_dim, self.base**2 * width, bias=False)  # a BatchNorm follows
        self.blocks = nn.ModuleList(UpBlock(width, width, self.classes) for _ in range(int(math.log2(side // self.base))))
        self.out = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(), _conv(width, channels, in_block=False), nn.Tanh())
        self.apply(_init)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.linear(z).unflatten(1, (-1, self.base, self.base))
        for block in self.blocks:
            h = block(h, labels)
        return self.out(h)


class ResNetCritic(FeatureCritic):
    """The SNGAN / WGAN-GP ResNet critic (Miyato et al. 2018), projection or ac head when conditional.

    Down-sampling residual blocks to at most 8x8, plain ones up to four blocks, ReLU, global sum
    pooling and a linear score; no normalisation, so each sample's score is its own (gradient
    penalties, R1 and spectral norm all fit)."""

    independent_samples = True

    class Config(ganzoo.NetworkConfig, CriticConfig):
        width: int = Field(128, gt=0, description="feature maps of every residual block")

        @field_validator("sample_shape")
        @classmethod
        def _image(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
            return check_image_shape("resnet", shape, any_channels=True)  # pac stacks packs along the channels

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        channels, side, _ = self.sample_shape
        downs = 0
        while side > 8 and side % 2 == 0:
            side, downs = side // 2, downs + 1
        blocks = [DownBlock(channels if i == 0 else config.width, config.width, i < downs, i == 0) for i in range(max(4, downs + 1))]
        self.net = nn.Sequential(*blocks, nn.ReLU(), nn.Linear(config.width, 1))
        self.apply(_init)
        self.condition(config.width)

    def features(self, x: Tensor) -> Tensor:
        return self.net[:-1](x).sum(dim=(2, 3))  # global sum pooling

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from torch import Tensor, nn

import ganzoo

from .conditioning import CriticConfig, FeatureCritic, GeneratorConfig, joined
from .sides import base_side, check_image_shape

# R3GAN's normalization-free ResNet (Huang, Gokaslan, Kuleshov & Tompkin, NeurIPS 2024, "The GAN is dead;
# long live the GAN!"; github.com/brownvc/R3GAN, R3GAN/Networks.py), rebuilt here. Stages run from the
# innermost side (4x4 for the powers of two, 7x7 for MNIST's 28, 6x6 for 48: the basis is that side, so 28
# takes two up-samplings) out to the image. Between the stages the residual stream is linear: leaky ReLUs
# live inside the blocks only, and nothing normalises anything. The generator ends in a 1x1 convolution
# with no tanh, as the official code; pictures clamp to [-1, 1].
# The official CIFAR-10 preset is widths=768, blocks=2, cardinality=96, expansion=2, latent_dim=64 (four
# stages at 32x32; about 20.7M parameters in each network); the defaults are sized for one CPU thread at
# 28x28 (widths 64, 32, 16 at 7, 14, 28; about 64k and 60k parameters).

LEAK = 0.2
GAIN = math.sqrt(2 / (1 + LEAK**2))  # He's gain of a leaky ReLU of slope 0.2
TAPS = (1.0, 2.0, 1.0)  # the binomial low-pass filter of the transitions


def _he(layer: nn.Module, gain: float = 1.0) -> nn.Module:
    """N(0, gain^2 / fan-in) weights, zeros for gain 0: the official code's initialisation."""
    if gain:
        nn.init.normal_(layer.weight, 0.0, gain / math.sqrt(layer.weight[0].numel()))  # fan-in: per group x kernel area
    else:
        nn.init.zeros_(layer.weight)
    return layer


def _conv(cin: int, cout: int, kernel: int = 1, groups: int = 1, gain: float = 1.0) -> nn.Conv2d:
    return _he(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, groups=groups, bias=False), gain)


def per_stage(values: tuple[int, ...], stages: int) -> list[int]:
    """One value per stage, innermost first: the first `stages` values, the last one repeated if fewer."""
    return [values[min(i, len(values) - 1)] for i in range(stages)]


class BiasedLeakyReLU(nn.Module):
    """A learned bias per map, then leaky ReLU (0.2): the only bias a block has."""

    def __init__(self, maps: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(maps))

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x + self.bias.to(x.dtype).view(-1, 1, 1), LEAK)  # to x's dtype: bf16 stays bf16


class Block(nn.Module):
    """Inverted bottleneck: 1x1 to expansion x width maps, grouped 3x3, 1x1 back, added to the input.

    Fix-up initialisation: the last convolution starts at zero, so the block starts as the identity,
    and the other two are scaled by total_blocks^(-1/4) (L^(-1/(2m-2)) for m = 3 layers), so the sum of
    L branches keeps its variance as training moves the last convolutions off zero."""

    def __init__(self, width: int, expansion: int, cardinality: int, total_blocks: int) -> None:
        super().__init__()
        hidden, gain = width * expansion, GAIN * total_blocks ** -0.25
        self.branch = nn.Sequential(
            _conv(width, hidden, gain=gain), BiasedLeakyReLU(hidden),
            _conv(hidden, hidden, 3, groups=cardinality, gain=gain), BiasedLeakyReLU(hidden),
            _conv(hidden, width, gain=0.0),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return x + self.branch(x)


class LowPass(nn.Module):
    """2x up- or down-sampling through the [1, 2, 1] binomial filter (per map, weights fixed).

    As the official code's interpolative resamplers, the filter is convolved with the [1, 1] box of the
    2x step, so each axis applies [1, 3, 3, 1] / 8; up-sampling multiplies by 4 (the zeros it inserts)."""

    def __init__(self, maps: int, up: bool) -> None:
        super().__init__()
        self.up = up
        taps = torch.tensor(TAPS)
        self.register_buffer("filter", taps / taps.sum(), persistent=False)  # fixed: not in checkpoints
        zero = torch.zeros(1)
        axis = (torch.cat([self.filter, zero]) + torch.cat([zero, self.filter])) / 2  # filter * [1, 1] / 2
        kernel = torch.outer(axis, axis) * (4 if up else 1)
        self.register_buffer("kernel", kernel.expand(maps, 1, *kernel.shape).contiguous(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        sample = F.conv_transpose2d if self.up else F.conv2d  # the kernel is symmetric: no flip needed
        return sample(x, self.kernel.to(x.dtype), stride=2, padding=1, groups=x.shape[1])


class _Config(ganzoo.NetworkConfig):
    """The options both networks share; per-stage lists run from the innermost stage out."""

    any_channels: ClassVar[bool] = False

    widths: tuple[int, ...] = Field(
        (64, 32, 16), min_length=1,
        description="maps of each stage, innermost first (the last repeats for further stages; the official CIFAR-10 "
        "preset: 768)",
    )  # fmt: skip
    blocks: tuple[int, ...] = Field((1,), min_length=1, description="residual blocks of each stage, innermost first (official: 2)")
    cardinality: tuple[int, ...] = Field(
        (8, 4, 2), min_length=1,
        description="groups of each stage's 3x3 convolution, innermost first (16 inner maps each by default; official: 96)",
    )
    expansion: int = Field(2, gt=0, description="a block's inner maps per map of its stage (official: 2)")

    @field_validator("sample_shape")
    @classmethod
    def _image(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
        return check_image_shape("r3gan", shape, any_channels=cls.any_channels)

    @field_validator("widths", "blocks", "cardinality", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        # on the command line a list is joined by + (widths=256+128+64); one number serves every stage
        # (and a list becomes a tuple here, which a strict reload of a recorded config needs)
        value = value.split("+") if isinstance(value, str) else [value] if isinstance(value, int) else value
        return tuple(value) if isinstance(value, list) else value

    @field_validator("widths", "blocks", "cardinality")
    @classmethod
    def _positive(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if min(values) < 1:
            raise ValueError(f"must be whole numbers above 0, one per stage, innermost first")
        return values

    @model_validator(mode="after")
    def _groups_divide(self) -> "_Config":
        side, (widths, cardinalities, _) = self.sample_shape[1], self.stages()
        for i, (width, groups) in enumerate(zip(widths, cardinalities)):
            if width * self.expansion % groups:
                at = base_side(side) * 2**i
                raise ValueError(
                    f"r3gan's {at}x{at} stage has {width * self.expansion} inner maps (width {width} x expansion "
                    f"{self.expansion}), which cardinality {groups} does not divide; give a divisor of it"
                )
        return self

    def stages(self) -> tuple[list[int], list[int], list[int]]:
        """Widths, cardinalities and blocks of each stage the image side has, innermost first."""
        side = self.sample_shape[1]
        count = 1 + int(math.log2(side // base_side(side)))
        return tuple(per_stage(values, count) for values in (self.widths, self.cardinality, self.blocks))


class R3GANGenerator(ganzoo.Generator):
    """R3GAN's normalization-free ResNet generator (Huang et al. 2024); class embedding beside z when conditional.

    z (and the class's embedding) scales a learned basis at the innermost side, then stages of
    inverted-bottleneck residual blocks, each after a 1x1 convolution and a [1, 2, 1] low-pass 2x
    up-sampling, and a 1x1 convolution to the image's channels."""

    class Config(_Config, ganzoo.GeneratorConfig, GeneratorConfig):
        pass

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        channels, side, _ = self.sample_shape
        widths, groups, blocks = config.stages()
        inputs = config.latent_dim + (config.embedding if self.classes else 0)
        self.embed = nn.Embedding(self.classes, config.embedding) if self.classes else None
        if self.embed is not None:
            nn.init.normal_(self.embed.weight, 0.0, self.classes**-0.5)  # the official one-hot linear map's init
        self.basis = nn.Parameter(torch.randn(widths[0], base_side(side), base_side(side)))
        self.modulation = _he(nn.Linear(inputs, widths[0], bias=False))
        layers: list[nn.Module] = []
        for i, width in enumerate(widths):
            if i:  # the transition: 1x1 to the new width at the low side (cheaper), then up
                layers += [_conv(widths[i - 1], width)] if widths[i - 1] != width else []
                layers.append(LowPass(width, up=True))
            layers += [Block(width, config.expansion, groups[i], sum(blocks)) for _ in range(blocks[i])]
        self.net = nn.Sequential(*layers, _conv(widths[-1], channels))

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        scale = self.modulation(joined(z, labels, self.embed))
        return self.net(self.basis * scale[:, :, None, None])  # the generative basis: one scale per map


class R3GANCritic(FeatureCritic):
    """R3GAN's normalization-free ResNet critic (Huang et al. 2024); projection or ac head when conditional.

    A 1x1 convolution from the image, stages of inverted-bottleneck residual blocks, each followed by
    a [1, 2, 1] low-pass 2x down-sampling and a 1x1 convolution, then the discriminative basis (a
    depthwise convolution over the whole innermost side) and a linear score. No normalisation, so each
    sample's score is its own."""

    independent_samples = True

    class Config(_Config, CriticConfig):
        any_channels: ClassVar[bool] = True  # pac stacks packs along the channels

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        channels, side, _ = self.sample_shape
        widths, groups, blocks = (values[::-1] for values in config.stages())  # outermost first
        layers: list[nn.Module] = [_conv(channels, widths[0])]
        for i, width in enumerate(widths):
            layers += [Block(width, config.expansion, groups[i], sum(blocks)) for _ in range(blocks[i])]
            if i + 1 < len(widths):  # the transition: down at the old width, then 1x1 to the new one
                layers.append(LowPass(width, up=False))
                layers += [_conv(width, widths[i + 1])] if widths[i + 1] != width else []
        # the discriminative basis: one filter per map over the whole innermost side, one value per map
        basis = _he(nn.Conv2d(widths[-1], widths[-1], base_side(side), groups=widths[-1], bias=False))
        self.net = nn.Sequential(*layers, basis, nn.Flatten(), _he(nn.Linear(widths[-1], 1, bias=False)))
        self.condition(widths[-1])

    def features(self, x: Tensor) -> Tensor:
        return self.net[:-1](x)

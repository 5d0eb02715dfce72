import math
from typing import Literal

from pydantic import Field, field_validator
from torch import Tensor, nn

import ganzoo

from .conditioning import ClassBatchNorm2d, CriticConfig, FeatureCritic, with_labels

#: the side of the innermost maps: 4 for the powers of two (DCGAN), 7 for MNIST's 28, 6 for 48, ...
BASES = (4, 5, 6, 7)
LARGEST = 1024
CHANNELS = (1, 3)


def base_side(side: int) -> int | None:
    """The innermost side b of an image side = b * 2**k (k >= 1, b in 4..7), the stride-2 stages
    halving it: 32 -> 4, 28 -> 7, 48 -> 6; None where there is none (30, 7) or the side is over LARGEST."""
    if not 2 * min(BASES) <= side <= LARGEST:
        return None
    while side % 2 == 0 and side > max(BASES):
        side //= 2
    return side if side in BASES else None


def buildable_sides() -> list[int]:
    """Every image side the networks build, smallest first."""
    return [side for side in range(LARGEST + 1) if base_side(side)]


def feature_maps(side: int, width: int) -> list[int]:
    """Feature maps of each stride-2 stage, from full resolution inwards to the innermost one.

    There are log2(side / base) stages; each halves the resolution and doubles the maps.
    """
    return [width * 2**i for i in range(int(math.log2(side // base_side(side))))]


def check_image_shape(network: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """`shape` if a convolutional network can build it, else a ValueError naming what it can."""
    if len(shape) != 3 or shape[0] not in CHANNELS or shape[1] != shape[2] or base_side(shape[1]) is None:
        common = ", ".join(str(s) for s in buildable_sides() if s in (8, 16, 28, 32, 48, 64, 96, 128, 256))
        raise ValueError(
            f"{network} needs square images (channels 1 or 3, side, side) whose side halves down to 4..7, "
            f"e.g. {common}; resize the data with its size= option (e.g. --data NAME:size=32)"
        )
    return shape


def _init_weights(module: nn.Module) -> None:
    # As in the WGAN reference code (and the DCGAN paper): N(0, 0.02) convs, N(1, 0.02) BatchNorm scales.
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d) and module.affine:  # conditional ones init their own
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class _ImageConfig(ganzoo.NetworkConfig):
    width: int = Field(64, gt=0, description="feature maps of the outermost hidden layer, doubled per stage inwards")

    @field_validator("sample_shape")
    @classmethod
    def _square_image(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
        return check_image_shape("dcgan", shape)


class DCGANGenerator(ganzoo.Generator):
    """DCGAN generator (Radford et al.): transposed convolutions from the innermost side
    (4x4 for powers of two, 7x7 for 28) up to the image side;
    conditional, its BatchNorms take each class's own scale and shift (conditional BatchNorm)."""

    class Config(_ImageConfig, ganzoo.GeneratorConfig, ganzoo.ConditionalConfig):
        latent_dim: int = Field(100, gt=0, description="size of z")

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        channels, side, _ = self.sample_shape
        maps = feature_maps(side, config.width)[::-1]
        norm = (lambda m: ClassBatchNorm2d(m, self.classes)) if self.classes else nn.BatchNorm2d
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(config.latent_dim, maps[0], base_side(side), 1, 0, bias=False),
            norm(maps[0]),
            nn.ReLU(True),
        ]
        for cin, cout in zip(maps, maps[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), norm(cout), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(maps[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(_init_weights)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return with_labels(self.net, z.view(len(z), -1, 1, 1), labels)


def _norm(kind: str, maps: int) -> list[nn.Module]:
    """One group spanning all maps is layer normalisation over (channels, height, width), as WGAN-GP's code."""
    return {"batch": [nn.BatchNorm2d(maps)], "layer": [nn.GroupNorm(1, maps)], "none": []}[kind]


class DCGANCritic(FeatureCritic):
    """DCGAN critic: strided convolutions down to the innermost side and one raw score (no sigmoid)."""

    class Config(_ImageConfig, CriticConfig):
        """DCGAN critic options."""

        norm: Literal["batch", "layer", "none"] = Field(
            "batch",
            description="normalisation of the inner convolutions: batch (DCGAN), or layer or none, which keep "
            "each sample's score its own, as gradient penalties assume (WGAN-GP uses layer, SNGAN and R1 none)",
        )

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        channels, side, _ = self.sample_shape
        maps = feature_maps(side, config.width)
        layers: list[nn.Module] = [nn.Conv2d(channels, maps[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for cin, cout in zip(maps, maps[1:]):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=config.norm == "none"), *_norm(config.norm, cout)]
            layers.append(nn.LeakyReLU(0.2, True))
        base = base_side(side)
        layers.append(nn.Conv2d(maps[-1], 1, base, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)
        self.apply(_init_weights)
        self.condition(maps[-1] * base**2)  # the innermost maps the last convolution reads

    def features(self, x: Tensor) -> Tensor:
        return self.net[:-1](x)

from typing import Literal

from pydantic import Field, field_validator
from torch import Tensor, nn

import ganzoo

from .conditioning import ClassBatchNorm2d, CriticConfig, FeatureCritic, with_labels
from .sides import base_side, check_image_shape, feature_maps

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
    """DCGAN generator (Radford et al.), conditional BatchNorm when conditional.

    Transposed convolutions from the innermost side (4x4 for powers of two, 7x7 for 28) up to the image side;
    conditional, its BatchNorms take each class's own scale and shift (conditional BatchNorm)."""

    bf16_on_cpu = True  # a step at 28x28, width 64: 0.72x float32's time (docs/performance.md)

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
        return with_labels(self.net, z[:, :, None, None], labels)  # a 1x1 image of latent_dim maps


def _norm(kind: str, maps: int) -> list[nn.Module]:
    """One group spanning all maps is layer normalisation over (channels, height, width), as WGAN-GP's code."""
    return {"batch": [nn.BatchNorm2d(maps)], "layer": [nn.GroupNorm(1, maps)], "none": []}[kind]


class DCGANCritic(FeatureCritic):
    """DCGAN critic: strided convolutions down to the innermost side and one raw score (no sigmoid)."""

    bf16_on_cpu = True

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

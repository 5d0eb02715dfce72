import math

from pydantic import Field
from torch import Tensor, nn

import ganzoo

from .conditioning import CriticConfig, FeatureCritic, GeneratorConfig, joined


def _mlp(inputs: int, outputs: int, width: int, depth: int, batchnorm: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(inputs if i == 0 else width, width), *([nn.BatchNorm1d(width)] if batchnorm else []), nn.ReLU()]
    layers.append(nn.Linear(width if depth else inputs, outputs))
    return nn.Sequential(*layers)


class MLPGenerator(ganzoo.Generator):
    """Fully connected ReLU generator; any sample shape (made for 2-D toy data)."""

    class Config(ganzoo.GeneratorConfig, GeneratorConfig):
        latent_dim: int = Field(2, gt=0, description="size of z")
        width: int = Field(128, gt=0, description="units per hidden layer")
        depth: int = Field(3, ge=0, description="number of hidden layers")
        batchnorm: bool = Field(False, description="BatchNorm after each hidden layer (the PacGAN generator: 4 x 400)")

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        inputs = config.latent_dim + (config.embedding if self.classes else 0)  # z and the class's embedding
        self.net = _mlp(inputs, math.prod(self.sample_shape), config.width, config.depth, config.batchnorm)
        self.embed = nn.Embedding(self.classes, config.embedding) if self.classes else None

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(joined(z, labels, self.embed)).view(-1, *self.sample_shape)


class MLPCritic(FeatureCritic):
    """Fully connected ReLU critic; any sample shape (made for 2-D toy data)."""

    independent_samples = True

    # Wide and shallow by default: a clipped critic's scores shrink by c at every layer (WGAN-GP,
    # Figure 1), and the main command's WGAN found >= 6 of ring8's 8 modes in 4 of 5 seeds with
    # one layer of 512 units against 3 of 5 with three of 128, in the same time.
    class Config(ganzoo.NetworkConfig, CriticConfig):
        width: int = Field(512, gt=0, description="units per hidden layer")
        depth: int = Field(1, ge=0, description="number of hidden layers")

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.net = _mlp(math.prod(self.sample_shape), 1, config.width, config.depth)
        self.condition(config.width if config.depth else math.prod(self.sample_shape))

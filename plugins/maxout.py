import math

from pydantic import Field
from torch import Tensor, nn

import ganzoo

from .conditioning import CriticConfig, FeatureCritic


class _Maxout(nn.Module):
    """A linear layer of `width` units, each the largest of `pieces` linear pieces (Goodfellow et al. 2013)."""

    def __init__(self, inputs: int, width: int, pieces: int) -> None:
        super().__init__()
        self.width, self.pieces = width, pieces
        self.linear = nn.Linear(inputs, width * pieces)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).view(len(x), self.width, self.pieces).amax(-1)


class MaxoutCritic(FeatureCritic):
    """Maxout MLP critic, the PacGAN / VEEGAN toy-data discriminator (3 x 200 units, 5 pieces)."""

    independent_samples = True

    class Config(ganzoo.NetworkConfig, CriticConfig):
        width: int = Field(200, gt=0, description="maxout units per hidden layer")
        depth: int = Field(3, ge=1, description="number of hidden layers")
        pieces: int = Field(5, ge=1, description="linear pieces per maxout unit")

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        inputs = math.prod(self.sample_shape)
        layers = [_Maxout(inputs if i == 0 else config.width, config.width, config.pieces) for i in range(config.depth)]
        self.net = nn.Sequential(*layers, nn.Linear(config.width, 1))
        self.condition(config.width)

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

import ganzoo


class InstanceNoise(ganzoo.Loss):
    """Minimax or -log D with Gaussian noise on every critic input, sigma annealed to 0."""

    class Config(ganzoo.Config):
        base: Literal["minimax", "nonsaturating"] = Field("nonsaturating", description="the GAN cost under the noise")
        sigma: float = Field(0.1, ge=0, description="noise std at the start of the run")
        anneal: bool = Field(True, description="decay sigma linearly to 0 over the run")

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.base = ganzoo.create_loss(config.base)

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return self.base.critic_loss(real_scores, fake_scores)

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return self.base.generator_loss(fake_scores)

    def sigma(self, progress: float) -> float:
        return self.config.sigma * (1.0 - progress) if self.config.anneal else self.config.sigma

    def perturb(self, x: Tensor, progress: float) -> Tensor:
        sigma = self.sigma(progress)
        return x + sigma * torch.randn_like(x) if sigma > 0 else x

import math

import torch
from pydantic import Field

import ganzoo


class Ring8(ganzoo.GaussianMixture):
    """8 Gaussians evenly spaced on a circle (the PacGAN / VEEGAN 2-D ring)."""

    class Config(ganzoo.Config):
        modes: int = Field(8, ge=1, le=10_000, description="number of Gaussians on the ring")
        radius: float = Field(1.0, gt=0, le=1e6, description="radius of the ring")
        std: float = Field(0.01, gt=0, le=1e6, description="std of each Gaussian")

    def centres(self) -> torch.Tensor:
        angles = torch.arange(self.config.modes, dtype=torch.float64) * (2 * math.pi / self.config.modes)
        return (self.config.radius * torch.stack([angles.cos(), angles.sin()], 1)).float()

import torch
from pydantic import Field

import ganzoo


class Grid25(ganzoo.GaussianMixture):
    """25 Gaussians on the grid {-4, -2, 0, 2, 4}^2 (the PacGAN / VEEGAN 2-D grid)."""

    class Config(ganzoo.Config):
        side: int = Field(5, ge=1, le=100, description="Gaussians per row and column")
        spacing: float = Field(2.0, gt=0, le=1e6, description="distance between neighbouring centres")
        std: float = Field(0.05, gt=0, le=1e6, description="std of each Gaussian")

    def centres(self) -> torch.Tensor:
        ticks = (torch.arange(self.config.side) - (self.config.side - 1) / 2) * self.config.spacing
        return torch.cartesian_prod(ticks, ticks).float()

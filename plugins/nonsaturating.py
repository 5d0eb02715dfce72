import torch.nn.functional as F
from torch import Tensor

import ganzoo


class NonSaturating(ganzoo.Loss):
    """The -log D trick: G minimises -E[log D(G(z))]."""

    class Config(ganzoo.Config):
        """No options."""

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return F.softplus(-fake_scores).mean()

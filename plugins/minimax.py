import torch.nn.functional as F
from torch import Tensor

import ganzoo


class Minimax(ganzoo.Loss):
    """Original saturating GAN: G minimises E[log(1 - D(G(z)))]."""

    class Config(ganzoo.Config):
        """No options."""

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        # -log sigmoid(s) = softplus(-s); -log(1 - sigmoid(s)) = softplus(s)
        return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return -F.softplus(fake_scores).mean()

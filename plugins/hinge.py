import torch.nn.functional as F
from torch import Tensor

import ganzoo


class Hinge(ganzoo.Loss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018): the critic keeps margins of 1, G raises its scores."""

    class Config(ganzoo.Config):
        """No options."""

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return -fake_scores.mean()

import torch.nn.functional as F
from torch import Tensor

import ganzoo


class Hinge(ganzoo.Loss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018): margins of 1 around the critic's scores."""

    plugin_api = ">=1,<2"  # the ganzoo plugin API versions this class is written for

    class Config(ganzoo.Config):
        """No options."""

    # No `defaults`: the base's recommendation (Adam, lr 2e-4, one critic step) suits it.

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return -fake_scores.mean()

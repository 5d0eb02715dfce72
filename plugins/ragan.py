import torch.nn.functional as F
from torch import Tensor

import ganzoo


class RaGAN(ganzoo.Loss):
    """Relativistic average GAN (Jolicoeur-Martineau 2018): each score against the other side's mean score.

    Under several processes the means are over each process's share of the batch."""

    class Config(ganzoo.Config):
        """No options."""

    generator_sees_real = True

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return relativistic_average(real_scores, fake_scores)

    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor) -> Tensor:
        return relativistic_average(fake_scores, real_scores)


def relativistic_average(winners: Tensor, losers: Tensor) -> Tensor:
    """The loss of a side that should score above the other's mean, while the other scores below its mean."""
    return F.softplus(-(winners - losers.mean())).mean() + F.softplus(losers - winners.mean()).mean()

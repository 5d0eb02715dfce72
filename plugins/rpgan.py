import torch.nn.functional as F
from torch import Tensor

import ganzoo


class RpGAN(ganzoo.Loss):
    """Relativistic pairing GAN (Jolicoeur-Martineau 2019, Sun et al. 2020, R3GAN): each real sample's score against its paired fake's."""

    class Config(ganzoo.Config):
        """No options."""

    generator_sees_real = True
    # R3GAN's optimiser: Adam with beta1 0 (its presets then schedule lr and beta2).
    defaults = ganzoo.TrainDefaults(optimizer="adam", lr=2e-4, betas=(0.0, 0.99))

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return F.softplus(fake_scores - paired(real_scores, fake_scores)).mean()

    def generator_loss(self, fake_scores: Tensor, real_scores: Tensor) -> Tensor:
        return F.softplus(paired(real_scores, fake_scores) - fake_scores).mean()


def paired(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """The real scores, checked to pair one to one (by batch index) with the fake ones."""
    if real_scores.shape != fake_scores.shape:
        raise ganzoo.UsageError(
            f"rpgan pairs real and fake samples by batch index; got {len(real_scores)} real and {len(fake_scores)} fake scores"
        )
    return real_scores

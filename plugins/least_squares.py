from torch import Tensor

import ganzoo


class LeastSquares(ganzoo.Loss):
    """Least-squares GAN (Mao et al. 2017, a=0, b=c=1): scores regressed to 1 for real, 0 for fake."""

    class Config(ganzoo.Config):
        """No options."""

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return 0.5 * (real_scores - 1).square().mean() + 0.5 * fake_scores.square().mean()

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return 0.5 * (fake_scores - 1).square().mean()

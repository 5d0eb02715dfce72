from torch import Tensor

import ganzoo


class WGAN(ganzoo.Loss):
    """Wasserstein GAN: the critic maximises E[f(x)] - E[f(G(z))]."""

    class Config(ganzoo.Config):
        """No options; pair it with a Lipschitz constraint such as `clip`."""

    # Arjovsky, Chintala & Bottou 2017, Algorithm 1 and the reference code's critic schedule.
    defaults = ganzoo.TrainDefaults(optimizer="rmsprop", lr=5e-5, n_critic=5, batch_size=64, critic_boost=100)
    estimates_wasserstein = True

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return fake_scores.mean() - real_scores.mean()

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return -fake_scores.mean()

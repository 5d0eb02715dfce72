import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

import ganzoo


class AuxiliaryClassifier(ganzoo.Constraint):
    """AC-GAN (Odena et al. 2017): a critic with head=ac also classifies, and learns the classes.

    Its cross-entropy on real data joins the critic's loss, on fakes the generator's."""

    per_sample_gradients = False  # a classification loss: a BatchNorm critic is fine
    teaches_labels = True

    class Config(ganzoo.Config):
        weight: float = Field(1.0, ge=0, description="weight of the classification losses")
        fake: bool = Field(
            False,
            description="also train the classifier on fakes, as the paper does (StudioGAN's maintainers found "
            "that leaving this term out helps)",
        )

    def attach(self, critic: nn.Module) -> nn.Module:
        if getattr(critic, "classifier", None) is None:
            raise ganzoo.ConfigError(
                f"constraint 'ac' needs a conditional critic with a classifier head (e.g. --critic mlp:head=ac "
                f"with --conditional); {type(critic).__name__} has none"
            )
        return critic

    def penalty(self, critic: ganzoo.Labelled, real: Tensor, fake: Tensor) -> Tensor:
        classify = critic.critic.classify
        loss = F.cross_entropy(classify(real), critic.labels)
        if self.config.fake:
            loss = loss + F.cross_entropy(classify(fake), critic.fake_labels)
        return self.config.weight * loss

    def generator_penalty(self, critic: ganzoo.Labelled, fake: Tensor) -> Tensor:
        return self.config.weight * F.cross_entropy(critic.critic.classify(fake), critic.fake_labels)

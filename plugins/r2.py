from torch import Tensor, nn

import ganzoo
from ganzoo_plugins.r1 import R1


class R2(R1):
    """R2 penalty (Mescheder et al. 2018, R3GAN): gamma/2 times the squared gradient norm of the critic on generated data."""

    class Config(R1.Config):
        """R1's options, applied to the fakes."""

    def penalty(self, critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        # in a conditional run, each fake is scored under its own label
        return self.zero_centred(critic.of_fakes() if isinstance(critic, ganzoo.Labelled) else critic, fake)

from pydantic import Field
from torch import Tensor, autograd, nn

import ganzoo


class R1(ganzoo.Constraint):
    """R1 penalty (Mescheder et al. 2018): gamma/2 times the squared gradient norm of the critic on real data."""

    class Config(ganzoo.LazyConfig):
        gamma: float = Field(10.0, ge=0, description="gamma, the weight of the penalty")

    def penalty(self, critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return self.zero_centred(critic, real)

    def zero_centred(self, critic: nn.Module, samples: Tensor) -> Tensor:
        """gamma/2 E[|grad_x D(x)|^2] over `samples`, each sample's squared norm summed over its values."""
        x = samples.detach().requires_grad_(True)
        (grad,) = autograd.grad(critic(x).sum(), x, create_graph=True)
        return self.config.gamma / 2 * grad.flatten(1).square().sum(dim=1).mean()

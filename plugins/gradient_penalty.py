import torch
from pydantic import Field
from torch import Tensor, nn

import ganzoo


class GradientPenalty(ganzoo.Constraint):
    """Gradient penalty (Gulrajani et al. 2017, WGAN-GP): critic gradient norms pulled to 1 between real and fake."""

    class Config(ganzoo.LazyConfig):
        weight: float = Field(10.0, ge=0, description="lambda, the weight of the penalty (10 in the paper)")

    def penalty(self, critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        # Interpolates x_hat = eps x + (1 - eps) x~, one eps ~ U[0, 1] per sample (Algorithm 1).
        eps = torch.rand(real.shape[0], *[1] * (real.dim() - 1), device=real.device)
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        # Summing the scores gives each sample's own gradient; create_graph: the step differentiates it again.
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
        return self.config.weight * (grad.flatten(1).norm(dim=1) - 1).square().mean()

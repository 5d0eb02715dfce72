import torch
from pydantic import Field
from torch import Tensor, nn

import ganzoo


class GradientPenalty(ganzoo.Constraint):
    """Gradient penalty (Gulrajani et al. 2017): critic gradient norms pulled to 1 between real and fake."""

    plugin_api = ">=1,<2"  # the ganzoo plugin API versions this class is written for

    class Config(ganzoo.Config):
        # Named `weight`, not `lambda`, which is a Python keyword.
        weight: float = Field(10.0, ge=0, description="lambda, the weight of the penalty (10 in the paper)")

    def penalty(self, critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        # The loop passes the raw batches: not perturbed by the loss, and fake carries no graph.
        eps = torch.rand(real.shape[0], *[1] * (real.dim() - 1), device=real.device)  # one per sample
        x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
        # Summing the scores gives each sample's own gradient (the critic mixes no samples: no
        # batch norm). create_graph=True, since the critic step differentiates the penalty again.
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
        return self.config.weight * (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()

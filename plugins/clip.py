import torch
from pydantic import Field
from torch import nn

import ganzoo


class Clip(ganzoo.Constraint):
    """Weight clipping: every critic parameter clamped to [-c, c] after each critic step."""

    class Config(ganzoo.Config):
        c: float = Field(0.01, gt=0, description="clipping bound")

    @torch.no_grad()
    def after_critic_step(self, critic: nn.Module) -> None:
        params = list(critic.parameters())  # read each time: parameters added late are clipped too
        torch._foreach_clamp_min_(params, -self.config.c)
        torch._foreach_clamp_max_(params, self.config.c)

import torch
from pydantic import Field
from torch import nn

import ganzoo


class Clip(ganzoo.Constraint):
    """Weight clipping: every critic parameter clamped to [-c, c] after each critic step."""

    class Config(ganzoo.Config):
        c: float = Field(0.01, gt=0, description="clipping bound")

    _params: tuple[nn.Module, list[nn.Parameter]] | None = None

    @torch.no_grad()
    def after_critic_step(self, critic: nn.Module) -> None:
        if self._params is None or self._params[0] is not critic:  # listed once per critic
            self._params = (critic, list(critic.parameters()))
        params = self._params[1]
        torch._foreach_clamp_min_(params, -self.config.c)
        torch._foreach_clamp_max_(params, self.config.c)

from pydantic import Field
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

import ganzoo

#: layers whose weight is normalised
LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)


class SpectralNorm(ganzoo.Constraint):
    """Spectral normalisation (Miyato et al. 2018): every critic layer's weight divided by its largest singular value."""

    class Config(ganzoo.Config):
        power_iterations: int = Field(1, ge=1, le=100, description="power iterations per forward pass (1 in the paper)")

    def attach(self, critic: nn.Module) -> nn.Module:
        for module in list(critic.modules()):
            if isinstance(module, LAYERS):
                spectral_norm(module, n_power_iterations=self.config.power_iterations)
        return critic

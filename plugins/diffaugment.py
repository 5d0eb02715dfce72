import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import Tensor

import ganzoo

POLICIES = ("color", "translation", "cutout")


class DiffAugment(ganzoo.Augment):
    """DiffAugment (Zhao et al. 2020): random colour, translation and cutout of what the critic sees.

    Each sample gets its own draw and every transform is differentiable; the paper's policy for
    small data is all three."""

    class Config(ganzoo.Config):
        policy: str = Field("color+translation+cutout", description="the transforms, joined by +: color, translation, cutout")
        translation: float = Field(0.125, ge=0, le=1, description="largest shift, as a fraction of the image side")
        cutout: float = Field(0.5, gt=0, le=1, description="side of the square cut out, as a fraction of the image side")
        p: float = Field(1.0, ge=0, le=1, description="chance that a sample is augmented (ADA's p, which R3GAN schedules)")

        @field_validator("policy")
        @classmethod
        def _known(cls, policy: str) -> str:
            parts = policy.split("+")
            unknown = [p for p in parts if p not in POLICIES]
            if unknown or len(set(parts)) != len(parts):
                raise ValueError(f"must be {', '.join(POLICIES)} joined by +, each once")
            return policy

    def __call__(self, x: Tensor, progress: float) -> Tensor:
        if x.dim() != 4:
            raise ganzoo.UsageError(f"diffaugment transforms images (B, C, H, W); the critic sees {tuple(x.shape)}")
        p = self.config.p
        if p == 0:
            return x
        augmented = x
        for policy in self.config.policy.split("+"):
            augmented = getattr(self, policy)(augmented)
        if p == 1:
            return augmented
        chosen = torch.rand(len(x), 1, 1, 1, device=x.device) < p
        return torch.where(chosen, augmented, x)

    @staticmethod
    def color(x: Tensor) -> Tensor:
        """Brightness (+U(-0.5, 0.5)), saturation (x U(0, 2) around each pixel's channel mean), contrast
        (x U(0.5, 1.5) around each image's mean), on images in [-1, 1] as the paper's code does."""
        draw = lambda: torch.rand(len(x), 1, 1, 1, dtype=x.dtype, device=x.device)  # noqa: E731
        x = x + (draw() - 0.5)
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (draw() * 2) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * (draw() + 0.5) + mean

    def translation(self, x: Tensor) -> Tensor:
        """Each image shifted by up to `translation` of its side each way, the rest filled with zeros."""
        batch, _, height, width = x.shape
        shift_y, shift_x = int(height * self.config.translation + 0.5), int(width * self.config.translation + 0.5)
        dy = torch.randint(-shift_y, shift_y + 1, (batch, 1, 1), device=x.device)
        dx = torch.randint(-shift_x, shift_x + 1, (batch, 1, 1), device=x.device)
        rows = (torch.arange(height, device=x.device)[None, :, None] + dy + 1).clamp(0, height + 1)
        cols = (torch.arange(width, device=x.device)[None, None, :] + dx + 1).clamp(0, width + 1)
        padded = F.pad(x, (1, 1, 1, 1))  # the zero border is what a shift brings in
        index = torch.arange(batch, device=x.device)[:, None, None]
        return padded.permute(0, 2, 3, 1)[index, rows, cols].permute(0, 3, 1, 2)

    def cutout(self, x: Tensor) -> Tensor:
        """A square of `cutout` of the side, at a random place in each image, set to zero."""
        batch, _, height, width = x.shape
        size_y, size_x = int(height * self.config.cutout + 0.5), int(width * self.config.cutout + 0.5)
        top = torch.randint(0, height + (1 - size_y % 2), (batch, 1, 1), device=x.device) - size_y // 2
        left = torch.randint(0, width + (1 - size_x % 2), (batch, 1, 1), device=x.device) - size_x // 2
        rows = torch.arange(height, device=x.device)[None, :, None]
        cols = torch.arange(width, device=x.device)[None, None, :]
        inside = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
        return x * (~inside).unsqueeze(1).to(x.dtype)

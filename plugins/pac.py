import math

from pydantic import Field, ValidationError, model_validator
from torch import Tensor

import ganzoo


def packed_shape(shape: tuple[int, ...], m: int) -> tuple[int, ...]:
    """A pack is m samples side by side: flat vectors joined, images stacked along the channels."""
    return (m * shape[0], *shape[1:]) if len(shape) == 3 else (m * math.prod(shape),)


class Pac(ganzoo.Critic):
    """PacGAN packing (Lin et al. 2018): any critic judges m samples at once, against mode collapse.

    Conditional, a pack's m labels go with it, (B / m, m), to a conditional base critic."""

    class Config(ganzoo.NetworkConfig, ganzoo.ConditionalConfig):
        m: int = Field(2, ge=1, description="samples per pack (PacGAN2: 2, PacGAN4: 4)")
        base: ganzoo.PluginSpec = Field(
            ganzoo.PluginSpec(name="mlp"), description="the critic that judges each pack, NAME[:options]"
        )

        @model_validator(mode="after")
        def _base_takes_packs(self):
            # Checked with the run's config, before any network exists: the base must accept packs.
            base = ganzoo.get_class("critic", self.base.name)
            if self.classes and not ganzoo.takes_labels(base):
                raise ValueError(f"critic '{self.base.name}' takes no labels, so it cannot judge labelled packs")
            labels = {"classes": self.classes} if self.classes else {}
            try:
                base.Config(**self.base.options, **labels, sample_shape=packed_shape(self.sample_shape, self.m))
            except ValidationError as exc:
                raise ValueError("; ".join(self._describe(e) for e in exc.errors())) from None
            return self

        def _describe(self, error) -> str:
            message, where = error["msg"].removeprefix("Value error, "), ".".join(map(str, error["loc"]))
            if where in ("", "sample_shape"):
                return f"critic '{self.base.name}' cannot judge packs of {self.m}: {message}"
            return f"base critic '{self.base.name}': option '{where}': {message} (got {str(error['input'])[:100]!r})"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        packed = packed_shape(self.sample_shape, config.m)
        labels = {"classes": self.classes} if self.classes else {}
        self.critic = ganzoo.create_critic(config.base.name, **config.base.options, **labels, sample_shape=packed)

    @property
    def batch_multiple(self) -> int:
        return self.config.m * self.critic.batch_multiple

    def pack(self, x: Tensor) -> Tensor:
        m = self.config.m
        if len(x) % m:
            raise ganzoo.UsageError(f"pac:m={m} packs {m} samples at a time, but a batch has {len(x)}; "
                                    f"use a batch size divisible by {m}")  # fmt: skip
        return x.reshape(len(x) // m, m * x.shape[1], *x.shape[2:]) if x.dim() == 4 else x.reshape(len(x) // m, -1)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        # Each sample gets its pack's score: every loss's mean over samples is its mean over packs.
        scores = self.critic(self.pack(x)) if labels is None else self.critic(self.pack(x), labels.view(-1, self.config.m))
        return scores.repeat_interleave(self.config.m)

    def penalty_view(self, real: Tensor, fake: Tensor, labels: tuple[Tensor, Tensor] | None = None):
        # The true function is the base critic on packs: through the repeated score, a sample's
        # gradient would be m times its pack's.
        packs = (self.pack(real), self.pack(fake))
        if labels is None:  # as an unconditional base critic's own penalty_view expects
            return self.critic.penalty_view(*packs)
        return self.critic.penalty_view(*packs, tuple(y.view(-1, self.config.m) for y in labels))

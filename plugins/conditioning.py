"""What the built-in networks add to condition on classes; shared by mlp, maxout and dcgan (not a plugin)."""

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

import ganzoo


class CriticConfig(ganzoo.ConditionalConfig):
    label_options: ClassVar[tuple[str, ...]] = ("classes", "head")

    head: Literal["projection", "ac"] = Field(
        "projection",
        description="how a conditional critic uses the labels: projection (Miyato & Koyama 2018) or "
        "ac, an auxiliary classifier whose loss the ac constraint adds (Odena et al. 2017)",
    )


class GeneratorConfig(ganzoo.ConditionalConfig):
    label_options: ClassVar[tuple[str, ...]] = ("classes", "embedding")

    embedding: int = Field(32, gt=0, le=4096, description="size of the learned class embedding a conditional generator reads")


class FeatureCritic(ganzoo.Critic):
    """A critic whose score is one linear map of its features: `features(x)` (B, ...), F values a
    sample, and `last(h)`; by default the layers of `self.net` on the flattened input, and its last.

    Conditional with head=projection, the score adds <embed(y), features> (Miyato & Koyama 2018),
    embed(y) being the mean embedding of a pack's labels when labels come as (B, m); with head=ac,
    `classify(x)` gives class logits from the same features and the score ignores the labels.
    """

    def condition(self, features: int) -> None:
        """Called by a subclass once its layers exist, so an unconditional critic's weights are drawn as before."""
        head, classes = getattr(self.config, "head", None), self.classes
        self.embed = nn.Embedding(classes, features) if classes and head == "projection" else None
        self.classifier = nn.Linear(features, classes) if classes and head == "ac" else None
        if self.embed is not None:
            nn.init.zeros_(self.embed.weight)  # starts as the unconditional critic

    @property
    def scores_labels(self) -> bool:
        return self.classifier is None  # head=ac scores without the labels; the ac constraint teaches them

    def features(self, x: Tensor) -> Tensor:
        return self.net[:-1](x.flatten(1))

    def last(self, h: Tensor) -> Tensor:
        return self.net[-1](h).flatten()

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.features(x)
        score = self.last(h)
        if self.embed is not None:
            h = h.flatten(1)
            score = score + (self.embed(labels).view(len(h), -1, h.shape[1]).mean(1) * h).sum(1)
        return score

    def classify(self, x: Tensor) -> Tensor:
        if self.classifier is None:
            raise ganzoo.UsageError(f"critic '{type(self).__name__}' has no classifier head: give it head=ac")
        return self.classifier(self.features(x).flatten(1))


class ClassBatchNorm2d(nn.Module):
    """Conditional BatchNorm (de Vries et al. 2017; the SNGAN generator): normalised, then scaled and
    shifted by the class's own gain and bias. The normalisation is a plain BatchNorm2d, so runs of
    several processes share its statistics like any other."""

    def __init__(self, maps: int, classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(maps, affine=False)
        self.scale, self.shift = nn.Embedding(classes, maps), nn.Embedding(classes, maps)
        nn.init.normal_(self.scale.weight, 1.0, 0.02)  # as DCGAN's BatchNorm scales
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        return self.norm(x) * self.scale(labels)[:, :, None, None] + self.shift(labels)[:, :, None, None]


def with_labels(layers: nn.Sequential, x: Tensor, labels: Tensor | None) -> Tensor:
    """Run `layers`, giving `labels` to the conditional ones."""
    for layer in layers:
        x = layer(x, labels) if isinstance(layer, ClassBatchNorm2d) else layer(x)
    return x


def joined(z: Tensor, labels: Tensor | None, embed: nn.Embedding | None) -> Tensor:
    """z, with the labels' embedding beside it in a conditional generator."""
    return z if embed is None else torch.cat([z, embed(labels)], 1)

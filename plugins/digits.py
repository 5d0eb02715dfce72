from collections.abc import Iterator
from functools import cache
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import Tensor

import ganzoo

SIZES = (8, 16, 32)


@cache
def _load(size: int, split: str) -> tuple[Tensor, Tensor]:
    """(images in [-1, 1] of shape (N, 1, size, size), labels (N,)) on the CPU, read once per process."""
    # The split rule lives in the core, so the metrics classifier is trained and tested on the same split.
    images, labels = ganzoo.digits_split(split)
    if size != images.shape[-1]:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return images, labels


class Digits(ganzoo.Dataset):
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes), scaled to [-1, 1]."""

    classes = 10

    class Config(ganzoo.Config):
        size: int = Field(8, description="image side: 8, 16 or 32 (upsampled bilinearly)")
        split: Literal["all", "train", "test"] = Field("all", description="a fixed 80/20 train/test split, or all")

        @field_validator("size")
        @classmethod
        def _allowed_size(cls, size: int) -> int:
            if size not in SIZES:
                raise ValueError(f"must be one of {', '.join(map(str, SIZES))}")
            return size

    def __init__(self, config: Config | None = None) -> None:
        super().__init__(config)
        self.sample_shape = (1, self.config.size, self.config.size)  # known without loading the data

    def tensors(self, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
        """Every image of the split and its label (0-9), for classifiers and metrics."""
        images, labels = _load(self.config.size, self.config.split)
        return images.to(device, copy=True), labels.to(device, copy=True)  # copies keep the cache intact

    def batches(self, batch_size: int, device: torch.device) -> Iterator[Tensor]:
        seed = int(torch.randint(2**62, ()))  # from the global RNG, so manual_seed makes it repeatable
        return self.local_batches(batch_size, device, ganzoo.Shard(seed=seed))

    def local_batches(self, batch_size: int, device: torch.device, shard: ganzoo.Shard) -> Iterator[Tensor]:
        return (images for images, _ in self.labelled_batches(batch_size, device, shard))

    def labelled_batches(self, batch_size: int, device: torch.device, shard: ganzoo.Shard) -> Iterator[tuple[Tensor, Tensor]]:
        images, labels = self.tensors(device)
        for indices in ganzoo.epoch_indices(len(images), batch_size, shard):
            indices = indices.to(device)
            yield images[indices], labels[indices]

    def describe(self) -> dict[str, Any]:
        return {"classes": 10}

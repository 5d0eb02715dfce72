from collections.abc import Iterator
from functools import cache
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import Tensor

import ganzoo

from . import classifiers

SIZES = (8, 16, 32)
#: the split rule: this seed permutes the 1797 images, the first 80% are "train"
SPLIT_SEED = 0
TRAIN_FRACTION = 0.8


def digits_split(split: str = "all") -> tuple[Tensor, Tensor]:
    """scikit-learn's 1797 8x8 digits as (images float32 (N, 1, 8, 8) in [-1, 1], labels int64 (N,)).

    The split rule, shared by the dataset and its classifier: a fixed permutation
    `numpy.random.RandomState(0).permutation(1797)` (the legacy generator, whose stream NumPy
    keeps fixed across versions); its first int(0.8 * 1797) indices are "train", the rest
    "test"; "all" is every image in scikit-learn's order.
    """
    from sklearn.datasets import load_digits  # imported here: slow, and only digits need it

    data = load_digits()
    images = torch.from_numpy(data.images / 16.0 * 2.0 - 1.0).float().unsqueeze(1)
    labels = torch.from_numpy(data.target).long()
    order = np.random.RandomState(SPLIT_SEED).permutation(len(labels))
    n_train = int(TRAIN_FRACTION * len(labels))
    chosen = {"all": np.arange(len(labels)), "train": order[:n_train], "test": order[n_train:]}
    if split not in chosen:
        raise ValueError(f"digits split must be one of {', '.join(chosen)}, got '{split}'")
    index = torch.from_numpy(chosen[split])
    return images[index], labels[index]


@cache
def _load(size: int, split: str) -> tuple[Tensor, Tensor]:
    """(images in [-1, 1] of shape (N, 1, size, size), labels (N,)) on the CPU, read once per process."""
    images, labels = digits_split(split)
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

    def __len__(self) -> int:  # how many real images there are: image metrics never repeat one
        return len(digits_split(self.config.split)[1])

    @property
    def evaluation_samples(self) -> int:
        return len(_load(self.config.size, self.config.split)[1])  # as many as real digits

    def evaluate(self, samples: Tensor, labels: Tensor | None, seed: int) -> dict[str, Any]:
        """The digits classifier's scores of the samples against every digit of the split: classes
        covered, KL to uniform, confidence, and the Frechet distance of its 64 features."""
        images, real_labels = self.tensors()
        return ganzoo.classifier_metrics(classifiers.load(classifiers.DigitsClassifier), samples, images, labels, real_labels)

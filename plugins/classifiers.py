"""The small classifiers that digits and Fashion-MNIST evaluate generators with (not a plugin).

Each is trained by scripts/train_classifier.py on its dataset's train split and ships in
plugins/assets as safetensors, its sha256 recorded here and checked on every load.
"""

from functools import cache
from importlib import resources
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import ganzoo


class Classifier(nn.Module):
    """A CNN for grey square images in [-1, 1]: `features(x)` (B, feature_dim), taken before the
    last ReLU (smoother to fit a Gaussian to), and `classify(features)`, the class logits.
    Colour is averaged to grey and other sizes are area-resized to `size`."""

    size: ClassVar[int]
    feature_dim: ClassVar[int]
    classes: ClassVar[int] = 10
    #: the shipped weights in plugins/assets, and their sha256 (scripts/train_classifier.py prints it)
    file: ClassVar[str]
    sha256: ClassVar[str]

    def __init__(self, conv: nn.Module, conv_outputs: int) -> None:
        super().__init__()
        self.conv = conv
        self.penultimate = nn.Linear(conv_outputs, self.feature_dim)
        self.head = nn.Linear(self.feature_dim, self.classes)
        self.metadata: dict[str, str] = {}

    def features(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3) or x.shape[2] != x.shape[3]:
            raise ValueError(f"{type(self).__name__} needs square images (B, 1 or 3, S, S), got {tuple(x.shape)}")
        x = x.float().mean(dim=1, keepdim=True)
        if x.shape[-1] > self.size:
            x = F.interpolate(x, size=self.size, mode="area")  # exact averaging at a multiple of the size
        elif x.shape[-1] < self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return self.penultimate(self.conv(x).flatten(1))

    def classify(self, features: Tensor) -> Tensor:
        return self.head(F.relu(features))

    def forward(self, x: Tensor) -> Tensor:
        return self.classify(self.features(x))


class DigitsClassifier(Classifier):
    """scikit-learn's 8x8 digits: two 3x3 convolutions, 64 features, 10 logits (97%+ on the test split)."""

    size, feature_dim = 8, 64
    file = "digits_classifier.safetensors"
    sha256 = "cc1bd014632de14792b2c3971c7577b5af97ae2cd7959e3bca2da2b7c1527eed"

    def __init__(self) -> None:
        conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )  # fmt: skip
        super().__init__(conv, 64 * (self.size // 2) ** 2)


class FashionClassifier(Classifier):
    """Fashion-MNIST at 28x28: three 3x3 convolution stages (32, 64, 64 maps), 128 features, 10 logits."""

    size, feature_dim = 28, 128
    file = "fashion_mnist_classifier.safetensors"
    sha256 = "1be315c2b699eb3f8e9b8ade8ad04264c7465c5fe221e38939bf9ac9eb450156"

    def __init__(self) -> None:
        conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 7x7
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),  # 4x4
        )  # fmt: skip
        super().__init__(conv, 64 * 4 * 4)


@cache
def load(kind: type[Classifier]) -> Classifier:
    """The shipped classifier of `kind` in eval mode on the CPU, its weights' sha256 checked; its
    `metadata` holds what training recorded (test accuracy, the real data's own Frechet distance)."""
    data = (resources.files("ganzoo_plugins") / "assets" / kind.file).read_bytes()
    tensors, metadata = ganzoo.load_weights(data, kind.sha256, kind.file)
    classifier = kind()
    classifier.load_state_dict(tensors)
    classifier.metadata = metadata
    return classifier.eval().requires_grad_(False)

"""Sample-quality metrics: mode coverage on 2-D mixtures, exact Wasserstein-1, and digits scores.

A core module: it imports no plugin. Facts about the data (mixture centres, real images)
arrive as arguments, so any dataset that describes itself can be evaluated.

- 2-D mixtures follow the PacGAN / VEEGAN protocol (`mode_metrics`) and add the exact
  Wasserstein-1 distance to real samples (`wasserstein1`).
- Digits use a small classifier shipped with ganzoo (`load_digits_classifier`): class
  coverage, KL of the predicted classes to uniform, confidence and a Fréchet distance
  between classifier features (`digits_metrics`).
"""

from __future__ import annotations

import hashlib
import json
import math
from importlib import resources
from typing import Any

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from scipy.spatial.distance import cdist
from torch import Tensor, nn

from .errors import CheckpointError, MetricError

#: the shipped classifier's weights, inside the ganzoo package
DIGITS_CLASSIFIER_FILE = "digits_classifier.safetensors"
#: sha256 of that file, printed by scripts/train_digits_classifier.py
DIGITS_CLASSIFIER_SHA256 = "cc1bd014632de14792b2c3971c7577b5af97ae2cd7959e3bca2da2b7c1527eed"
#: the digits split rule: this seed permutes the 1797 images, the first 80% train
DIGITS_SPLIT_SEED = 0
DIGITS_TRAIN_FRACTION = 0.8
DIGITS_CLASSES = 10


def _kl_to_uniform(counts: Tensor) -> float:
    """KL(p || uniform) for the histogram `counts` over len(counts) bins, in nats.

    Empty bins contribute nothing (0 log 0 = 0); an empty histogram has no distribution
    to compare and gives +inf, worse than any collapse (a single full bin gives log K).
    """
    total = counts.sum()
    if total == 0:
        return math.inf
    p = counts[counts > 0].double() / total
    return float((p * (p * len(counts)).log()).sum())


def mode_metrics(samples: Tensor, centres: Tensor, std: float) -> dict[str, Any]:
    """Mode coverage of 2-D samples from a mixture of isotropic Gaussians (PacGAN / VEEGAN).

    A sample is high quality when it lies within 3 std of its nearest centre (strictly,
    as in PacGAN's code). A mode is captured when it is the nearest centre of at least
    one high-quality sample. Returns plain Python numbers:

    - "modes": captured modes; "modes_total": K, the number of centres;
    - "high_quality": percentage (0..100) of samples that are high quality;
    - "kl": the reverse KL, KL(p || uniform) in nats, p the histogram of the high-quality
      samples over the K modes (generated against real, the direction of PacGAN's Table 1): 0 when they spread evenly, log K when they all sit on one mode, and
      +inf when there is no high-quality sample at all. Note that +inf is not valid
      strict JSON; `json.dumps` writes it as `Infinity`.
    """
    samples = torch.as_tensor(samples).detach().cpu().double()
    centres = torch.as_tensor(centres).detach().cpu().double()
    distance, nearest = torch.cdist(samples, centres).min(dim=1)
    high_quality = distance < 3 * std
    counts = torch.bincount(nearest[high_quality], minlength=len(centres))
    return {
        "modes": int((counts > 0).sum()),
        "modes_total": len(centres),
        "high_quality": 100.0 * float(high_quality.double().mean()),
        "kl": _kl_to_uniform(counts),
    }


def _as_points(x: Tensor | np.ndarray) -> np.ndarray:
    """(n, ...) -> float64 array (n, d); a 1-D input is n points on a line."""
    points = np.asarray(torch.as_tensor(x).detach().cpu(), dtype=np.float64)
    return points.reshape(len(points), -1)


def wasserstein1(x: Tensor | np.ndarray, y: Tensor | np.ndarray) -> float:
    """Exact Wasserstein-1 distance between two equal-size point clouds with uniform weights.

    Solved exactly on the Euclidean cost matrix in float64 by POT's network simplex
    (`ot.emd2`). At n = 2000 that takes about 2 s of one CPU core even when one cloud has
    collapsed onto a point, where scipy's assignment solver took 20 s for the same value.
    """
    x, y = _as_points(x), _as_points(y)
    if len(x) != len(y):
        raise ValueError(f"wasserstein1 needs equal-size samples, got {len(x)} and {len(y)} points")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"wasserstein1 needs points of one dimension, got {x.shape[1]} and {y.shape[1]}")
    if len(x) == 0:
        raise ValueError("wasserstein1 needs at least one point")
    import ot  # POT: imported here, only the toy metrics need it

    cost = cdist(x, y)
    if not np.isfinite(cost).all():
        raise MetricError("W1 could not be computed: the distances between the samples overflow")
    weights = np.full(len(x), 1.0 / len(x))
    distance, log = ot.emd2(weights, weights, cost, numItermax=10**8, log=True)
    if log.get("result_code") != 1:  # 1: optimal; anything else means the solver gave up
        raise MetricError(f"W1 could not be computed: the exact solver stopped with '{log.get('warning')}'")
    return float(distance)


def frechet_distance(feats_a: Tensor | np.ndarray, feats_b: Tensor | np.ndarray) -> float:
    """Fréchet distance between Gaussian fits of two feature sets (n, d), in float64.

    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)): the FID formula on any features.
    """
    a, b = _as_points(feats_a), _as_points(feats_b)
    if min(len(a), len(b)) < 2:
        raise ValueError("frechet_distance needs at least 2 feature vectors on each side")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():
        # A singular product (fewer samples than features) can defeat sqrtm; a tiny ridge fixes it.
        ridge = 1e-6 * np.eye(len(cov_a))
        root = scipy.linalg.sqrtm((cov_a + ridge) @ (cov_b + ridge))
    if np.iscomplexobj(root):
        # The exact root is real; rounding leaves tiny imaginary parts, large ones mean trouble.
        if np.abs(root.imag).max() > 1e-3 * max(1.0, np.abs(root.real).max()):
            raise ValueError("frechet_distance: the covariance product has no real square root")
        root = root.real
    distance = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root)
    return max(float(distance), 0.0)  # never negative; rounding can dip just below 0


def digits_split(split: str = "all") -> tuple[Tensor, Tensor]:
    """scikit-learn's 1797 8x8 digits as (images float32 (N, 1, 8, 8) in [-1, 1], labels int64 (N,)).

    The split rule, shared by the digits dataset and the classifier: a fixed permutation
    `numpy.random.RandomState(0).permutation(1797)` (the legacy generator, whose stream NumPy
    keeps fixed across versions); its first int(0.8 * 1797) indices
    are "train", the rest "test"; "all" is every image in scikit-learn's order.
    """
    from sklearn.datasets import load_digits  # imported here: slow, and only digits need it

    data = load_digits()
    images = torch.from_numpy(data.images / 16.0 * 2.0 - 1.0).float().unsqueeze(1)
    labels = torch.from_numpy(data.target).long()
    order = np.random.RandomState(DIGITS_SPLIT_SEED).permutation(len(labels))
    n_train = int(DIGITS_TRAIN_FRACTION * len(labels))
    chosen = {"all": np.arange(len(labels)), "train": order[:n_train], "test": order[n_train:]}
    if split not in chosen:
        raise ValueError(f"digits split must be one of {', '.join(chosen)}, got '{split}'")
    index = torch.from_numpy(chosen[split])
    return images[index], labels[index]


class DigitsClassifier(nn.Module):
    """A small CNN for grey 8x8 digits in [-1, 1]: two 3x3 convolutions, 64 features, 10 logits.

    `features` accepts (B, 1 or 3, S, S): colour is averaged to grey and other sizes are
    area-resized to 8x8 (exact area averaging when S is a multiple of 8, e.g. 16 or 32).
    """

    size = 8
    feature_dim = 64

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.penultimate = nn.Linear(64 * (self.size // 2) ** 2, self.feature_dim)
        self.head = nn.Linear(self.feature_dim, DIGITS_CLASSES)

    def features(self, x: Tensor) -> Tensor:
        """The penultimate layer's 64 features, taken before its ReLU (smoother to fit a Gaussian to)."""
        if x.dim() != 4 or x.shape[1] not in (1, 3) or x.shape[2] != x.shape[3]:
            raise ValueError(f"digits classifier needs square images (B, 1 or 3, S, S), got {tuple(x.shape)}")
        x = x.float().mean(dim=1, keepdim=True)
        if x.shape[-1] != self.size:
            x = F.adaptive_avg_pool2d(x, self.size)
        return self.penultimate(self.conv(x).flatten(1))

    def classify(self, features: Tensor) -> Tensor:
        """Class logits (B, 10) from `features`' output."""
        return self.head(F.relu(features))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (B, 10)."""
        return self.classify(self.features(x))


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    # The format: an 8-byte little-endian header length, then a JSON header.
    header_length = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + header_length]).get("__metadata__", {})


def load_digits_classifier() -> DigitsClassifier:
    """The shipped classifier in eval mode on the CPU, its weights verified by sha256.

    Its `metadata` attribute holds what training recorded: "test_accuracy" (percent on
    the test split), "train_samples" and "seed", as strings.
    """
    from safetensors.torch import load

    data = (resources.files("ganzoo") / "assets" / DIGITS_CLASSIFIER_FILE).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != DIGITS_CLASSIFIER_SHA256:
        raise CheckpointError(
            f"{DIGITS_CLASSIFIER_FILE} has sha256 {digest}, expected {DIGITS_CLASSIFIER_SHA256}: "
            "the file is damaged or was replaced"
        )
    classifier = DigitsClassifier()
    classifier.load_state_dict(load(data))
    classifier.metadata = _safetensors_metadata(data)
    return classifier.eval()


@torch.no_grad()
def digits_metrics(samples: Tensor, real: Tensor, classifier: DigitsClassifier | None = None) -> dict[str, Any]:
    """Scores generated digit images against real ones with the digits classifier.

    - "classes": classes predicted for at least one sample (a class is covered like a
      mode is captured); "classes_total": 10;
    - "kl": KL(p || uniform) in nats of the predicted-class histogram, p normalised over
      the samples (the same convention as `mode_metrics`; finite for any non-empty sample);
    - "confidence": mean max-softmax probability;
    - "frechet": Fréchet distance between the classifier features of real and samples.
    """
    classifier = classifier if classifier is not None else load_digits_classifier()
    device = next(classifier.parameters()).device
    fake_features = classifier.features(samples.detach().to(device))
    real_features = classifier.features(real.detach().to(device))
    probabilities = classifier.classify(fake_features).softmax(dim=1)
    confidence, predicted = probabilities.max(dim=1)
    counts = torch.bincount(predicted.cpu(), minlength=DIGITS_CLASSES)
    return {
        "classes": int((counts > 0).sum()),
        "classes_total": DIGITS_CLASSES,
        "kl": _kl_to_uniform(counts),
        "confidence": float(confidence.mean()),
        "frechet": frechet_distance(real_features, fake_features),
    }


def balanced_labels(n: int, classes: int) -> Tensor:
    """n labels, each class as often as n allows, in class order: what a conditional generator is scored on."""
    return torch.arange(n) * classes // n


def _draw(generator: nn.Module, n: int, seed: int) -> tuple[Tensor, Tensor | None]:
    """n samples from a ganzoo.Generator, on the CPU, from latents fixed by the seed, and the
    labels they were drawn for (balanced over the classes) if the generator is conditional."""
    rng = torch.Generator(device=generator.device).manual_seed(seed)
    classes = getattr(generator, "classes", 0)
    labels = balanced_labels(n, classes) if classes else None
    samples = generator.sample(n, generator=rng, **({} if labels is None else {"labels": labels}))
    samples = samples.detach().float().cpu()
    if not torch.isfinite(samples).all():
        raise MetricError("no metric can be computed: the generator made NaN or infinite samples")
    return samples, labels


def _per_class(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """A conditional generator's summary of the per-class `key` (a %): over all samples and its worst class."""
    return {key: sum(r[key] for r in rows) / len(rows), f"{key}_worst": min(r[key] for r in rows)}


def toy_class_rows(samples: Tensor, labels: Tensor, centres: Tensor, std: float) -> list[dict[str, Any]]:
    """Per class k of a mixture (mode k): the % of its samples whose nearest centre is k, and the %
    of them within 3 std of it (high quality, as in `mode_metrics`)."""
    distance, nearest = torch.cdist(samples.double(), centres.double()).min(dim=1)
    rows = []
    for k in range(len(centres)):
        own = nearest[labels == k] == k
        good = own & (distance[labels == k] < 3 * std)
        rows.append({"class": k, "own_mode": 100.0 * float(own.double().mean()), "high_quality": 100.0 * float(good.double().mean())})
    return rows


def evaluate_toy(
    generator: nn.Module, description: dict[str, Any], n: int = 2500, n_w1: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """`mode_metrics` on n samples, plus "w1": exact W1 between n_w1 of them and n_w1 real samples.

    `description` is a mixture's `describe()`: {"centres": Tensor (K, 2), "std": float}.
    The real samples are drawn here from those facts, so the result depends on the seed only.
    """
    if not 0 < n_w1 <= n:
        raise ValueError(f"n_w1 must be in 1..n={n}, got {n_w1}")
    centres = torch.as_tensor(description["centres"]).detach().cpu().float()
    std = float(description["std"])
    fake, labels = _draw(generator, n, seed)
    rng = torch.Generator().manual_seed(seed)
    real = centres[torch.randint(len(centres), (n_w1,), generator=rng)] + std * torch.randn(n_w1, 2, generator=rng)
    # A conditional generator's samples come in class order: W1 takes a subset that holds every class.
    subset = fake if labels is None else fake[torch.randperm(n, generator=torch.Generator().manual_seed(seed))]
    metrics = {**mode_metrics(fake, centres, std), "w1": wasserstein1(subset[:n_w1], real)}
    if labels is None:
        return metrics
    if generator.classes != len(centres):
        raise MetricError(f"the generator has {generator.classes} classes, the mixture {len(centres)} modes")
    rows = toy_class_rows(fake, labels, centres, std)
    return {**metrics, **_per_class(rows, "own_mode"), "per_class": rows}


@torch.no_grad()
def evaluate_digits(
    generator: nn.Module, real_images: Tensor, n: int | None = None, seed: int = 0,
    classifier: DigitsClassifier | None = None, real_labels: Tensor | None = None,
) -> dict[str, Any]:
    """`digits_metrics` on n generated images (default: as many as real images) against real ones;
    for a conditional generator, also per class: the classifier's accuracy on the class's samples
    (it predicts the class asked for) and their Frechet distance to the real images of the class."""
    fake, labels = _draw(generator, n or len(real_images), seed)
    classifier = classifier if classifier is not None else load_digits_classifier()
    metrics = digits_metrics(fake, real_images, classifier)
    if labels is None:
        return metrics
    if generator.classes != DIGITS_CLASSES:
        raise MetricError(f"the generator has {generator.classes} classes, the digits {DIGITS_CLASSES}")
    device = next(classifier.parameters()).device
    fake_features, real_features = classifier.features(fake.to(device)), classifier.features(real_images.to(device))
    predicted = classifier.classify(fake_features).argmax(dim=1).cpu()
    rows = [
        {
            "class": k,
            "accuracy": 100.0 * float((predicted[labels == k] == k).double().mean()),
            "frechet": frechet_distance(real_features[real_labels == k], fake_features[labels == k]),
        }
        for k in range(DIGITS_CLASSES)
    ]
    return {**metrics, **_per_class(rows, "accuracy"), "per_class": rows}

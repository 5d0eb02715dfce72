"""Sample-quality metrics that datasets' evaluations are built from: mode coverage on 2-D
mixtures, exact Wasserstein-1, Frechet distances and a classifier's scores.

A core module: it imports no plugin and names no dataset. Facts about the data (mixture
centres, real images, a classifier of its classes) arrive as arguments, so any dataset can
build its `Dataset.evaluate` from these.

- 2-D mixtures follow the PacGAN / VEEGAN protocol (`mode_metrics`) and add the exact
  Wasserstein-1 distance to real samples (`wasserstein1`): `toy_metrics`.
- Image datasets with a classifier of their own (digits, Fashion-MNIST) get class coverage,
  KL of the predicted classes to uniform, confidence and a Frechet distance between classifier
  features: `classifier_metrics`; `load_weights` checks a shipped classifier's sha256.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial.distance import cdist
from torch import Tensor, nn

from .errors import CheckpointError, MetricError

def kl_to_uniform(counts: Tensor) -> float:
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
        "kl": kl_to_uniform(counts),
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
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    # tr (S_a S_b)^(1/2) = tr (R S_b R)^(1/2) with R = S_a^(1/2): symmetric matrices and real
    # eigenvalues, exact for singular covariances too (a classifier's dead features, n < d)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(values.clip(min=0))) @ vectors.T
    trace_root = np.sqrt(np.linalg.eigvalsh(root_a @ cov_b @ root_a).clip(min=0)).sum()
    distance = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root
    return max(float(distance), 0.0)  # never negative; rounding can dip just below 0


def load_weights(data: bytes, sha256: str, name: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The tensors and metadata of safetensors `data` (a shipped classifier's, say), after its
    sha256 is checked against `sha256`; `name` says what the file is in the error."""
    from safetensors.torch import load

    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise CheckpointError(f"{name} has sha256 {digest}, expected {sha256}: the file is damaged or was replaced")
    return load(data), _safetensors_metadata(data)


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    # The format: an 8-byte little-endian header length, then a JSON header.
    header_length = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + header_length]).get("__metadata__", {})


@torch.no_grad()
def classifier_metrics(
    classifier: nn.Module, fake: Tensor, real: Tensor, labels: Tensor | None = None, real_labels: Tensor | None = None,
    batch_size: int = 1000, real_features: Tensor | None = None,
) -> dict[str, Any]:
    """Scores of generated images against real ones by a classifier of the data's classes, which
    has `features(x)` (B, F) and `classify(features)` (B, K logits):

    - "classes": classes predicted for at least one sample (a class is covered like a mode is
      captured); "classes_total": K;
    - "kl": KL(p || uniform) in nats of the predicted-class histogram (as in `mode_metrics`);
    - "confidence": mean max-softmax probability;
    - "frechet": Frechet distance between the classifier features of real images and samples: a
      domain classifier's Frechet distance, not FID (whose features are Inception's);
    - with `labels` (the class each sample was drawn for) and `real_labels`, per class: the
      classifier's accuracy on the class's samples and their Frechet distance to the class's real images.

    `real_features`, when given, are `features(real)` computed before (a dataset may keep them).
    """
    device = next(classifier.parameters()).device

    def run(images: Tensor) -> Tensor:
        return torch.cat([classifier.features(chunk.to(device)) for chunk in images.split(batch_size)]).cpu()

    fake_features = run(fake)
    real_features = run(real) if real_features is None else real_features
    probabilities = torch.cat([classifier.classify(h.to(device)).softmax(1).cpu() for h in fake_features.split(batch_size)])
    confidence, predicted = probabilities.max(dim=1)
    classes = probabilities.shape[1]
    counts = torch.bincount(predicted, minlength=classes)
    metrics = {
        "classes": int((counts > 0).sum()),
        "classes_total": classes,
        "kl": kl_to_uniform(counts),
        "confidence": float(confidence.mean()),
        "frechet": frechet_distance(real_features, fake_features),
    }
    if labels is None:
        return metrics
    if real_labels is None:
        raise ValueError("classifier_metrics: per-class scores need the real images' labels too")
    rows = [
        {
            "class": k,
            "accuracy": 100.0 * float((predicted[labels == k] == k).double().mean()),
            "frechet": frechet_distance(real_features[real_labels == k], fake_features[labels == k]),
        }
        for k in range(classes)
    ]
    return {**metrics, **_per_class(rows, "accuracy"), "per_class": rows}


def balanced_labels(n: int, classes: int) -> Tensor:
    """n labels, each class as often as n allows, in class order: what a conditional generator is scored on."""
    return torch.arange(n) * classes // n


def draw(generator: nn.Module, n: int, seed: int) -> tuple[Tensor, Tensor | None]:
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


def toy_metrics(samples: Tensor, labels: Tensor | None, centres: Tensor, std: float, seed: int = 0, n_w1: int = 2000) -> dict[str, Any]:
    """`mode_metrics` of 2-D samples of a mixture of isotropic Gaussians, plus "w1": exact W1
    between n_w1 of them and n_w1 real points drawn here from (centres, std) and `seed`; with the
    classes the samples were drawn for (`labels`, one per centre), per-class figures too."""
    n = len(samples)
    if not 0 < n_w1 <= n:
        raise ValueError(f"n_w1 must be in 1..n={n}, got {n_w1}")
    centres = torch.as_tensor(centres).detach().cpu().float()
    rng = torch.Generator().manual_seed(seed)
    real = centres[torch.randint(len(centres), (n_w1,), generator=rng)] + std * torch.randn(n_w1, 2, generator=rng)
    # A conditional generator's samples come in class order: W1 takes a subset that holds every class.
    subset = samples if labels is None else samples[torch.randperm(n, generator=torch.Generator().manual_seed(seed))]
    metrics = {**mode_metrics(samples, centres, std), "w1": wasserstein1(subset[:n_w1], real)}
    if labels is None:
        return metrics
    rows = toy_class_rows(samples, labels, centres, std)
    return {**metrics, **_per_class(rows, "own_mode"), "per_class": rows}

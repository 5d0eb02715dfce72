"""Metrics on inputs whose answers are known, and the shipped digits classifier."""

import hashlib
import math
from importlib import resources

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ganzoo
from ganzoo import metrics
from ganzoo.errors import CheckpointError
from ganzoo_plugins import classifiers
from ganzoo_plugins.digits import digits_split

K = 8
STD = 0.01
ANGLES = torch.arange(K, dtype=torch.float64) * (2 * math.pi / K)
CENTRES = torch.stack([ANGLES.cos(), ANGLES.sin()], 1)  # a ring of 8, built here: tests need no plugin


def near(centre: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """n points within 1.5 std of a centre (each coordinate off by at most 1 std)."""
    offsets = 2 * torch.rand(n, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) - 1
    return centre + STD * offsets


FAR_AWAY = torch.full((100, 2), 10.0, dtype=torch.float64)


# --- mode_metrics --------------------------------------------------------------------------


def test_every_centre_hit_exactly_captures_all_modes_evenly():
    result = metrics.mode_metrics(CENTRES.repeat(5, 1), CENTRES, STD)
    assert (result["modes"], result["modes_total"], result["high_quality"]) == (K, K, 100.0)
    assert result["kl"] == pytest.approx(0.0, abs=1e-12)


def test_one_mode_only_gives_kl_log_k():
    result = metrics.mode_metrics(near(CENTRES[3], 100), CENTRES, STD)
    assert (result["modes"], result["high_quality"]) == (1, 100.0)
    assert result["kl"] == pytest.approx(math.log(K))


def test_points_far_from_every_centre_capture_nothing():
    result = metrics.mode_metrics(FAR_AWAY, CENTRES, STD)
    assert (result["modes"], result["high_quality"], result["kl"]) == (0, 0.0, math.inf)


def test_half_on_two_centres_half_far_away():
    samples = torch.cat([near(CENTRES[0], 50), near(CENTRES[4], 50, seed=1), FAR_AWAY])
    result = metrics.mode_metrics(samples, CENTRES, STD)
    assert (result["modes"], result["high_quality"]) == (2, 50.0)
    assert result["kl"] == pytest.approx(math.log(K / 2))


@pytest.mark.parametrize("stds_away, high_quality", [(2.5, 100.0), (3.5, 0.0)])
def test_high_quality_means_within_three_std(stds_away, high_quality):
    sample = CENTRES[2] + torch.tensor([[stds_away * STD, 0.0]], dtype=torch.float64)
    assert metrics.mode_metrics(sample, CENTRES, STD)["high_quality"] == high_quality


def test_mode_metrics_returns_plain_python_numbers():
    result = metrics.mode_metrics(CENTRES.float(), CENTRES, STD)
    assert [type(result[key]) for key in ("modes", "modes_total", "high_quality", "kl")] == [int, int, float, float]


# --- wasserstein1 --------------------------------------------------------------------------


def cloud(n: int, seed: int, dim: int = 2) -> torch.Tensor:
    return torch.randn(n, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def test_identical_clouds_are_at_distance_zero_in_any_order():
    x = cloud(300, 0)
    assert metrics.wasserstein1(x, x[torch.randperm(300)]) == pytest.approx(0.0, abs=1e-12)


def test_a_translate_is_at_the_length_of_the_translation():
    x = cloud(300, 0)
    assert metrics.wasserstein1(x, x + torch.tensor([3.0, -4.0], dtype=torch.float64)) == pytest.approx(5.0)


def test_points_on_a_line_match_in_sorted_order():
    s, t = cloud(200, 1, dim=1)[:, 0], 2 + cloud(200, 2, dim=1)[:, 0]
    expected = (s.sort().values - t.sort().values).abs().mean().item()
    direction = torch.tensor([0.6, 0.8], dtype=torch.float64)
    assert metrics.wasserstein1(s[:, None] * direction, t[:, None] * direction) == pytest.approx(expected)
    assert metrics.wasserstein1(s, t) == pytest.approx(expected)  # 1-D input: points on a line


def test_wasserstein1_rejects_unequal_sizes_and_dimensions():
    with pytest.raises(ValueError, match="equal-size"):
        metrics.wasserstein1(cloud(10, 0), cloud(11, 1))
    with pytest.raises(ValueError, match="dimension"):
        metrics.wasserstein1(cloud(10, 0), cloud(10, 1, dim=3))


# --- frechet_distance ----------------------------------------------------------------------


def gaussian_features(mean: np.ndarray, cov: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n points whose sample mean and covariance are exactly `mean` and `cov`."""
    z = np.random.default_rng(seed).standard_normal((n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # sample covariance = I
    return mean + z @ np.linalg.cholesky(cov).T


def test_frechet_distance_of_identical_features_is_zero():
    features = cloud(500, 0, dim=16)
    assert metrics.frechet_distance(features, features) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_matches_the_closed_form_for_2d_gaussians():
    mean_a, mean_b = np.array([0.0, 1.0]), np.array([2.0, -1.0])
    cov_a, cov_b = np.array([[2.0, 0.5], [0.5, 1.0]]), np.array([[1.0, -0.3], [-0.3, 0.5]])
    # For 2x2 matrices, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)); the two covariances do not commute.
    product = cov_a @ cov_b
    trace_root = math.sqrt(np.trace(product) + 2 * math.sqrt(np.linalg.det(product)))
    expected = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root
    a, b = gaussian_features(mean_a, cov_a, 1000, 0), gaussian_features(mean_b, cov_b, 1000, 1)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_copes_with_fewer_samples_than_features():
    assert math.isfinite(metrics.frechet_distance(cloud(20, 0, dim=64), cloud(20, 1, dim=64)))


# --- the digits split and the shipped classifiers --------------------------------------------


@pytest.fixture(scope="module")
def classifier() -> classifiers.DigitsClassifier:
    return classifiers.load(classifiers.DigitsClassifier)


@pytest.fixture(scope="module")
def test_split() -> tuple[torch.Tensor, torch.Tensor]:
    return digits_split("test")


def test_digits_split_is_a_fixed_80_20_partition():
    images, labels = digits_split("all")
    train_images, _ = digits_split("train")
    test_images, test_labels = digits_split("test")
    assert images.shape == (1797, 1, 8, 8) and images.dtype == torch.float32
    assert (images.min(), images.max()) == (-1.0, 1.0)
    assert (len(train_images), len(test_images)) == (1437, 360)
    order = np.random.RandomState(0).permutation(1797)
    assert torch.equal(test_labels, labels[order[1437:]])
    with pytest.raises(ValueError, match="split"):
        digits_split("validation")


@pytest.mark.parametrize("kind", [classifiers.DigitsClassifier, classifiers.FashionClassifier])
def test_shipped_classifiers_match_their_sha256_and_stay_small(kind):
    data = (resources.files("ganzoo_plugins") / "assets" / kind.file).read_bytes()
    assert hashlib.sha256(data).hexdigest() == kind.sha256
    assert len(data) < 1_000_000  # well under 2 MB, in every wheel
    loaded = classifiers.load(kind)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())


def test_a_wrong_sha256_is_refused(monkeypatch):
    monkeypatch.setattr(classifiers.DigitsClassifier, "sha256", "0" * 64)
    classifiers.load.cache_clear()
    with pytest.raises(CheckpointError, match="sha256"):
        classifiers.load(classifiers.DigitsClassifier)
    classifiers.load.cache_clear()


def test_shipped_classifier_keeps_its_recorded_accuracy(classifier, test_split):
    images, labels = test_split
    with torch.no_grad():
        accuracy = 100.0 * (classifier(images).argmax(1) == labels).double().mean().item()
    assert accuracy >= float(classifier.metadata["test_accuracy"]) - 0.5
    assert accuracy >= 97.0


def test_larger_and_colour_images_are_area_resized(classifier, test_split):
    images = test_split[0][:20]
    larger_colour = F.interpolate(images, scale_factor=4, mode="nearest").repeat(1, 3, 1, 1)  # 3x32x32
    with torch.no_grad():
        assert classifier.features(images).shape == (20, 64)
        torch.testing.assert_close(classifier.features(larger_colour), classifier.features(images))


def test_classifier_metrics_of_real_images_against_themselves(classifier, test_split):
    images, labels = test_split
    result = ganzoo.classifier_metrics(classifier, images, images)
    p = torch.bincount(labels, minlength=10).double() / len(labels)
    label_kl = (p * (10 * p).log()).sum().item()  # the test split is only roughly balanced
    assert (result["classes"], result["classes_total"]) == (10, 10)
    assert result["kl"] == pytest.approx(label_kl, abs=0.01) and result["kl"] < 0.05
    assert result["confidence"] > 0.9
    assert result["frechet"] == pytest.approx(0.0, abs=1e-6)


def test_classifier_metrics_of_one_class_cover_one_class(classifier, test_split):
    images, labels = test_split
    result = ganzoo.classifier_metrics(classifier, images[labels == 0], images)
    assert result["classes"] == 1
    assert result["kl"] == pytest.approx(math.log(10))
    assert result["frechet"] > 10.0


def test_classifier_metrics_per_class_need_the_real_labels(classifier, test_split):
    images, labels = test_split
    per_class = ganzoo.classifier_metrics(classifier, images, images, labels, labels)
    assert per_class["accuracy"] >= 97.0 and [r["class"] for r in per_class["per_class"]] == list(range(10))
    assert all(r["frechet"] == pytest.approx(0.0, abs=1e-6) for r in per_class["per_class"])
    with pytest.raises(ValueError, match="real images' labels"):
        ganzoo.classifier_metrics(classifier, images, images, labels)


# --- the datasets' evaluations with generators that replay known points -----------------------


class Replay(ganzoo.Generator):
    """Outputs one of a fixed set of points, chosen by the largest latent coordinate."""

    def __init__(self, points: torch.Tensor) -> None:
        super().__init__(ganzoo.GeneratorConfig(sample_shape=tuple(points.shape[1:]), latent_dim=len(points)))
        self.points = nn.Parameter(points.float(), requires_grad=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.points[z.argmax(dim=1)]


def test_toy_metrics_are_deterministic_and_see_every_mode():
    every, one = (Replay(points).sample(400, torch.Generator().manual_seed(3)) for points in (CENTRES, CENTRES[:1]))
    result = metrics.toy_metrics(every, None, CENTRES, STD, seed=3, n_w1=300)
    assert result == metrics.toy_metrics(every, None, CENTRES, STD, seed=3, n_w1=300)
    assert (result["modes"], result["high_quality"]) == (K, 100.0)
    collapsed = metrics.toy_metrics(one, None, CENTRES, STD, seed=3, n_w1=300)
    assert collapsed["modes"] == 1 and collapsed["w1"] > 5 * result["w1"]
    with pytest.raises(ValueError, match="n_w1"):
        metrics.toy_metrics(every[:100], None, CENTRES, STD, n_w1=200)


def test_the_digits_evaluation_tells_replayed_real_images_from_one_replayed_class(test_split):
    images, labels = test_split
    data = ganzoo.create_dataset("digits", split="test")
    every_class = ganzoo.evaluate(Replay(images), "digits:split=test")
    one_class = ganzoo.evaluate(Replay(images[labels == 0]), "digits:split=test")
    assert data.evaluation_samples == 360
    assert (every_class["classes"], one_class["classes"]) == (10, 1)
    assert every_class["frechet"] < 0.05 * one_class["frechet"]


def test_a_headline_leaves_out_classes_the_classifier_is_unsure_of():
    """Noise gets a class from the classifier like any image: 10/10 classes meant nothing for it."""
    from ganzoo.evaluation import headline

    noisy = {"classes": 10, "classes_total": 10, "kl": 0.39, "confidence": 0.67, "frechet": 173.7}
    assert headline(noisy) == "classifier Frechet 174, classifier unsure (mean confidence 0.67)"
    assert headline({**noisy, "confidence": 0.84, "frechet": 2.43}) == "10/10 classes, classifier Frechet 2.43"

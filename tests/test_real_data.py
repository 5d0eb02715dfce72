"""The real Fashion-MNIST: Debian's package (dataset-fashion-mnist) installs the official files, and
.ci/run installs it where apt-get exists. Skipped, with the reason, where the files are absent."""

import gzip
import shutil
from pathlib import Path

import pytest
import torch

import ganzoo
from ganzoo.cli import main

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
pytestmark = pytest.mark.skipif(
    not all((DEBIAN / f"{name}.gz").is_file() for name in FILES),
    reason=f"the real Fashion-MNIST is not in {DEBIAN} (apt-get install dataset-fashion-mnist)",
)


@pytest.fixture(scope="module")
def train_split():
    return ganzoo.create_dataset("fashion-mnist").tensors()


def test_the_default_root_finds_debians_files_and_checks_their_content(train_split):
    images, labels = train_split
    assert images.shape == (60_000, 1, 28, 28) and images.min() == -1 and images.max() == 1
    assert torch.bincount(labels).tolist() == [6000] * 10  # the official train split: 6,000 of each class
    test_images, test_labels = ganzoo.create_dataset("fashion-mnist", split="test").tensors()
    assert test_images.shape == (10_000, 1, 28, 28) and torch.bincount(test_labels).tolist() == [1000] * 10


@pytest.mark.parametrize("layout", ["torchvision", "root-of-gz"])
def test_the_other_published_layouts_read_the_same_images(tmp_path, train_split, layout):
    """torchvision's unpacked ROOT/FashionMNIST/raw/, and a root that holds the .gz files themselves;
    Debian recompressed its .gz files, so the published checksums are checked on the unpacked bytes."""
    folder = tmp_path / "FashionMNIST" / "raw" if layout == "torchvision" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES[:2]:
        if layout == "torchvision":
            with gzip.open(DEBIAN / f"{name}.gz") as packed, (folder / name).open("wb") as out:
                shutil.copyfileobj(packed, out)
        else:
            shutil.copyfile(DEBIAN / f"{name}.gz", folder / f"{name}.gz")
    images, labels = ganzoo.create_dataset("fashion-mnist", root=str(tmp_path)).tensors()
    assert torch.equal(images, train_split[0]) and torch.equal(labels, train_split[1])


def test_the_main_image_command_trains_at_the_native_size(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--loss", "nonsaturating", "--data", "fashion-mnist", "--generator", "dcgan", "--critic",
                 "dcgan", "--steps", "3", "--quiet", "--out", str(run)]) == 0  # fmt: skip
    generator = ganzoo.load_generator(run / "generator.safetensors")
    assert generator.sample_shape == (1, 28, 28)
    metrics = ganzoo.evaluate(generator, "fashion-mnist")
    assert {"classes", "kl", "confidence", "frechet", "frechet_real"} <= metrics.keys()
    assert metrics["frechet"] > 10 * metrics["frechet_real"]  # three steps: far from real clothes


def test_a_conditional_resnet_sngan_with_diffaugment_trains_and_is_scored_per_class(tmp_path):
    run = tmp_path / "run"
    args = ["train", "--loss", "hinge", "--constraint", "spectral-norm", "--data", "fashion-mnist", "--generator",
            "resnet:width=16", "--critic", "resnet:width=16", "--augment", "diffaugment", "--conditional",
            "--batch-size", "16", "--steps", "2", "--quiet", "--out", str(run)]  # fmt: skip
    assert main(args) == 0
    metrics = ganzoo.evaluate(ganzoo.load_generator(run / "generator.safetensors"), "fashion-mnist")
    assert len(metrics["per_class"]) == 10 and 0 <= metrics["accuracy"] <= 100


def test_the_real_data_own_frechet_is_small_beside_a_generators(train_split):
    """The evaluator's scale: real train images against the test split score far below noise."""
    from ganzoo_plugins import classifiers

    classifier = classifiers.load(classifiers.FashionClassifier)
    test_images, _ = ganzoo.create_dataset("fashion-mnist", split="test").tensors()
    noise = torch.rand(2000, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    real = ganzoo.classifier_metrics(classifier, train_split[0][:2000], test_images[:2000])
    noisy = ganzoo.classifier_metrics(classifier, noise, test_images[:2000])
    assert noisy["frechet"] > 20 * real["frechet"]
    assert float(classifier.metadata["test_accuracy"]) >= 90.0

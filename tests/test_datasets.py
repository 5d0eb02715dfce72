import itertools
import math
import re

import pytest
import sklearn.datasets
import torch
from PIL import Image

import ganzoo

CPU = torch.device("cpu")


def test_ring8_is_the_pacgan_ring():
    ring = ganzoo.create_dataset("ring8")
    angles = [2 * math.pi * i / 8 for i in range(8)]
    expected = torch.tensor([[math.cos(a), math.sin(a)] for a in angles])
    facts = ring.describe()
    assert torch.allclose(facts["centres"], expected, atol=1e-7)
    assert facts["std"] == 0.01
    assert ring.sample_shape == (2,)


def test_grid25_is_the_pacgan_grid():
    grid = ganzoo.create_dataset("grid25")
    facts = grid.describe()
    ticks = (-4.0, -2.0, 0.0, 2.0, 4.0)
    assert sorted(map(tuple, facts["centres"].tolist())) == sorted(itertools.product(ticks, ticks))
    assert facts["std"] == 0.05


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_mixture_samples_cluster_around_the_centres(name):
    torch.manual_seed(0)
    data = ganzoo.create_dataset(name)
    centres, std = data.describe()["centres"], data.describe()["std"]
    points = next(data.batches(20_000, CPU))
    assert points.shape == (20_000, 2) and points.dtype == torch.float32
    nearest = torch.cdist(points, centres).argmin(1)
    offsets = points - centres[nearest]
    assert offsets.std().item() == pytest.approx(std, rel=0.03)
    assert offsets.mean().abs().max().item() < std / 10
    assert nearest.bincount(minlength=len(centres)).min() > 20_000 / len(centres) * 0.8  # equal weights


@pytest.mark.parametrize("name", ["ring8", "grid25", "digits"])
def test_batches_follow_the_global_rng(name):
    data = ganzoo.create_dataset(name)
    torch.manual_seed(3)
    first = next(data.batches(16, CPU))
    torch.manual_seed(3)
    assert torch.equal(next(data.batches(16, CPU)), first)


@pytest.mark.parametrize("size", [8, 16, 32])
def test_digits_shapes_and_range(size):
    digits = ganzoo.create_dataset("digits", size=size)
    batch = next(digits.batches(32, CPU))
    assert digits.sample_shape == (1, size, size)
    assert batch.shape == (32, 1, size, size) and batch.dtype == torch.float32
    images, labels = digits.tensors()
    assert images.shape == (1797, 1, size, size) and labels.shape == (1797,)
    assert images.min() >= -1 and images.max() <= 1
    assert set(labels.tolist()) == set(range(10))
    assert digits.describe() == {"classes": 10}


def test_digits_pixels_are_scaled_from_0_16():
    images, _ = ganzoo.create_dataset("digits").tensors()
    raw = torch.tensor(sklearn.datasets.load_digits().images, dtype=torch.float32)
    assert torch.equal(images.squeeze(1), raw / 8 - 1)


def test_digits_shape_is_known_without_loading(monkeypatch):
    def no_loading():
        raise AssertionError("the data was loaded")

    monkeypatch.setattr(sklearn.datasets, "load_digits", no_loading)
    assert ganzoo.create_dataset("digits", size=16, split="test").sample_shape == (1, 16, 16)


def test_digits_split_is_a_fixed_80_20_partition():
    def rows(split):
        images, labels = ganzoo.create_dataset("digits", split=split).tensors()
        return torch.cat([images.flatten(1), labels[:, None].float()], 1)

    train, test, everything = rows("train"), rows("test"), rows("all")
    assert (len(train), len(test)) == (1437, 360)
    # As multisets of (image, label) rows, train + test is the whole set: the split partitions it.
    together = torch.unique(torch.cat([train, test]), dim=0, return_counts=True)
    whole = torch.unique(everything, dim=0, return_counts=True)
    assert all(torch.equal(a, b) for a, b in zip(together, whole))
    assert torch.equal(rows("train"), train)


def test_digits_rejects_other_sizes():
    with pytest.raises(ganzoo.ConfigError, match=r"dataset 'digits': option 'size': must be one of 8, 16, 32"):
        ganzoo.create_dataset("digits", size=12)


@pytest.fixture
def image_folder(tmp_path):
    (tmp_path / "nested").mkdir()
    Image.new("RGB", (40, 30), (255, 0, 0)).save(tmp_path / "wide.png")
    Image.new("L", (20, 50), 128).save(tmp_path / "nested" / "tall.png")
    Image.new("RGB", (16, 16), (0, 0, 255)).save(tmp_path / "square.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


@pytest.mark.parametrize("channels", [1, 3])
def test_folder_yields_square_batches_in_range(image_folder, channels):
    data = ganzoo.create_dataset("folder", path=image_folder, size=12, channels=channels)
    assert data.sample_shape == (channels, 12, 12)
    batches = data.batches(2, CPU)
    for batch in itertools.islice(batches, 4):  # 3 images, drop_last: one batch per epoch, epochs cycle
        assert batch.shape == (2, channels, 12, 12) and batch.dtype == torch.float32
        assert batch.min() >= -1 and batch.max() <= 1


def test_folder_crops_the_centre(tmp_path):
    image = Image.new("RGB", (24, 8), (255, 0, 0))
    image.paste((0, 255, 0), (8, 0, 16, 8))  # the middle square is green
    image.save(tmp_path / "strip.png")
    (batch,) = itertools.islice(ganzoo.create_dataset("folder", path=tmp_path, size=8).batches(1, CPU), 1)
    assert torch.equal(batch[0], torch.tensor([-1.0, 1.0, -1.0]).view(3, 1, 1).expand(3, 8, 8))


def test_missing_folder_is_a_config_error(tmp_path):
    with pytest.raises(ganzoo.ConfigError, match=r"dataset 'folder': option 'path': no folder at .*nowhere"):
        ganzoo.create_dataset("folder", path=tmp_path / "nowhere")


def test_folder_without_images_is_a_config_error(tmp_path):
    (tmp_path / "readme.txt").write_text("no pictures here")
    with pytest.raises(ganzoo.ConfigError, match=r"option 'path': no images .* under " + re.escape(str(tmp_path))):
        ganzoo.create_dataset("folder", path=tmp_path)


def test_folder_path_is_required():
    with pytest.raises(ganzoo.ConfigError, match=r"^dataset 'folder': option 'path' is required$"):
        ganzoo.create_dataset("folder")


def test_unreadable_image_names_the_file(image_folder):
    (image_folder / "broken.png").write_bytes(b"not a png at all")
    data = ganzoo.create_dataset("folder", path=image_folder, size=8)
    with pytest.raises(ganzoo.UsageError, match=r"cannot read image .*broken\.png") as caught:
        next(data.batches(4, CPU))  # a batch of every image: the broken one is always in it
    assert "\n" not in str(caught.value)


def test_folder_smaller_than_a_batch_is_a_usage_error(image_folder):
    with pytest.raises(ganzoo.UsageError, match="holds 3 images, fewer than one batch of 8"):
        next(ganzoo.create_dataset("folder", path=image_folder).batches(8, CPU))

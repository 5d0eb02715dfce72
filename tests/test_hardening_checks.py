"""Hardening of the image surfaces and of run checks: the real-features cache keyed on the data
itself and checked on read, non-finite samples refused, checks said before a run starts, and
settings that were silently accepted. Each case failed before its fix."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import ganzoo
from ganzoo import image_metrics
from ganzoo.cli import main
from ganzoo.testing import channel_statistics_extractor
from test_image_datasets import write_cifar

stand_in = channel_statistics_extractor()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(image_metrics, "inception", lambda device, quiet=False: stand_in)
    return tmp_path / "cache" / "real-features"


def image_folder(path, value: int, n: int = 12):
    path.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((16, 16, 3), (value + i) % 256, np.uint8)).save(path / f"{i}.png")


def generator():
    torch.manual_seed(0)
    return ganzoo.create_generator("dcgan", sample_shape=(3, 16, 16), width=8).eval()


def test_the_same_spec_text_in_two_folders_is_two_datasets(cache, tmp_path, monkeypatch, capsys):
    for name, value in (("a", 0), ("b", 200)):
        image_folder(tmp_path / name / "imgs", value)
    scores = []
    for name in ("a", "b"):
        monkeypatch.chdir(tmp_path / name)
        scores.append(ganzoo.evaluate(generator(), "folder:path=imgs,size=16", metrics=["kid"], n=12)["kid"])
    assert "reusing" not in capsys.readouterr().err and scores[0] != scores[1]
    assert len(list(cache.iterdir())) == 2
    os.utime(tmp_path / "b" / "imgs" / "3.png", ns=(1, 1))  # a file changed: computed anew
    ganzoo.evaluate(generator(), "folder:path=imgs,size=16", metrics=["kid"], n=12)
    assert "reusing" not in capsys.readouterr().err and len(list(cache.iterdir())) == 3


@pytest.mark.parametrize(
    ("tensors", "needle"),
    [
        ({"features": torch.full((12, 6), float("nan"), dtype=torch.float64)}, "NaN or infinite"),
        ({"features": torch.zeros(12, 5, dtype=torch.float64)}, "5 dimensions, not 6"),
        ({"features": torch.zeros(12, dtype=torch.float64)}, "are (12,) of torch.float64, not (12, dims)"),
        ({"features": torch.zeros(12, 6, dtype=torch.float16)}, "of torch.float16"),
        ({}, "its features are nothing"),
    ],
)
def test_a_damaged_cache_file_is_one_line(cache, tmp_path, tensors, needle):
    write_cifar(tmp_path)
    spec = f"cifar10:root={tmp_path},size=16,verify=false"
    ganzoo.evaluate(generator(), spec, metrics=["fid"], n=12)
    (path,) = cache.iterdir()
    from ganzoo.checkpoint import read_metadata

    metadata = read_metadata(path, "ganzoo.real-features")
    save_file({"logits": torch.zeros(12, 10, dtype=torch.float64), **tensors}, path, metadata=metadata)
    with pytest.raises(ganzoo.CheckpointError, match="delete it to compute them again") as caught:
        ganzoo.evaluate(generator(), spec, metrics=["fid"], n=12)
    assert needle in str(caught.value)
    path.unlink()
    path.mkdir()  # a folder where the file belongs
    with pytest.raises(ganzoo.CheckpointError, match="is a folder, not a file"):
        ganzoo.evaluate(generator(), spec, metrics=["fid"], n=12)


class NaNs(ganzoo.Generator):
    def forward(self, z):
        return torch.full((len(z), *self.sample_shape), float("nan"))


def nan_generator():
    nans = NaNs(ganzoo.GeneratorConfig(sample_shape=(3, 16, 16), latent_dim=4))
    nans.anchor = torch.nn.Parameter(torch.zeros(1))  # a device to sample on
    return nans


def test_image_metrics_refuse_non_finite_samples(cache, tmp_path):
    write_cifar(tmp_path)
    with pytest.raises(ganzoo.MetricError, match="NaN or infinite pixels"):
        ganzoo.evaluate(nan_generator(), f"cifar10:root={tmp_path},size=16,verify=false", metrics=["fid"], n=12)


NAN_PLUGIN = """
import torch
import ganzoo


class NaNs(ganzoo.Generator):
    def __init__(self, config):
        super().__init__(config)
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, z):
        return torch.full((len(z), *self.sample_shape), float("nan"))
"""


def test_sample_refuses_non_finite_samples(tmp_path, capsys):
    from ganzoo.testing import temporary_distribution

    with temporary_distribution(tmp_path / "site", "nan-gen", {"ganzoo.generators": {"nans": "nan_gen:NaNs"}},
                                modules={"nan_gen": NAN_PLUGIN}):  # fmt: skip
        nans = ganzoo.create_generator("nans", sample_shape=(3, 16, 16))
        weights = ganzoo.save_generator(nans, tmp_path / "g.safetensors", "nans")
        assert main(["sample", str(weights), "--out", str(tmp_path / "s.png")]) == 2
    assert "made NaN or infinite samples" in capsys.readouterr().err and not (tmp_path / "s.png").exists()


def test_more_real_images_than_the_data_holds_is_refused(cache, tmp_path):
    write_cifar(tmp_path)  # 20 train images
    with pytest.raises(ganzoo.UsageError, match="--n 30 is more real images than .* holds \\(20\\)"):
        ganzoo.evaluate(generator(), f"cifar10:root={tmp_path},size=16,verify=false", metrics=["kid"], n=30)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["evaluate", "wgan-ring8", "--n", "100"], "--n applies to --metrics only"),
        (["evaluate", "wgan-ring8", "--metrics", ""], "is not a comma-separated list"),
        (["evaluate", "wgan-ring8", "--metrics", "fid,"], "is not a comma-separated list"),
        (["train", "--loss", "wgan", "--eval-every", "5", "--eval-metrics", ""], "is not a comma-separated list"),
        (["train", "--loss", "nonsaturating", "--fake-labels", "uniform"], "this run is unconditional"),
        (["train", "--loss", "wgan", "--constraint", "clip", "--constraint", "ganzoo/clip:c=0.1"], "are one plugin, named twice"),
        (["train", "--loss", "nonsaturating", "--conditional", "--critic", "mlp:head=ac"], "add --constraint ac"),
    ],
)
def test_settings_that_were_silently_accepted_are_one_line(tmp_path, capsys, args, needle):
    if args[0] == "train":
        args = [*args, "--steps", "2", "--out", str(tmp_path / "run")]
    assert main(args) == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert needle in err, err
    assert not (tmp_path / "run").exists()


def test_resume_keeps_the_runs_data(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--loss", "nonsaturating", "--steps", "2", "--quiet", "--out", str(run)]) == 0
    assert main(["train", "--resume", str(run), "--steps", "4", "--data", "grid25", "--quiet"]) == 2
    assert "--data grid25 cannot change on --resume (the run trained on ring8" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--steps", "4", "--data", "ring8", "--quiet"]) == 0  # the same data


def test_the_inception_weights_are_checked_before_training_starts(tmp_path, monkeypatch, capsys):
    """Offline and without the weights, the run is refused before its first step, not at its first evaluation."""
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GANZOO_OFFLINE", "1")
    write_cifar(tmp_path)
    args = ["train", "--loss", "nonsaturating", "--data", f"cifar10:root={tmp_path},size=16,verify=false", "--generator",
            "dcgan:width=8", "--critic", "dcgan:width=8", "--batch-size", "4", "--steps", "4", "--eval-every", "2",
            "--eval-metrics", "kid", "--eval-n", "8", "--quiet", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Inception" in err and "GANZOO_OFFLINE" in err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / f"weights-inception-2015-12-05-{image_metrics.INCEPTION_SHA256[:8]}.pth").mkdir()
    assert main(args) == 2
    assert "is not a file (a folder or device is where the Inception weights belong)" in capsys.readouterr().err


def test_a_run_on_data_without_an_evaluation_exports_with_what_can_be_measured(tmp_path):
    write_cifar(tmp_path)
    run = tmp_path / "run"
    args = ["train", "--loss", "nonsaturating", "--data", f"cifar10:root={tmp_path},size=16,verify=false", "--generator",
            "dcgan:width=8", "--critic", "dcgan:width=8", "--batch-size", "4", "--steps", "2", "--quiet", "--out", str(run)]  # fmt: skip
    assert main(args) == 0
    assert main(["zoo", "export", str(run), str(tmp_path / "card"), "--data", f"cifar10:root={tmp_path},size=16,verify=false"]) == 0
    text = (tmp_path / "card" / "README.md").read_text()
    assert "has no evaluation of its own" in text and "--metrics fid,kid" in text
    assert (tmp_path / "card" / "sample.png").is_file()


def test_a_conditional_export_draws_one_row_per_class(tmp_path):
    run = tmp_path / "run"
    args = ["train", "--loss", "nonsaturating", "--data", "digits", "--generator", "dcgan:width=8", "--critic",
            "dcgan:width=8", "--conditional", "--steps", "2", "--quiet", "--out", str(run)]  # fmt: skip
    assert main(args) == 0
    assert main(["zoo", "export", str(run), str(tmp_path / "card")]) == 0
    assert "of each class, one row per class" in (tmp_path / "card" / "README.md").read_text()
    with Image.open(tmp_path / "card" / "sample.png") as picture:
        assert picture.height > picture.width / 2  # ten rows of eight


def test_a_card_command_with_critic_boost_pastes(tmp_path):
    """The WGAN-GP cards' commands hold --critic-boost 0, which `ganzoo train` did not accept."""
    args = ["train", "--loss", "wgan", "--constraint", "gradient-penalty", "--critic-boost", "0", "--steps", "2",
            "--quiet", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["critic_boost"] == 0

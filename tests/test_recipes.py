"""The published recipes: each one's settings valid and trained for two steps on stand-in CIFAR-10
files, each one naming its source and the protocol of every published score."""

import pytest
import torch

import ganzoo
from ganzoo import recipes
from ganzoo.cli import main
from test_image_datasets import write_cifar

NAMES = recipes.recipe_names()


def test_the_published_recipes_ship():
    assert {"dcgan-cifar10", "wgan-gp-resnet-cifar10", "sngan-resnet-cifar10", "sngan-projection-resnet-cifar10",
            "sngan-diffaugment-resnet-cifar10"} <= set(NAMES)  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_every_recipe_names_its_source_and_each_scores_protocol(name):
    recipe = recipes.describe(name)
    assert recipe["source"] and recipe["paper"].startswith("https://")
    for score in recipe.get("published", []):
        assert {"by", "protocol"} <= score.keys() and ({"fid", "inception_score"} & score.keys())
        assert "generated" in score["protocol"]


@pytest.mark.parametrize("name", NAMES)
def test_every_recipe_trains_two_steps(tmp_path, name):
    write_cifar(tmp_path)  # 20 train images of the official format
    args = ["train", "--config", name, "--data", f"cifar10:root={tmp_path},verify=false", "--batch-size", "8", "--steps", "2",
            "--quiet", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == 0
    settings, _ = recipes.read(name)
    generator = ganzoo.load_generator(tmp_path / "run" / "generator.safetensors")
    assert generator.sample_shape == (3, 32, 32) and type(generator).__name__.lower().startswith(settings["generator"])


def test_an_unknown_recipe_lists_the_ones_there_are(tmp_path, capsys):
    assert main(["train", "--config", "sngan-cifar", "--out", str(tmp_path / "run")]) == 2
    assert "no such file, nor a recipe; recipes: dcgan-cifar10" in capsys.readouterr().err


def test_the_recipes_command_lists_and_shows(capsys):
    assert main(["recipes"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in NAMES) and "16.77" in listing
    assert main(["recipes", "sngan-resnet-cifar10"]) == 0
    assert "lr_decay = linear" in capsys.readouterr().out


def test_linear_decay_brings_the_learning_rates_down_with_the_steps(tmp_path, monkeypatch):
    seen = []
    step = torch.optim.Adam.step

    def recording(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording)
    ganzoo.train({"loss": "nonsaturating", "steps": 4, "lr": 1e-3, "lr_decay": "linear", "out": str(tmp_path / "r")}, quiet=True)
    assert seen == pytest.approx([1e-3, 1e-3, 7.5e-4, 7.5e-4, 5e-4, 5e-4, 2.5e-4, 2.5e-4])  # critic, then generator

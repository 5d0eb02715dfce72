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


#: recipes whose published networks (20M to 80M parameters each) are for GPUs: trained here narrowed
NARROWED = {"r3gan": "r3gan:widths=16,cardinality=2"}


@pytest.mark.parametrize("name", NAMES)
def test_every_recipe_trains_two_steps(tmp_path, name):
    write_cifar(tmp_path)  # 20 train images of the official format
    settings, _ = recipes.read(name)
    network = settings["generator"].split(":")[0]
    narrowed = [f"--{role}" for role in ("generator", "critic") for _ in [0]] if network in NARROWED else []
    narrowed = [arg for flag in narrowed for arg in (flag, NARROWED[network])]
    args = ["train", "--config", name, "--data", f"cifar10:root={tmp_path},verify=false", "--batch-size", "8", "--steps", "2",
            "--quiet", "--out", str(tmp_path / "run"), *narrowed]  # fmt: skip
    assert main(args) == 0
    generator = ganzoo.load_generator(tmp_path / "run" / "generator.safetensors")
    assert generator.sample_shape == (3, 32, 32) and type(generator).__name__.lower().startswith(network)


#: the narrowed recipes published for GPUs (r3gan-fashion-mnist is ganzoo's own, sized for a CPU)
GPU_SIZED = [n for n, (settings, _) in zip(NAMES, map(recipes.read, NAMES))
             if settings["generator"].split(":")[0] in NARROWED and settings["data"] != "fashion-mnist"]


@pytest.mark.parametrize("name", GPU_SIZED)
def test_a_narrowed_recipes_own_networks_build(name):
    """What the training test narrows, built at full size on the meta device (shapes only)."""
    settings, _ = recipes.read(name)
    for role in ("generator", "critic"):
        spec = ganzoo.PluginSpec.model_validate(settings[role])
        classes = {"classes": 10} if settings.get("conditional") else {}
        with torch.device("meta"):
            network = getattr(ganzoo, f"create_{role}")(spec.name, sample_shape=(3, 32, 32), **spec.options, **classes)
        assert sum(p.numel() for p in network.parameters()) > 10**7


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

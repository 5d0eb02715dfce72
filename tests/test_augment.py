"""Differentiable augmentation: DiffAugment's transforms, and the loop handing every critic input,
real and fake, in critic and generator steps, through the run's augment."""

import pytest
import torch
from safetensors.torch import load_file

import ganzoo
from ganzoo.cli import main
from ganzoo.testing import temporary_distribution


def images(n: int = 6, side: int = 16) -> torch.Tensor:
    return torch.rand(n, 3, side, side, generator=torch.Generator().manual_seed(0)) * 2 - 1


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color+translation+cutout"])
def test_each_policy_keeps_the_shape_and_lets_gradients_through(policy):
    augment = ganzoo.create_augment("diffaugment", policy=policy)
    x = images().requires_grad_()
    out = augment(x, 0.0)
    assert out.shape == x.shape and not torch.equal(out, x)
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_moves_each_image_by_at_most_its_share_of_the_side():
    x = torch.full((64, 1, 16, 16), -1.0)
    x[:, :, 8, 8] = 1.0  # one bright pixel in the middle
    out = ganzoo.create_augment("diffaugment", policy="translation", translation=0.125)(x, 0.0)
    where = (out[:, 0] == 1.0).nonzero()[:, 1:]
    assert len(where) == 64 and (where - 8).abs().max() <= 2  # 0.125 of 16
    assert len({tuple(p.tolist()) for p in where}) > 5  # each sample its own shift
    assert (out == 0).any()  # the border a shift brings in is zero


def test_cutout_zeroes_one_square_of_half_the_side():
    x = torch.ones(32, 1, 16, 16)
    out = ganzoo.create_augment("diffaugment", policy="cutout", cutout=0.5)(x, 0.0)
    zeros = (out == 0).sum(dim=(1, 2, 3))
    assert zeros.max() == 64 and zeros.min() > 0  # an 8x8 square, cut by the border at most


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_p_augments_each_sample_with_that_chance(p):
    x = torch.ones(400, 1, 16, 16)
    torch.manual_seed(0)
    out = ganzoo.create_augment("diffaugment", policy="cutout", p=p)(x, 0.0)
    augmented = (out == 0).flatten(1).any(1).float().mean().item()
    assert augmented == pytest.approx(p, abs=0.08)


def test_bad_policies_are_one_line():
    with pytest.raises(ganzoo.ConfigError, match="must be color, translation, cutout joined by \\+"):
        ganzoo.create_augment("diffaugment", policy="color+flip")
    with pytest.raises(ganzoo.ConfigError, match="each once"):
        ganzoo.create_augment("diffaugment", policy="color+color")


RECORDER = '''
import ganzoo


class Recorder(ganzoo.Augment):
    """Counts what it sees, and marks it: every critic input passes through here."""

    seen = []

    def __call__(self, x, progress):
        Recorder.seen.append((len(x), x.requires_grad))
        return x * 0.5
'''


def test_a_third_partys_augment_sees_every_critic_input(tmp_path):
    """n_critic 2: per generator step two critic steps (real and fake each) and the generator's fakes."""
    with temporary_distribution(tmp_path / "site", "my-augment", {"ganzoo.augments": {"recorder": "my_augment:Recorder"}},
                                modules={"my_augment": RECORDER}):  # fmt: skip
        import my_augment

        result = ganzoo.train({"loss": "nonsaturating", "augment": "recorder", "steps": 3, "n_critic": 2, "batch_size": 8,
                               "out": str(tmp_path / "run")}, quiet=True)  # fmt: skip
        seen = my_augment.Recorder.seen
    assert len(seen) == 3 * (2 * 2 + 1) and all(n == 8 for n, _ in seen)
    assert [grad for _, grad in seen[4:5]] == [True]  # the generator step's fakes carry its gradient
    assert result.step == 3


def test_a_run_with_diffaugment_resumes_bitwise(tmp_path):
    flags = ["--loss", "hinge", "--constraint", "spectral-norm", "--data", "digits", "--generator", "dcgan:width=4",
             "--critic", "dcgan:width=4,norm=none", "--augment", "diffaugment", "--batch-size", "8", "--quiet",
             "--checkpoint-every", "2"]  # fmt: skip
    assert main(["train", *flags, "--steps", "4", "--out", str(tmp_path / "whole")]) == 0
    assert main(["train", *flags, "--steps", "2", "--out", str(tmp_path / "half")]) == 0
    assert main(["train", "--resume", str(tmp_path / "half"), "--steps", "4", "--quiet"]) == 0
    whole, half = (load_file(tmp_path / run / "checkpoints" / "step-0000004.safetensors") for run in ("whole", "half"))
    assert whole.keys() == half.keys() and all(torch.equal(whole[k], half[k]) for k in whole)
    import json

    assert json.loads((tmp_path / "whole" / "config.json").read_text())["augment"]["name"] == "diffaugment"


def test_diffaugment_composes_with_conditioning_and_penalties(tmp_path):
    args = ["train", "--loss", "wgan", "--constraint", "gradient-penalty", "--data", "digits", "--generator",
            "dcgan:width=4", "--critic", "dcgan:width=4,norm=layer", "--conditional", "--augment",
            "diffaugment:policy=translation", "--batch-size", "8", "--steps", "2", "--quiet", "--out", str(tmp_path / "r")]  # fmt: skip
    assert main(args) == 0


def test_diffaugment_on_points_is_one_line(tmp_path, capsys):
    assert main(["train", "--loss", "nonsaturating", "--augment", "diffaugment", "--steps", "2", "--out", str(tmp_path / "r")]) == 2
    assert "diffaugment transforms images (B, C, H, W)" in capsys.readouterr().err

"""The SNGAN / WGAN-GP ResNets: their size at 32x32, the other sides, conditioning, and every
loss, constraint and training option they compose with."""

import pytest
import torch
from torch import nn

import ganzoo
from ganzoo.cli import main

TINY = {"data": "digits:size=16", "generator": "resnet:width=8", "critic": "resnet:width=8", "batch_size": 8, "steps": 2}


def parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_cifar10_networks_have_the_papers_size():
    """About 4.3M generator and 1.1M critic parameters at 32x32 (Miyato et al. 2018, Table 3)."""
    generator = ganzoo.create_generator("resnet", sample_shape=(3, 32, 32))
    critic = ganzoo.create_critic("resnet", sample_shape=(3, 32, 32))
    assert generator.latent_dim == 128 and parameters(generator) == 4_270_339 and parameters(critic) == 1_053_825
    assert [b.conv1.out_channels for b in generator.blocks] == [256] * 3 and generator.linear.out_features == 16 * 256
    downs = [block.down for block in critic.net if hasattr(block, "down")]
    assert downs == [True, True, False, False]  # 32 -> 16 -> 8, then two plain blocks
    assert critic(generator.sample(3)).shape == (3,)


@pytest.mark.parametrize("side, innermost, ups", [(28, 7, 2), (48, 6, 3), (64, 4, 4), (16, 4, 2)])
def test_other_sides_follow_the_same_rules(side, innermost, ups):
    generator = ganzoo.create_generator("resnet", sample_shape=(1, side, side), width=8)
    critic = ganzoo.create_critic("resnet", sample_shape=(1, side, side), width=8)
    assert generator.base == innermost and len(generator.blocks) == ups
    assert len([b for b in critic.net if hasattr(b, "down")]) >= 4
    assert critic(generator.sample(2)).shape == (2,)


def test_a_side_it_cannot_build_is_one_line():
    with pytest.raises(ganzoo.ConfigError, match=r"resnet needs square images .* size= option"):
        ganzoo.create_generator("resnet", sample_shape=(3, 30, 30))


def test_each_critic_score_is_its_samples_own():
    critic = ganzoo.create_critic("resnet", sample_shape=(1, 16, 16), width=8).train()
    x = torch.randn(5, 1, 16, 16)
    torch.testing.assert_close(torch.cat([critic(x[i : i + 1]) for i in range(5)]), critic(x))
    assert type(critic).independent_samples


def test_conditional_networks_take_labels_through_cbn_projection_and_ac():
    generator = ganzoo.create_generator("resnet", sample_shape=(1, 16, 16), width=8, classes=10)
    labels = torch.arange(4)
    samples = generator.sample(4, labels=labels)
    assert any(isinstance(m, ganzoo_plugins_cbn()) for m in generator.modules())
    projection = ganzoo.create_critic("resnet", sample_shape=(1, 16, 16), width=8, classes=10)
    auxiliary = ganzoo.create_critic("resnet", sample_shape=(1, 16, 16), width=8, classes=10, head="ac")
    assert projection(samples, labels).shape == (4,) and auxiliary.classify(samples).shape == (4, 10)


def ganzoo_plugins_cbn():
    from ganzoo_plugins.conditioning import ClassBatchNorm2d

    return ClassBatchNorm2d


@pytest.mark.parametrize(
    "extra",
    [
        {"loss": "hinge", "constraints": ["spectral-norm"]},
        {"loss": "wgan", "constraints": ["gradient-penalty"], "optimizer": "adam", "critic_boost": 0},
        {"loss": "nonsaturating", "constraints": ["r1"]},
        {"loss": "minimax"},
        {"loss": "least-squares", "ema": 0.999, "precision": "bf16"},
        {"loss": "wgan", "constraints": ["clip"], "critic_boost": 0},
        {"loss": "instance-noise", "augment": "diffaugment"},
        {"loss": "nonsaturating", "critic": "pac:m=2,base=resnet:width=8"},
        {"loss": "hinge", "constraints": ["spectral-norm"], "conditional": True},
        {"loss": "nonsaturating", "constraints": ["ac"], "conditional": True, "critic": "resnet:width=8,head=ac"},
    ],
    ids=lambda extra: "+".join(str(v) for v in extra.values()),
)
def test_resnet_trains_with_every_loss_and_constraint(tmp_path, extra):
    result = ganzoo.train({**TINY, **extra, "out": str(tmp_path / "run")}, quiet=True)
    generator = ganzoo.load_generator(result.generator_path)
    assert generator.sample(2).shape == (2, 1, 16, 16) and torch.isfinite(generator.sample(2)).all()


def test_resnet_trains_channels_last_and_compiled(tmp_path):
    """The loop keeps image networks channels-last; --compile builds the residual blocks' graphs."""
    assert main(["train", "--loss", "hinge", "--data", "digits:size=16", "--generator", "resnet:width=4", "--critic",
                 "resnet:width=4", "--batch-size", "4", "--steps", "2", "--compile", "--quiet",
                 "--out", str(tmp_path / "run")]) == 0  # fmt: skip

"""PacGAN's pieces: packing as a critic wrapper, the maxout critic and the BatchNorm MLP generator."""

import pytest
import torch

import ganzoo
from ganzoo.cli import main

LOSSES = ["minimax", "nonsaturating", "instance-noise", "wgan", "hinge", "least-squares"]


def test_a_pack_is_judged_as_its_samples_side_by_side():
    pac = ganzoo.create_critic("pac", sample_shape=(2,), m=2, base="mlp")
    x = torch.randn(6, 2)
    packed = pac.critic(x.reshape(3, 4))  # samples 0-1, 2-3, 4-5 joined
    assert torch.equal(pac(x), packed.repeat_interleave(2))
    images = ganzoo.create_critic("pac", sample_shape=(3, 8, 8), m=2, base="mlp")
    assert images.critic.sample_shape == (6, 8, 8)  # stacked along the channels


@pytest.mark.parametrize("loss_name", LOSSES)
def test_every_loss_of_packed_scores_is_its_loss_over_packs(loss_name):
    pac = ganzoo.create_critic("pac", sample_shape=(2,), m=4, base="maxout:width=8")
    loss = ganzoo.create_loss(loss_name)
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    per_sample = loss.critic_loss(pac(real), pac(fake)), loss.generator_loss(pac(fake))
    per_pack = loss.critic_loss(pac.critic(real.reshape(2, 8)), pac.critic(fake.reshape(2, 8)))
    assert torch.allclose(per_sample[0], per_pack)
    assert torch.allclose(per_sample[1], loss.generator_loss(pac.critic(fake.reshape(2, 8))))


@pytest.mark.parametrize("loss_name", LOSSES)
@pytest.mark.parametrize("clip", [False, True], ids=["plain", "clip"])
def test_packing_trains_with_every_loss_and_with_clip(tmp_path, loss_name, clip):
    flags = ["--loss", loss_name, "--critic", "pac:m=4,base=maxout", "--generator", "mlp:width=16,batchnorm=true"]
    flags += ["--constraint", "clip"] if clip else []
    out = tmp_path / "run"
    assert main(["train", *flags, "--batch-size", "16", "--n-critic", "1", "--steps", "3", "--quiet", "--out", str(out)]) == 0
    assert torch.isfinite(ganzoo.load_generator(out / "generator.safetensors").sample(8)).all()


def test_a_base_that_cannot_judge_packs_is_refused_before_training(tmp_path, capsys):
    flags = ["--loss", "wgan", "--data", "digits", "--critic", "pac:m=2,base=dcgan"]
    assert main(["train", *flags, "--out", str(tmp_path / "run")]) == 2
    assert "critic 'dcgan' cannot judge packs of 2" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("critic", "batch", "multiple"), [("pac:m=3,base=mlp", 64, 3), ("pac:m=2,base=pac", 66, 4)])
def test_a_batch_that_packs_do_not_divide_is_refused_before_training(tmp_path, capsys, critic, batch, multiple):
    flags = ["--loss", "nonsaturating", "--critic", critic, "--batch-size", str(batch), "--steps", "2"]
    assert main(["train", *flags, "--out", str(tmp_path / "run")]) == 2
    assert f"scores batches of a multiple of {multiple} samples, but a batch holds {batch}" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    assert ganzoo.create_critic("pac", sample_shape=(2,), m=2, base="pac:m=3").batch_multiple == 6


def test_each_process_batch_must_hold_whole_packs():
    from types import SimpleNamespace

    from ganzoo.config import TrainConfig
    from ganzoo.errors import ConfigError
    from ganzoo.loop import check_critic_batch

    critic = ganzoo.create_critic("pac", sample_shape=(2,), m=4, base="mlp")
    cfg = TrainConfig(loss="nonsaturating", critic="pac:m=4", batch_size=100)
    check_critic_batch(cfg, SimpleNamespace(size=1), critic)  # 100 is 25 packs
    with pytest.raises(ConfigError, match="a batch holds 50 on each of the processes"):
        check_critic_batch(cfg, SimpleNamespace(size=2), critic)


def test_maxout_units_take_the_largest_piece():
    critic = ganzoo.create_critic("maxout", sample_shape=(2,), width=3, depth=1, pieces=2)
    unit = critic.net[0]
    with torch.no_grad():
        unit.linear.weight.copy_(torch.tensor([[1.0, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [-1, -1]]))
        unit.linear.bias.zero_()
    x = torch.tensor([[2.0, -3.0]])
    assert torch.equal(unit(x), torch.tensor([[2.0, 3.0, 1.0]]))  # max(2, -2), max(-3, 3), max(-1, 1)
    assert critic(torch.randn(5, 2)).shape == (5,)
    assert ganzoo.create_critic("maxout", sample_shape=(2,)).config.model_dump() == {
        "sample_shape": (2,), "width": 200, "depth": 3, "pieces": 5, "classes": 0, "head": "projection",
    }  # fmt: skip


def test_the_mlp_generator_can_have_batchnorm():
    generator = ganzoo.create_generator("mlp", sample_shape=(2,), width=400, depth=4, batchnorm=True)
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in generator.modules()) == 4
    assert generator(torch.randn(5, 2)).shape == (5, 2)


def _pack_gradients(base, packs):
    """Each pack's gradient of the base critic's score, row by row (the formula over packs)."""
    packs = packs.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(base(packs).sum(), packs, create_graph=True)
    return grad.flatten(1)


@pytest.mark.parametrize("m", [1, 2, 4])
def test_penalties_see_the_packed_critic_as_its_function_over_packs(m):
    """pac gives each sample its pack's score; a penalty must differentiate the pack's score once,
    not through m copies of it (R1 came out m times too large, and GP pulled m |grad| to 1)."""
    torch.manual_seed(0)
    pac = ganzoo.create_critic("pac", sample_shape=(2,), m=m, base="maxout:width=8")
    loss = ganzoo.create_loss("wgan")
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    real_packs, fake_packs = real.reshape(8 // m, -1), fake.reshape(8 // m, -1)
    value = loss.critic_loss(pac(real), pac(fake))

    r1 = ganzoo.create_constraint("r1", gamma=2.0)
    _, total = ganzoo.step.critic_objective(loss, [r1], pac, real, fake, 0.0)
    expected = _pack_gradients(pac.critic, real_packs).square().sum(1).mean()  # gamma/2 = 1
    assert torch.allclose(total - value, expected, rtol=1e-5)

    gp = ganzoo.create_constraint("gradient-penalty", weight=1.0)
    torch.manual_seed(1)
    _, total = ganzoo.step.critic_objective(loss, [gp], pac, real, fake, 0.0)
    torch.manual_seed(1)
    eps = torch.rand(8 // m, 1)  # one interpolation weight per pack
    between = eps * real_packs + (1 - eps) * fake_packs
    expected = (_pack_gradients(pac.critic, between).norm(dim=1) - 1).square().mean()
    assert torch.allclose(total - value, expected, rtol=1e-5)

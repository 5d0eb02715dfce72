"""R3GAN's normalization-free ResNets: no normalisation anywhere, every side, conditioning, fix-up
initialisation, the [1, 2, 1] resampling, channels-last and bf16, and a run with R3GAN's objective."""

import pytest
import torch
from torch import nn

import ganzoo
from ganzoo.cli import main
from ganzoo_plugins.sides import base_side, buildable_sides

SMALL = {"widths": (8, 4), "cardinality": (2, 1)}
NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)


def networks(shape: tuple[int, ...], classes: int = 0, **options) -> tuple[nn.Module, nn.Module]:
    options = {**SMALL, **options}
    return (
        ganzoo.create_generator("r3gan", sample_shape=shape, classes=classes, **options),
        ganzoo.create_critic("r3gan", sample_shape=shape, classes=classes, **options),
    )


def blocks(network: nn.Module) -> list[nn.Module]:
    return [m for m in network.modules() if type(m).__name__ == "Block"]


@pytest.mark.parametrize("classes", [0, 10])
def test_neither_network_holds_a_normalisation_layer(classes):
    for network in networks((3, 32, 32), classes, blocks=(2,)):
        assert not [m for m in network.modules() if isinstance(m, NORMS)]
        assert not [name for name, _ in network.named_parameters() if "weight_orig" in name or "parametrizations" in name]
        assert not [name for name, _ in network.named_buffers(remove_duplicate=False) if "weight_u" in name]  # spectral norm
        assert not [m for m in network.modules() if hasattr(m, "parametrizations")]


@pytest.mark.parametrize("side", [side for side in buildable_sides() if side <= 128])  # larger: more of the same stages
@pytest.mark.parametrize("classes", [0, 3])
def test_every_side_builds_and_maps_to_the_right_shapes(side, classes):
    """The basis is the side's innermost one (7x7 for 28), then one 2x up-sampling per stage."""
    generator, critic = networks((1, side, side), classes)
    labels = torch.tensor([0, 2]) if classes else None
    samples = generator.sample(2, labels=labels)
    assert samples.shape == (2, 1, side, side) and torch.isfinite(samples).all()
    assert generator.basis.shape[1:] == (base_side(side),) * 2
    ups = [m for m in generator.modules() if type(m).__name__ == "LowPass"]
    assert len(ups) == len([m for m in critic.modules() if type(m).__name__ == "LowPass"])
    assert base_side(side) * 2 ** len(ups) == side
    scores = critic(samples, labels) if classes else critic(samples)
    assert scores.shape == (2,) and torch.isfinite(scores).all()


def test_mnists_side_starts_at_7x7_and_upsamples_twice():
    generator, critic = networks((1, 28, 28))
    assert generator.basis.shape == (8, 7, 7)
    assert len([m for m in generator.modules() if type(m).__name__ == "LowPass"]) == 2
    assert critic.net[-3].kernel_size == (7, 7)  # the discriminative basis spans the innermost side


def test_sides_it_cannot_build_and_groups_that_do_not_divide_are_one_line():
    with pytest.raises(ganzoo.ConfigError, match=r"r3gan needs square images .* size= option"):
        ganzoo.create_generator("r3gan", sample_shape=(3, 30, 30))
    with pytest.raises(ganzoo.ConfigError, match=r"14x14 stage has 64 inner maps .* cardinality 3 does not divide"):
        ganzoo.create_critic("r3gan", sample_shape=(1, 28, 28), cardinality=(8, 3))
    with pytest.raises(ganzoo.ConfigError, match=r"'widths': must be whole numbers above 0"):
        ganzoo.create_generator("r3gan", sample_shape=(1, 28, 28), widths="64+0")


def test_per_stage_options_run_innermost_first_and_the_last_repeats():
    """widths=768,blocks=2,cardinality=96 (one value each, as on the command line) is the official
    CIFAR-10 preset: four stages of 768 maps at 32x32, two blocks each."""
    generator = ganzoo.create_generator("r3gan", sample_shape=(1, 32, 32), widths="32+16", blocks="2", cardinality="4")
    assert [b.branch[0].in_channels for b in blocks(generator)] == [32, 32, 16, 16, 16, 16, 16, 16]
    assert [b.branch[2].groups for b in blocks(generator)] == [4] * 8
    critic = ganzoo.create_critic("r3gan", sample_shape=(1, 32, 32), widths=(32, 16))
    assert [b.branch[0].in_channels for b in blocks(critic)] == [16, 16, 16, 32]  # outermost first


def test_each_residual_branch_ends_at_zero_so_each_block_starts_as_the_identity():
    generator, critic = networks((1, 8, 8), blocks=(3, 2))  # stages at 4x4 and 8x8
    for network in (generator, critic):
        found = blocks(network)
        assert len(found) == 5
        x = torch.randn(2, found[-1].branch[0].in_channels, 4, 4)
        for block in found:
            expand, spatial, last = (m for m in block.branch if isinstance(m, nn.Conv2d))
            assert torch.count_nonzero(last.weight) == 0
            assert (expand.kernel_size, spatial.kernel_size, last.kernel_size) == ((1, 1), (3, 3), (1, 1))
        torch.testing.assert_close(found[-1](x), x, rtol=0, atol=0)


def test_the_other_block_convolutions_shrink_with_the_number_of_blocks():
    """He's init with leaky ReLU's gain, times L^(-1/4) for L blocks in all (the official code's fix-up)."""
    torch.manual_seed(0)
    wide = {"widths": (256,), "cardinality": (2,), "expansion": 1}
    stds = {}
    for total in (1, 16):
        critic = ganzoo.create_critic("r3gan", sample_shape=(1, 8, 8), blocks=(total,), **wide)
        expand = blocks(critic)[0].branch[0]
        stds[total] = expand.weight.std().item()
        assert stds[total] == pytest.approx((2 / 1.04) ** 0.5 / 256**0.5 * (2 * total) ** -0.25, rel=0.05)  # two stages
    assert stds[16] / stds[1] == pytest.approx(0.5, rel=0.05)


def test_the_low_pass_filter_is_1_2_1_normalised_and_keeps_a_constant():
    generator, critic = networks((1, 16, 16))
    up = next(m for m in generator.modules() if type(m).__name__ == "LowPass")
    down = next(m for m in critic.modules() if type(m).__name__ == "LowPass")
    for resampler in (up, down):
        torch.testing.assert_close(resampler.filter, torch.tensor([1.0, 2.0, 1.0]) / 4)
        assert not [k for k in resampler.state_dict()]  # fixed, so not in checkpoints
    maps = up.kernel.shape[0]
    x = torch.full((1, maps, 6, 6), 3.0)
    torch.testing.assert_close(up(x)[..., 2:-2, 2:-2], torch.full((1, maps, 8, 8), 3.0))  # away from the zero padding
    y = torch.full((1, down.kernel.shape[0], 8, 8), 3.0)
    torch.testing.assert_close(down(y)[..., 1:-1, 1:-1], torch.full((1, down.kernel.shape[0], 2, 2), 3.0))
    # an impulse up-sampled spreads as [1, 3, 3, 1] / 8 along each axis ([1, 2, 1] through the 2x step), times 4
    impulse = torch.zeros(1, maps, 5, 5)
    impulse[0, :, 2, 2] = 1
    axis = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8
    spread = up(impulse)[0, 0]
    torch.testing.assert_close(spread[3:7, 3:7], 4 * torch.outer(axis, axis))
    assert spread.sum() == pytest.approx(4.0)


def test_gradients_reach_every_parameter_once_the_branches_move():
    generator, critic = networks((1, 16, 16), classes=4, blocks=(2,))
    for block in blocks(generator) + blocks(critic):
        nn.init.normal_(block.branch[-1].weight, 0.0, 0.1)  # off zero, as after a first step
    nn.init.normal_(critic.embed.weight, 0.0, 0.1)  # the projection starts at zero too
    labels = torch.tensor([0, 1, 3])
    critic(generator(torch.randn(3, generator.latent_dim), labels), labels).sum().backward()
    for network in (generator, critic):
        for name, p in network.named_parameters():
            assert p.grad is not None and torch.count_nonzero(p.grad) > 0, name


def test_the_critic_scores_each_sample_alone_and_takes_packs_of_labels():
    generator, critic = networks((1, 16, 16), classes=4)
    nn.init.normal_(critic.embed.weight, 0.0, 0.1)
    x, labels = torch.randn(5, 1, 16, 16), torch.tensor([0, 1, 2, 3, 0])
    torch.testing.assert_close(torch.cat([critic(x[i : i + 1], labels[i : i + 1]) for i in range(5)]), critic(x, labels))
    assert type(critic).independent_samples
    assert not torch.allclose(critic(x, labels), critic(x, (labels + 1) % 4))  # the projection reads the labels


@pytest.mark.parametrize("classes", [0, 4])
def test_runs_channels_last_and_under_bf16_autocast(classes):
    generator, critic = networks((3, 16, 16), classes, blocks=(2,))
    generator.to(memory_format=torch.channels_last)
    critic.to(memory_format=torch.channels_last)
    labels = torch.tensor([1, 3]) if classes else None
    z = torch.randn(2, generator.latent_dim)
    reference = critic(generator(z, labels), labels) if classes else critic(generator(z))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        samples = generator(z, labels) if classes else generator(z)
        scores = critic(samples, labels) if classes else critic(samples)
    assert samples.dtype == torch.bfloat16 and samples.shape == (2, 3, 16, 16)
    scores.float().sum().backward()
    torch.testing.assert_close(scores.float(), reference, rtol=0.1, atol=0.1)
    assert all(p.grad is not None for p in generator.parameters())


def test_show_prints_the_parameter_counts(capsys):
    assert main(["show", "generator", "r3gan"]) == 0
    counts = ganzoo.create_generator("r3gan", sample_shape=(1, 28, 28))
    expected = f"{sum(p.numel() for p in counts.parameters()):,} at (1, 28, 28)"
    assert expected in capsys.readouterr().out
    assert main(["show", "critic", "r3gan"]) == 0
    assert "parameters with the default options: " in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra",
    [
        {"loss": "rpgan", "constraints": ["r1", "r2"]},
        {"loss": "nonsaturating", "constraints": ["r1"], "conditional": True, "precision": "bf16"},
    ],
    ids=["rpgan+r1+r2", "conditional-bf16"],
)
def test_trains_with_r3gans_objective(tmp_path, extra):
    spec = "r3gan:widths=8+4,cardinality=2+1"
    config = {"data": "digits", "generator": spec, "critic": spec, "batch_size": 8, "steps": 3, **extra}
    result = ganzoo.train({**config, "out": str(tmp_path / "run")}, quiet=True)
    generator = ganzoo.load_generator(result.generator_path)
    samples = generator.sample(2) if not generator.classes else generator.sample(2, labels=[1, 9])
    assert samples.shape == (2, 1, 8, 8) and torch.isfinite(samples).all()

import pytest
import timm
import torch
from safetensors.torch import save_file
from torch import nn

import ganzoo

IMAGE_SHAPES = [(c, s, s) for c in (1, 3) for s in (8, 16, 28, 32)]
TINY_TIMM = "test_resnet"  # timm's own tiny test network: builds and runs in well under a second


def check_generator(generator, latent_dim, sample_shape):
    assert generator(torch.randn(5, latent_dim)).shape == (5, *sample_shape)
    samples = generator.sample(3)
    assert samples.shape == (3, *sample_shape)
    assert not samples.requires_grad
    assert samples.device == generator.device


@pytest.mark.parametrize("sample_shape", [(2,), (3, 4)])
@pytest.mark.parametrize("latent_dim", [1, 7])
def test_mlp_shapes(sample_shape, latent_dim):
    generator = ganzoo.create_generator("mlp", sample_shape=sample_shape, latent_dim=latent_dim, width=16)
    critic = ganzoo.create_critic("mlp", sample_shape=sample_shape, width=16)
    check_generator(generator, latent_dim, sample_shape)
    assert critic(torch.randn(5, *sample_shape)).shape == (5,)


@pytest.mark.parametrize("sample_shape", IMAGE_SHAPES)
def test_dcgan_shapes(sample_shape):
    latent_dim = sample_shape[1] + 1  # a different one for each side
    generator = ganzoo.create_generator("dcgan", sample_shape=sample_shape, latent_dim=latent_dim, width=8)
    critic = ganzoo.create_critic("dcgan", sample_shape=sample_shape, width=8)
    check_generator(generator, latent_dim, sample_shape)
    assert critic(generator.sample(4)).shape == (4,)


@pytest.mark.parametrize("side", [64, 128])
def test_dcgan_large_sides(side):
    generator = ganzoo.create_generator("dcgan", sample_shape=(3, side, side), width=2)
    critic = ganzoo.create_critic("dcgan", sample_shape=(3, side, side), width=2)
    assert critic(generator.sample(2)).shape == (2,)


def test_dcgan_follows_the_reference_architecture():
    generator = ganzoo.create_generator("dcgan", sample_shape=(3, 64, 64))
    critic = ganzoo.create_critic("dcgan", sample_shape=(3, 64, 64))
    assert generator.latent_dim == 100
    first = generator.net[0]
    assert (first.in_channels, first.out_channels) == (100, 512)  # 8 * width at 4x4, as in DCGAN_G
    assert isinstance(generator.net[-1], nn.Tanh)
    assert isinstance(critic.net[-1], nn.Conv2d) and critic.net[-1].out_channels == 1  # raw scores
    # about 2.77M critic parameters: the WGAN reference DCGAN_D at 64x64
    assert sum(p.numel() for p in critic.parameters()) == 2_765_568


def test_dcgan_initialisation():
    torch.manual_seed(0)
    critic = ganzoo.create_critic("dcgan", sample_shape=(3, 64, 64))
    convs = torch.cat([m.weight.flatten() for m in critic.modules() if isinstance(m, nn.Conv2d)])
    norms = [m for m in critic.modules() if isinstance(m, nn.BatchNorm2d)]
    scales = torch.cat([m.weight.detach() for m in norms])
    assert convs.mean().item() == pytest.approx(0, abs=1e-3)
    assert convs.std().item() == pytest.approx(0.02, rel=0.02)
    assert scales.mean().item() == pytest.approx(1, abs=5e-3)
    assert scales.std().item() == pytest.approx(0.02, rel=0.15)
    assert all((m.bias == 0).all() for m in norms)


@pytest.mark.parametrize("norm, per_sample", [("batch", False), ("layer", True), ("none", True)])
def test_dcgan_critic_norm_decides_whether_a_score_is_its_samples_own(norm, per_sample):
    torch.manual_seed(0)
    critic = ganzoo.create_critic("dcgan", sample_shape=(1, 16, 16), width=4, norm=norm).train()
    x = torch.randn(6, 1, 16, 16)
    alone = torch.cat([critic(x[i : i + 1]) for i in range(6)])
    together = critic(x)
    assert torch.allclose(alone, together, atol=1e-6) == per_sample
    layers = {type(m) for m in critic.modules()}
    assert (nn.BatchNorm2d in layers, nn.GroupNorm in layers) == (norm == "batch", norm == "layer")


@pytest.mark.parametrize("side, innermost, stages", [(28, 7, 2), (32, 4, 3), (48, 6, 3), (64, 4, 4), (12, 6, 1)])
def test_dcgan_halves_each_side_down_to_its_innermost_maps(side, innermost, stages):
    """MNIST's 28 starts from 7x7 maps, as the TF-GAN and Keras DCGANs do; powers of two from 4x4."""
    generator = ganzoo.create_generator("dcgan", sample_shape=(1, side, side), width=4)
    critic = ganzoo.create_critic("dcgan", sample_shape=(1, side, side), width=4)
    assert generator.net[0].kernel_size == (innermost, innermost) and critic.net[-1].kernel_size == (innermost, innermost)
    assert sum(isinstance(m, nn.ConvTranspose2d) and m.stride == (2, 2) for m in generator.modules()) == stages
    assert critic(generator.sample(2)).shape == (2,)


def test_dcgan_at_28_is_conditional_too():
    generator = ganzoo.create_generator("dcgan", sample_shape=(1, 28, 28), width=4, classes=10)
    critic = ganzoo.create_critic("dcgan", sample_shape=(1, 28, 28), width=4, classes=10)
    labels = torch.arange(4)
    assert critic(generator.sample(4, labels=labels), labels).shape == (4,)


@pytest.mark.parametrize("kind", ["generator", "critic"])
@pytest.mark.parametrize("sample_shape", [(2,), (2, 8, 8), (3, 30, 30), (3, 8, 16), (3, 7, 7), (1, 2048, 2048)])
def test_dcgan_rejects_what_it_cannot_build(kind, sample_shape):
    with pytest.raises(ganzoo.ConfigError) as caught:
        getattr(ganzoo, f"create_{kind}")("dcgan", sample_shape=sample_shape)
    message = str(caught.value)
    assert "dcgan" in message and "sample_shape" in message and "28, 32, 48, 64" in message and "size=" in message
    assert "\n" not in message


def test_timm_critic_scores_images():
    critic = ganzoo.create_critic("timm", sample_shape=(1, 16, 16), arch=TINY_TIMM)
    assert critic(torch.randn(3, 1, 16, 16)).shape == (3,)


def test_timm_critic_suggests_close_architectures():
    with pytest.raises(ganzoo.ConfigError, match=r"critic 'timm': option 'arch': .*did you mean .*resnet18"):
        ganzoo.create_critic("timm", sample_shape=(3, 32, 32), arch="resnet19")


def test_timm_critic_needs_images():
    with pytest.raises(ganzoo.ConfigError, match=r"critic 'timm': option 'sample_shape': .*images"):
        ganzoo.create_critic("timm", sample_shape=(2,), arch=TINY_TIMM)


def test_timm_critic_loads_local_backbone_weights(tmp_path):
    # A 10-class classifier: every backbone tensor fits, the head is left freshly initialised.
    source = timm.create_model(TINY_TIMM, num_classes=10, in_chans=1)
    save_file(source.state_dict(), tmp_path / "backbone.safetensors")
    weights = tmp_path / "backbone.safetensors"
    critic = ganzoo.create_critic("timm", sample_shape=(1, 16, 16), arch=TINY_TIMM, weights=weights)
    loaded = critic.net.state_dict()
    head = {name for name, _ in critic.net.named_parameters() if name.startswith("fc.")}
    assert head and all(torch.equal(loaded[k], v) for k, v in source.state_dict().items() if k not in head)
    assert critic(torch.randn(2, 1, 16, 16)).shape == (2,)


def test_timm_critic_refuses_weights_that_do_not_fit(tmp_path):
    save_file(timm.create_model(TINY_TIMM, in_chans=3).state_dict(), tmp_path / "rgb.safetensors")
    with pytest.raises(ganzoo.CheckpointError, match="rgb.safetensors does not fit"):
        ganzoo.create_critic("timm", sample_shape=(1, 16, 16), arch=TINY_TIMM, weights=tmp_path / "rgb.safetensors")
    with pytest.raises(ganzoo.ConfigError, match="option 'weights': no weights file"):
        ganzoo.create_critic("timm", sample_shape=(1, 16, 16), arch=TINY_TIMM, weights=tmp_path / "missing.safetensors")

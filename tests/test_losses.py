import math

import pytest
import torch

import ganzoo

# TF-GAN's published test vectors (tensorflow_gan/python/losses/losses_impl_test.py).
REAL = torch.tensor([-5.0, 1.4, 12.5, 2.7])
FAKE = torch.tensor([10.0, 4.4, -5.5, 3.6])
LOSSES = ["minimax", "nonsaturating", "wgan", "instance-noise"]


def sigmoid(s: float) -> float:
    return 1 / (1 + math.exp(-s))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


# -E[log D(x)] - E[log(1 - D(G(z)))], written out the naive way on values where it is still exact.
GAN_CRITIC = mean(-math.log(sigmoid(s)) for s in REAL.tolist()) + mean(-math.log(1 - sigmoid(s)) for s in FAKE.tolist())


def test_nonsaturating_matches_tfgan():
    loss = ganzoo.create_loss("nonsaturating")
    assert loss.generator_loss(FAKE).item() == pytest.approx(1.38582, abs=1e-5)
    assert loss.critic_loss(REAL, FAKE).item() == pytest.approx(GAN_CRITIC, rel=1e-5)


def test_minimax_matches_hand_computation():
    loss = ganzoo.create_loss("minimax")
    assert loss.critic_loss(REAL, FAKE).item() == pytest.approx(GAN_CRITIC, rel=1e-5)
    expected = mean(math.log(1 - sigmoid(s)) for s in FAKE.tolist())  # E[log(1 - D(G(z)))]
    assert loss.generator_loss(FAKE).item() == pytest.approx(expected, rel=1e-5)


def test_wgan_matches_tfgan():
    loss = ganzoo.create_loss("wgan")
    assert loss.critic_loss(REAL, FAKE).item() == pytest.approx(0.225, abs=1e-6)
    assert loss.generator_loss(FAKE).item() == pytest.approx(-3.125, abs=1e-6)
    assert loss.estimates_wasserstein


def test_wgan_recommends_the_paper_schedule():
    defaults = ganzoo.create_loss("wgan").defaults
    assert (defaults.optimizer, defaults.lr, defaults.n_critic) == ("rmsprop", 5e-5, 5)
    assert not ganzoo.create_loss("minimax").estimates_wasserstein


@pytest.mark.parametrize("name", LOSSES)
def test_losses_are_finite_at_extreme_logits(name):
    loss = ganzoo.create_loss(name)
    real = torch.tensor([100.0, -100.0], requires_grad=True)
    fake = torch.tensor([-100.0, 100.0], requires_grad=True)
    total = loss.critic_loss(real, fake) + loss.generator_loss(fake)
    total.backward()
    assert torch.isfinite(total)
    assert torch.isfinite(real.grad).all() and torch.isfinite(fake.grad).all()


@pytest.mark.parametrize("name", LOSSES)
def test_gradients_reach_only_the_network_being_trained(name):
    torch.manual_seed(0)
    loss = ganzoo.create_loss(name)
    generator = ganzoo.create_generator("mlp", sample_shape=(2,), width=8, depth=1)
    critic = ganzoo.create_critic("mlp", sample_shape=(2,), width=8, depth=1)
    real, fake = torch.randn(16, 2), generator(generator.latent(16))

    loss.critic_loss(critic(real), critic(fake.detach())).backward()
    assert all(p.grad is None for p in generator.parameters())
    assert all(p.grad is not None for p in critic.parameters())

    critic.zero_grad(set_to_none=True)
    loss.generator_loss(critic(fake)).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.parameters())


def test_plain_losses_do_not_perturb():
    x = torch.randn(4, 2)
    for name in ("minimax", "nonsaturating", "wgan"):
        assert ganzoo.create_loss(name).perturb(x, 0.0) is x


@pytest.mark.parametrize(("progress", "scale"), [(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)])
def test_instance_noise_std_is_annealed_linearly(progress, scale):
    torch.manual_seed(0)
    loss = ganzoo.create_loss("instance-noise", sigma=0.3)
    noise = loss.perturb(torch.zeros(200_000), progress)
    assert noise.std().item() == pytest.approx(0.3 * scale, abs=2e-3)
    assert noise.mean().item() == pytest.approx(0.0, abs=2e-3)


def test_instance_noise_without_annealing_keeps_sigma():
    loss = ganzoo.create_loss("instance-noise", sigma=0.3, anneal=False)
    assert loss.perturb(torch.zeros(200_000), 1.0).std().item() == pytest.approx(0.3, abs=2e-3)


@pytest.mark.parametrize("shape", [(64, 2), (8, 3, 16, 16)])
def test_instance_noise_perturbs_any_critic_input_out_of_place(shape):
    # The loop passes real and fake batches alike through perturb; it must not know which is which.
    loss = ganzoo.create_loss("instance-noise", sigma=0.1)
    x = torch.ones(shape)
    noisy = loss.perturb(x, 0.25)
    assert noisy.shape == x.shape
    assert (noisy != x).all()
    assert (x == 1).all()


@pytest.mark.parametrize("base", ["minimax", "nonsaturating"])
def test_instance_noise_uses_its_base_losses(base):
    noisy, plain = ganzoo.create_loss("instance-noise", base=base), ganzoo.create_loss(base)
    assert noisy.critic_loss(REAL, FAKE).item() == pytest.approx(plain.critic_loss(REAL, FAKE).item())
    assert noisy.generator_loss(FAKE).item() == pytest.approx(plain.generator_loss(FAKE).item())

"""The usual penalties and losses beyond the classic four, each checked against its paper's formula."""

import json
import math

import pytest
import torch
from torch import nn

import ganzoo
from ganzoo.cli import main

REAL = torch.tensor([-5.0, 1.4, 12.5, 2.7])
FAKE = torch.tensor([10.0, 4.4, -5.5, 3.6])


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def test_hinge_is_the_sngan_formula():
    loss = ganzoo.create_loss("hinge")
    expected = mean(max(0.0, 1 - s) for s in REAL.tolist()) + mean(max(0.0, 1 + s) for s in FAKE.tolist())
    assert loss.critic_loss(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)
    assert loss.generator_loss(FAKE).item() == pytest.approx(-mean(FAKE.tolist()), rel=1e-6)


def test_least_squares_is_the_lsgan_formula():
    loss = ganzoo.create_loss("least-squares")
    expected = 0.5 * mean((s - 1) ** 2 for s in REAL.tolist()) + 0.5 * mean(s**2 for s in FAKE.tolist())
    assert loss.critic_loss(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)
    assert loss.generator_loss(FAKE).item() == pytest.approx(0.5 * mean((s - 1) ** 2 for s in FAKE.tolist()), rel=1e-6)


def linear_critic(w: list[float]) -> nn.Module:
    """f(x) = w . x: its gradient is w everywhere, so both penalties have closed forms."""
    critic = nn.Linear(len(w), 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([w]))
    return critic


def test_gradient_penalty_is_lambda_times_the_squared_distance_of_the_norm_to_one():
    critic = linear_critic([3.0, 4.0])  # |w| = 5
    gp = ganzoo.create_constraint("gradient-penalty")
    assert gp.config.weight == 10.0  # the paper's lambda
    penalty = gp.penalty(lambda x: critic(x).squeeze(1), torch.randn(8, 2), torch.randn(8, 2))
    assert penalty.item() == pytest.approx(10.0 * (5 - 1) ** 2)
    penalty.backward()  # differentiable in the weights (create_graph): d/dw = 2 lambda (|w| - 1) w / |w|
    assert torch.allclose(critic.weight.grad, torch.tensor([[2 * 10 * 4 * 3 / 5, 2 * 10 * 4 * 4 / 5]]))


def test_r1_is_half_gamma_times_the_squared_gradient_norm_on_real_data():
    critic = linear_critic([3.0, 4.0])
    r1 = ganzoo.create_constraint("r1", gamma=2.0)
    penalty = r1.penalty(lambda x: critic(x).squeeze(1), torch.randn(8, 2), torch.full((8, 2), float("nan")))
    assert penalty.item() == pytest.approx(2.0 / 2 * 25)  # fake samples play no part
    quadratic = lambda x: 0.5 * x.square().sum(1)  # noqa: E731 - gradient x
    real = torch.randn(16, 3)
    expected = 1.0 * real.square().sum(1).mean()
    assert r1.penalty(quadratic, real, real).item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("critic_name,shape", [("mlp", (2,)), ("dcgan", (1, 16, 16))])
def test_spectral_norm_makes_every_layer_1_lipschitz(critic_name, shape):
    critic = ganzoo.create_critic(critic_name, sample_shape=shape)
    critic = ganzoo.create_constraint("spectral-norm").attach(critic)
    layers = [m for m in critic.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert layers and all(hasattr(m, "parametrizations") for m in layers)
    for _ in range(30):  # power iteration, one step per forward in training mode
        critic(torch.randn(4, *shape))
    for layer in layers:
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2).item()
        assert sigma == pytest.approx(1.0, abs=0.02), layer


@pytest.mark.parametrize(
    "flags",
    [
        ["--loss", "hinge"],
        ["--loss", "least-squares"],
        ["--loss", "wgan", "--constraint", "gradient-penalty", "--optimizer", "adam", "--lr", "1e-4"],
        ["--loss", "nonsaturating", "--constraint", "r1:gamma=1"],
        ["--loss", "hinge", "--constraint", "spectral-norm"],
    ],
    ids=["hinge", "least-squares", "wgan-gp", "r1", "spectral-norm"],
)
def test_each_trains_in_the_shared_loop(tmp_path, flags):
    nets = ["--generator", "mlp:width=16,depth=1", "--critic", "mlp:width=16,depth=1", "--batch-size", "16"]
    out = tmp_path / "run"
    assert main(["train", *flags, *nets, "--steps", "3", "--n-critic", "2", "--quiet", "--out", str(out)]) == 0
    generator = ganzoo.load_generator(out / "generator.safetensors")
    assert torch.isfinite(generator.sample(8)).all()
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 3 and math.isfinite(last["critic_loss"]) and math.isfinite(last["generator_loss"])

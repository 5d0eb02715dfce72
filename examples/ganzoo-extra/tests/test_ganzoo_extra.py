"""ganzoo-extra's plugins, tested against the installed distribution (`pip install .` first)."""

import pytest
import torch

import ganzoo

# DIST/NAME: these plugins, even where another distribution offers the same names.
HINGE, GP = "ganzoo-extra/extra-hinge", "ganzoo-extra/extra-gp"


@pytest.mark.parametrize(("kind", "name"), [("loss", HINGE), ("constraint", GP)])
def test_found_through_the_entry_points(kind, name):
    info = ganzoo.plugin_info(kind, name)
    assert (info.distribution, info.status) == ("ganzoo-extra", "ok")
    assert info.summary  # the class docstring's first line, which `ganzoo list` shows


def test_hinge_losses():
    loss = ganzoo.create_loss(HINGE)
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-3.0, 0.0])
    # critic: relu(1 - real) = [0, 0.5] and relu(1 + fake) = [0, 1], so 0.25 + 0.5
    assert loss.critic_loss(real, fake).item() == 0.75
    assert loss.generator_loss(fake).item() == 1.5


def test_gradient_penalty_of_a_linear_critic_and_its_gradient():
    # D(x) = w.x has gradient w at every interpolate, so the penalty is weight * (|w| - 1)^2.
    critic = torch.nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[2.0, 0.0, 0.0]]))
    gp = ganzoo.create_constraint(GP, weight=10.0)
    penalty = gp.penalty(lambda x: critic(x).squeeze(1), torch.randn(4, 3), torch.randn(4, 3))
    assert penalty.item() == pytest.approx(10.0)
    penalty.backward()  # create_graph=True lets the critic's weights get the penalty's gradient
    assert torch.allclose(critic.weight.grad, torch.tensor([[20.0, 0.0, 0.0]]))


def test_gradient_penalty_draws_one_interpolation_weight_per_sample():
    # D(x) = |x|^2 / 2 has gradient x: the penalty sees |eps_i * real_i + (1 - eps_i) * fake_i|.
    real, fake = torch.randn(64, 2), torch.zeros(64, 2)
    torch.manual_seed(0)
    eps = torch.rand(64, 1)
    expected = 10.0 * ((eps * real).norm(dim=1) - 1).pow(2).mean()
    torch.manual_seed(0)
    penalty = ganzoo.create_constraint(GP).penalty(lambda x: 0.5 * x.pow(2).sum(1), real, fake)
    assert penalty.item() == pytest.approx(expected.item())


def test_they_train_together_in_the_shared_loop(tmp_path):
    tiny = {"name": "mlp", "options": {"width": 8, "depth": 1}}
    config = {"loss": HINGE, "constraints": [GP], "generator": tiny, "critic": tiny, "steps": 2, "batch_size": 8}
    result = ganzoo.train({**config, "out": str(tmp_path / "run")}, quiet=True)
    assert result.step == 2 and result.generator_path.exists()

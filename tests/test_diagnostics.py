"""ganzoo.diagnostics on cases with known answers, and the experiment scripts in smoke mode."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import ganzoo
from ganzoo.diagnostics import (
    critic_training_trace,
    generator_grad_norm,
    load_run_checkpoint,
    mean_critic_loss,
    spearman,
    window_stats,
)

ROOT = Path(__file__).resolve().parents[1]
REAL, FAKE = (1.0, 0.0), (-1.0, 0.0)  # two point masses, separated along x


class Constant(ganzoo.Generator):
    """G(z) = W z + b with W = 0 and b = FAKE: every sample is FAKE, but W and b get gradients."""

    def __init__(self, config: ganzoo.GeneratorConfig) -> None:
        super().__init__(config)
        self.net = nn.Linear(config.latent_dim, 2)
        nn.init.zeros_(self.net.weight)
        with torch.no_grad():
            self.net.bias.copy_(torch.tensor(FAKE))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class PointMass(ganzoo.Dataset):
    """Every real sample is REAL."""

    sample_shape = (2,)

    def batches(self, batch_size, device):
        while True:
            yield torch.tensor(REAL, device=device).expand(batch_size, 2).clone()


def constant_generator() -> Constant:
    return Constant(Constant.Config(sample_shape=(2,), latent_dim=2))


def optimal_critic(sharpness: float = 100.0) -> nn.Module:
    """Logit sharpness * x: sigmoid of it is 1 on REAL and 0 on FAKE to float precision."""
    critic = nn.Linear(2, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[sharpness, 0.0]]))
        critic.bias.zero_()
    return nn.Sequential(critic, nn.Flatten(0))


def test_the_optimal_discriminator_kills_the_minimax_gradient_but_not_the_minus_log_d_one():
    generator, critic = constant_generator(), optimal_critic()
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])  # mean 0: no gradient on W
    minimax = generator_grad_norm(generator, critic, ganzoo.create_loss("minimax"), z=z)
    nonsaturating = generator_grad_norm(generator, critic, ganzoo.create_loss("nonsaturating"), z=z)
    assert minimax < 1e-30  # sigmoid(-100) = 3.7e-44: zero up to float precision
    # d/ds softplus(-s) = -sigmoid(-s) = -1 at s = -100: the gradient is that of the mean logit, 100 on the x-bias.
    assert nonsaturating == pytest.approx(100.0, rel=1e-6)
    assert all(p.grad is None for p in [*generator.parameters(), *critic.parameters()])  # nothing accumulated


def test_instance_noise_revives_the_minimax_gradient_at_the_optimal_discriminator():
    generator, critic = constant_generator(), optimal_critic()
    torch.manual_seed(0)
    noisy = ganzoo.create_loss("instance-noise", base="minimax", sigma=1.0)
    assert generator_grad_norm(generator, critic, noisy, n=4096) > 1.0


def test_a_critic_trained_from_scratch_makes_the_minimax_gradient_vanish(capsys):
    torch.manual_seed(0)
    generator = constant_generator()
    before = [p.detach().clone() for p in generator.parameters()]
    critic = nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))
    # A short second-moment memory lets Adam keep stepping as the critic's own gradient fades.
    minimax = ganzoo.create_loss("minimax")
    trace = critic_training_trace(
        generator, critic, minimax, PointMass(), 300, 100, lr=0.2, betas=(0.5, 0.9), description="critic"
    )
    assert trace.critic_steps == [0, 100, 200, 300]
    assert len(trace.grad_norms) == len(trace.critic_losses) == 4
    assert trace.grad_norms[-1] < trace.grad_norms[0] * 1e-4  # four orders of magnitude in 300 steps
    assert trace.critic_losses[-1] < trace.critic_losses[0]
    assert all(torch.equal(a, b) for a, b in zip(before, generator.parameters()))  # the generator stays frozen
    assert "critic: 100%" in capsys.readouterr().err  # the progress bar counted every critic step


def test_mean_critic_loss_of_wgan_is_minus_the_score_gap():
    generator, critic = constant_generator(), optimal_critic(sharpness=3.0)
    value = mean_critic_loss(generator, critic, ganzoo.create_loss("wgan"), PointMass().batches(8, "cpu"), batches=2)
    assert value == pytest.approx(-(3.0 - (-3.0)))  # E[f(fake)] - E[f(real)]


def test_spearman_and_window_stats_on_known_sequences():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [1, 1, 2]) == pytest.approx(math.sqrt(3) / 2)  # ties take average ranks
    assert math.isnan(spearman([1, 2, 3], [5, 5, 5]))
    with pytest.raises(ValueError, match="one length"):
        spearman([1, 2], [1, 2, 3])
    means, variances = window_stats([1, 1, 3, 5, 7], 2)  # the tail (7) is left out
    assert means.tolist() == [1.0, 4.0] and variances.tolist() == [0.0, 1.0]


def test_load_run_checkpoint_rebuilds_the_run_with_its_weights(tmp_path):
    tiny = {"name": "mlp", "options": {"width": 8, "depth": 1}}
    config = {"loss": "wgan", "constraints": ["clip:c=0.05"], "generator": tiny, "critic": tiny, "steps": 2}
    result = ganzoo.train({**config, "batch_size": 8, "out": str(tmp_path / "run")}, quiet=True)
    checkpoint = load_run_checkpoint(tmp_path / "run" / "checkpoints" / "step-0000002.safetensors")
    assert checkpoint.step == 2 and checkpoint.config["loss"]["name"] == "wgan"
    assert [c.config.c for c in checkpoint.constraints] == [0.05]
    exported = ganzoo.load_generator(result.generator_path)
    z = torch.randn(5, exported.latent_dim)
    assert torch.equal(checkpoint.generator(z), exported(z))
    assert max(p.abs().max() for p in checkpoint.critic.parameters()) <= 0.05  # clipped weights came back


SCRIPTS = {
    "exp_vanishing_gradients.py": [],
    "exp_logd_instability.py": [],
    "exp_instance_noise.py": [],
    "exp_wgan_loss.py": [],
    "exp_mode_collapse.py": ["--jobs", "1"],
    "exp_wgan_gp_figure1.py": [],
}


@pytest.mark.parametrize("script", SCRIPTS)
def test_experiment_script_runs_in_smoke_mode_and_leaves_the_docs_alone(tmp_path, script):
    page = (ROOT / "docs" / "experiments.md").read_text()
    args = ["--smoke", "--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs"), *SCRIPTS[script]]
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    name = script.removesuffix(".py").replace("_", "-")
    picture, numbers, table = (tmp_path / "out" / f"{name}.{ext}" for ext in ("png", "json", "md"))
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(numbers.read_text(), parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))
    assert table.read_text().startswith("| ")
    assert (ROOT / "docs" / "experiments.md").read_text() == page

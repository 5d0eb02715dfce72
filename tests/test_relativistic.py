"""Relativistic losses (a generator step that sees real data), R2, lazy penalties and schedules."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

import ganzoo
from ganzoo.schedule import Schedule
from ganzoo.step import critic_objective
from ganzoo.testing import temporary_distribution

TINY = {"generator": "mlp:width=16,depth=1", "critic": "mlp:width=16,depth=1", "batch_size": 16, "log_every": 1}


def scores(seed: int, n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=g) * 3, torch.randn(n, generator=g) * 3 - 1


def test_rpgan_pairs_each_real_score_with_its_fake():
    loss = ganzoo.create_loss("rpgan")
    real, fake = scores(0)
    assert loss.generator_sees_real
    torch.testing.assert_close(loss.critic_loss(real, fake), F.softplus(fake - real).mean())
    torch.testing.assert_close(loss.generator_loss(fake, real), F.softplus(real - fake).mean())
    # the pairing is by index: shuffling one side changes the loss
    assert not torch.allclose(loss.critic_loss(real, fake.flip(0)), loss.critic_loss(real, fake))
    with pytest.raises(ganzoo.UsageError, match="pairs real and fake"):
        loss.critic_loss(real, fake[:5])


def test_ragan_against_the_designs_formulas():
    loss = ganzoo.create_loss("ragan")
    real, fake = scores(1)
    critic = F.softplus(-(real - fake.mean())).mean() + F.softplus(fake - real.mean()).mean()
    generator = F.softplus(-(fake - real.mean())).mean() + F.softplus(real - fake.mean()).mean()
    torch.testing.assert_close(loss.critic_loss(real, fake), critic)
    torch.testing.assert_close(loss.generator_loss(fake, real), generator)


def test_relativistic_losses_are_stable_at_extreme_scores():
    real, fake = torch.tensor([1e4, -1e4]), torch.tensor([-1e4, 1e4])
    for name in ("rpgan", "ragan"):
        loss = ganzoo.create_loss(name)
        assert torch.isfinite(loss.critic_loss(real, fake)) and torch.isfinite(loss.generator_loss(fake, real))


class Linear(torch.nn.Module):
    """D(x) = <w, x>: its gradient is w everywhere."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) * self.w).sum(1)


def test_r2_is_r1s_formula_on_the_fakes():
    w = torch.tensor([1.0, -2.0, 0.5, 3.0])
    critic = Linear(w)
    real, fake = torch.randn(8, 2, 2), torch.randn(8, 2, 2)
    r2 = ganzoo.create_constraint("r2", gamma=0.3)
    expected = 0.3 / 2 * w.square().sum()
    torch.testing.assert_close(r2.penalty(critic, real, fake), expected)

    # a critic whose gradient depends on x: R2 sees the fakes, R1 the reals
    def square(x):
        return x.flatten(1).square().sum(1)

    r1 = ganzoo.create_constraint("r1", gamma=0.3)
    torch.testing.assert_close(r2.penalty(square, real, fake), 0.3 / 2 * (2 * fake).flatten(1).square().sum(1).mean())
    torch.testing.assert_close(r1.penalty(square, real, fake), 0.3 / 2 * (2 * real).flatten(1).square().sum(1).mean())


def test_r2_scores_fakes_under_their_own_labels():
    seen = []

    def critic(x, labels):
        seen.append(labels)
        return x.sum(1) * (labels + 1)

    real_labels, fake_labels = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    view = ganzoo.Labelled(critic, real_labels, fake_labels)
    penalty = ganzoo.create_constraint("r2", gamma=2.0).penalty(view, torch.randn(4, 3), torch.randn(4, 3))
    assert torch.equal(seen[-1], fake_labels)
    torch.testing.assert_close(penalty, torch.tensor(3 * 2.0**2))  # gradient (2, 2, 2): |g|^2 = 12, times gamma/2


@pytest.mark.parametrize("name", ["r1", "r2", "gradient-penalty"])
def test_a_lazy_penalty_counts_on_every_kth_critic_step_times_k(name):
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1), torch.nn.Flatten(0))
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    loss = ganzoo.create_loss("nonsaturating")
    eager, lazy = ganzoo.create_constraint(name), ganzoo.create_constraint(name, every=3)
    for step in range(7):
        with torch.random.fork_rng():  # the gradient penalty draws its interpolates
            value, once = critic_objective(loss, [eager], critic, real, fake, 0.0, critic_step=step)
        with torch.random.fork_rng():
            _, total = critic_objective(loss, [lazy], critic, real, fake, 0.0, critic_step=step)
        expected = value + 3 * (once - value) if step % 3 == 0 else value
        torch.testing.assert_close(total, expected)


def test_every_is_bounded():
    with pytest.raises(ganzoo.ConfigError, match="every"):
        ganzoo.create_constraint("r1", every=0)


class Recording(ganzoo.Loss):
    """rpgan that records what its generator step saw."""

    generator_sees_real = True
    seen: list = []

    def critic_loss(self, real_scores, fake_scores):
        return F.softplus(fake_scores - real_scores).mean()

    def generator_loss(self, fake_scores, real_scores):
        self.seen.append((fake_scores.detach().clone(), real_scores.clone(), real_scores.requires_grad))
        return F.softplus(real_scores - fake_scores).mean()


def test_the_generator_step_scores_the_next_real_batch(monkeypatch, tmp_path):
    """Each generator step draws one more real batch from the stream (n_critic + 1 a step); its scores
    carry no gradient, and the critic's weights get none in the generator step."""
    from ganzoo import step as step_module

    drawn = []
    original = step_module.GANStep.real_batch

    def counting(self, stream):
        batch = original(self, stream)
        drawn.append(batch[0].clone())
        return batch

    monkeypatch.setattr(step_module.GANStep, "real_batch", counting)
    with temporary_distribution(tmp_path / "site", "recording", {"ganzoo.losses": {"recording": "recording_loss:Recording"}},
                                modules={"recording_loss": _source(Recording)}):  # fmt: skip
        import recording_loss

        recording_loss.Recording.seen = []
        result = ganzoo.train({**TINY, "loss": "recording", "n_critic": 2, "steps": 3, "out": str(tmp_path / "run")}, quiet=True)
        seen = recording_loss.Recording.seen
    assert len(drawn) == 3 * 3 and len(seen) == 3
    assert all(real.shape == (16,) and not grad for _, real, grad in seen)
    assert all(not torch.equal(a, b) for a, b in zip(drawn, drawn[1:]))  # every draw a new batch
    with safe_open(result.run_dir / "checkpoints" / "step-0000003.safetensors", "pt") as checkpoint:
        metadata = checkpoint.metadata()
    assert (metadata["real_batches"], metadata["critic_updates"]) == ("9", "6")


def _source(cls) -> str:
    import inspect

    return "import torch.nn.functional as F\nimport ganzoo\n\n\n" + inspect.getsource(cls)


def test_a_third_party_relativistic_loss_trains(tmp_path):
    source = '''
import torch.nn.functional as F
import ganzoo

class Mine(ganzoo.Loss):
    """A relativistic hinge loss from a third party."""
    generator_sees_real = True
    class Config(ganzoo.Config):
        margin: float = 1.0
    def critic_loss(self, real_scores, fake_scores):
        return F.relu(self.config.margin - (real_scores - fake_scores)).mean()
    def generator_loss(self, fake_scores, real_scores):
        return F.relu(self.config.margin - (fake_scores - real_scores)).mean()
'''
    points = {"ganzoo.losses": {"rel-hinge": "rel_hinge:Mine"}}
    with temporary_distribution(tmp_path / "site", "rel-hinge", points, modules={"rel_hinge": source}):
        result = ganzoo.train({**TINY, "loss": "rel-hinge:margin=0.5", "steps": 20, "out": str(tmp_path / "run")}, quiet=True)
    assert result.step == 20 and math.isfinite(result.metrics["generator_loss"])


def test_conditional_fakes_take_the_real_batchs_labels(monkeypatch, tmp_path):
    from ganzoo import step as step_module

    pairs = []
    original = step_module.GANStep.generate

    def generate(self, z, labels):
        pairs.append(labels)
        return original(self, z, labels)

    real_labels = []
    real_batch = step_module.GANStep.real_batch

    def remembered(self, stream):
        batch = real_batch(self, stream)
        real_labels.append(batch[1])
        return batch

    monkeypatch.setattr(step_module.GANStep, "generate", generate)
    monkeypatch.setattr(step_module.GANStep, "real_batch", remembered)
    ganzoo.train({**TINY, "loss": "rpgan", "conditional": True, "steps": 2, "out": str(tmp_path / "run")}, quiet=True)
    # per step: the critic step's fakes (real labels), then the generator step's (the next real batch's)
    assert torch.equal(pairs[1], real_labels[1]) and torch.equal(pairs[3], real_labels[3])


def test_schedules_cosine_and_linear():
    cosine = Schedule.parse("cosine:0.05:0.005:20M")
    assert cosine.over == 20e6
    assert cosine(0, 1) == 0.05 and cosine(20e6, 1) == pytest.approx(0.005) and cosine(40e6, 1) == pytest.approx(0.005)
    assert cosine(10e6, 1) == pytest.approx((0.05 + 0.005) / 2)
    linear = Schedule.parse("linear:2e-4:0:run")
    assert linear(250, 1000) == pytest.approx(1.5e-4) and linear.over is None
    for bad in ("cosine:1:2", "cosine:a:2:3", "cosine:1:2:-3", "cosine:1:2:0", "step:1:2:3", "cosine:1:inf:3"):
        with pytest.raises(ValueError):
            Schedule.parse(bad)


def test_lr_decay_linear_is_the_linear_schedule(tmp_path):
    """The learning rates at every step: lr (1 - step / steps), as before the schedules existed."""
    run = ganzoo.train({**TINY, "loss": "nonsaturating", "lr": 1e-3, "lr_decay": "linear", "steps": 8,
                        "out": str(tmp_path / "run")}, quiet=True)  # fmt: skip
    rows = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["scheduled.lr_generator"] for r in rows] == pytest.approx([1e-3 * (1 - s / 8) for s in range(8)])


def test_a_schedule_is_recorded_logged_and_checked(tmp_path):
    config = {**TINY, "loss": "rpgan", "constraints": ["r1:gamma=cosine:1:0.1:run"], "betas": [0.0, "cosine:0.9:0.99:64"],
              "ema_half_life": "linear:0:500:run", "steps": 6, "out": str(tmp_path / "run")}  # fmt: skip
    run = ganzoo.train(config, quiet=True).run_dir
    saved = json.loads((run / "config.json").read_text())
    assert saved["constraints"][0]["options"]["gamma"] == "cosine:1:0.1:run"
    assert saved["betas"] == [0.0, "cosine:0.9:0.99:64"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    gamma = Schedule.parse("cosine:1:0.1:run")
    assert [r["scheduled.r1.gamma"] for r in rows] == pytest.approx([gamma(s * 16, 6 * 16) for s in range(6)])
    assert rows[-1]["scheduled.beta2"] == pytest.approx(0.99)  # 64 images: reached after 4 steps of 16
    for bad, said in [
        ({"constraints": ["r1:gamma=cosine:1:-1:run"]}, "greater than or equal to 0"),
        ({"constraints": ["r1:every=cosine:1:2:run"]}, "not a real number"),
        ({"generator": "mlp:width=linear:1:2:run"}, "not a network's"),
        ({"lr": "cosine:1e-3:-1:run"}, "at least 0"),
        ({"ema": 0.9, "ema_half_life": 100.0}, "give one"),
        ({"lr": "linear:1e-3:0:run", "lr_decay": "linear"}, "give one"),
    ]:
        with pytest.raises(ganzoo.ConfigError, match=said) as refused:
            ganzoo.train({**config, **bad, "out": str(tmp_path / "bad")}, quiet=True)
        assert "(got {" not in str(refused.value)  # a rule across settings does not echo them all


def test_resume_continues_a_schedule_bitwise(tmp_path):
    # over a number of images, not the run's: the first part's run is shorter
    config = {**TINY, "loss": "rpgan", "constraints": ["r1:gamma=cosine:1:0.1:192", "r2:gamma=0.5,every=3"],
              "lr": "cosine:1e-3:1e-4:150", "betas": [0.0, "cosine:0.9:0.99:100"], "ema_half_life": "cosine:0:200:192",
              "steps": 12, "checkpoint_every": 5}  # fmt: skip
    whole = ganzoo.train({**config, "out": str(tmp_path / "whole")}, quiet=True).run_dir
    part = ganzoo.train({**config, "steps": 5, "out": str(tmp_path / "part")}, quiet=True).run_dir
    ganzoo.train({"steps": 12}, resume=part, quiet=True)
    a, b = (load_file(run / "checkpoints" / "step-0000012.safetensors") for run in (whole, part))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    rows = [[json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()] for run in (whole, part)]
    assert [r["scheduled.r1.gamma"] for r in rows[0]] == [r["scheduled.r1.gamma"] for r in rows[1]]
    assert len(rows[0]) == 12 and rows[0][-1]["scheduled.r1.gamma"] == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 11 / 12)) / 2)


def test_the_cli_takes_schedules(tmp_path, capsys):
    from ganzoo.cli import main

    code = main([
        "train", "--loss", "rpgan", "--constraint", "r1:gamma=cosine:1:0.1:1k", "--constraint", "r2:gamma=0.1,every=2",
        "--lr", "cosine:2e-4:5e-5:run", "--betas", "0", "cosine:0.9:0.99:run", "--ema-half-life", "500",
        "--generator", "mlp:width=16,depth=1", "--critic", "mlp:width=16,depth=1", "--steps", "4", "--quiet",
        "--out", str(tmp_path / "run"),
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["lr"] == "cosine:2e-4:5e-5:run" and saved["ema_half_life"] == 500.0
    assert main(["train", "--loss", "rpgan", "--lr", "cosine:x:1:2", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "start and end must be numbers" in err and len(err.strip().splitlines()) == 1


def test_plot_draws_the_scheduled_settings(tmp_path):
    from ganzoo.cli import main
    from ganzoo.pictures import scaled

    run = ganzoo.train({**TINY, "loss": "rpgan", "constraints": ["r1:gamma=cosine:1:0.1:run"], "lr": "linear:1e-3:0:run",
                        "steps": 4, "out": str(tmp_path / "run")}, quiet=True).run_dir  # fmt: skip
    assert main(["plot", str(run), "--out", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").stat().st_size > 0
    records = [{"step": 1, "scheduled.a": 2.0, "x": 5.0}, {"step": 2, "scheduled.a": -4.0}]
    assert scaled(records, ["scheduled.a"]) == [{"step": 1, "scheduled.a": 0.5, "x": 5.0}, {"step": 2, "scheduled.a": -1.0}]


def test_the_generators_gradient_norm_of_a_relativistic_loss():
    from ganzoo.diagnostics import critic_training_trace, generator_grad_norm

    torch.manual_seed(0)
    generator = ganzoo.create_generator("mlp", sample_shape=(2,), width=16, depth=1)
    critic = ganzoo.create_critic("mlp", sample_shape=(2,), width=16, depth=1)
    loss = ganzoo.create_loss("rpgan")
    with pytest.raises(ganzoo.UsageError, match="give real samples"):
        generator_grad_norm(generator, critic, loss, n=8)
    assert generator_grad_norm(generator, critic, loss, n=8, real=torch.randn(8, 2)) > 0
    trace = critic_training_trace(generator, critic, loss, ganzoo.create_dataset("ring8"), steps=4, every=2, batch_size=8, n=8)
    assert len(trace.grad_norms) == 3 and all(g > 0 for g in trace.grad_norms)

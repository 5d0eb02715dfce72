"""Class-conditional GANs: labels from the data through the loop to the networks, the losses and the
penalties; plugins written before conditioning existed keep working; per-class pictures and metrics."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import ganzoo
from ganzoo.cli import main
from ganzoo.errors import ConfigError, UsageError
from ganzoo.evaluation import evaluate
from ganzoo.step import critic_objective
from ganzoo.testing import temporary_distribution

TINY = {"generator": "mlp:width=16,depth=1", "critic": "mlp:width=16,depth=1", "batch_size": 16, "steps": 6,
        "log_every": 2, "checkpoint_every": 3}  # fmt: skip
DIGITS = {"data": "digits", "generator": "dcgan:width=4", "critic": "dcgan:width=4", "batch_size": 16, "steps": 4}

# Network plugins as a third party wrote them before conditioning existed: no labels anywhere.
OLD_STYLE = """
import torch
from torch import nn
import ganzoo

class OldGenerator(ganzoo.Generator):
    '''A generator written against the unconditional interfaces.'''
    class Config(ganzoo.GeneratorConfig):
        latent_dim: int = 2
    def __init__(self, config):
        super().__init__(config)
        self.net = nn.Sequential(nn.Linear(config.latent_dim, 16), nn.ReLU(), nn.Linear(16, 2))
    def forward(self, z):
        return self.net(z)

class OldCritic(ganzoo.Critic):
    '''A critic written against the unconditional interfaces.'''
    def __init__(self, config):
        super().__init__(config)
        self.net = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
    def forward(self, x):
        return self.net(x).squeeze(1)

class UnlabelledRing(ganzoo.GaussianMixture):
    '''ring8 as a dataset without labels: the same points from the same random stream.'''
    class Config(ganzoo.Config):
        std: float = 0.01
    def centres(self):
        angles = torch.arange(8, dtype=torch.float64) * (2 * torch.pi / 8)
        return torch.stack([angles.cos(), angles.sin()], 1).float()
    classes = 0
"""


@pytest.fixture(scope="module")
def old_style(tmp_path_factory):
    points = {
        "ganzoo.generators": {"old": "old_style:OldGenerator"},
        "ganzoo.critics": {"old": "old_style:OldCritic"},
        "ganzoo.datasets": {"unlabelled-ring": "old_style:UnlabelledRing"},
    }
    with temporary_distribution(tmp_path_factory.mktemp("site"), "old-style", points, modules={"old_style": OLD_STYLE}):
        yield


def weights(run) -> dict[str, torch.Tensor]:
    return load_file(str(run.generator_path))


# -- the contract: labelled data, unconditional plugins unchanged -------------------------------


@pytest.mark.parametrize("name, classes", [("ring8", 8), ("grid25", 25), ("digits", 10)])
def test_labelled_datasets_stream_the_samples_of_their_unlabelled_stream_with_labels(name, classes):
    data = ganzoo.create_dataset(name)
    assert data.classes == classes
    torch.manual_seed(3)
    plain = next(data.local_batches(64, torch.device("cpu"), ganzoo.Shard(seed=5)))
    torch.manual_seed(3)
    samples, labels = next(data.labelled_batches(64, torch.device("cpu"), ganzoo.Shard(seed=5)))
    assert torch.equal(samples, plain) and labels.dtype == torch.int64 and labels.shape == (64,)
    assert 0 <= labels.min() and labels.max() < classes
    if name != "digits":  # a mixture's label is its Gaussian: the nearest centre of a point
        assert torch.equal(torch.cdist(samples, data.centres()).argmin(1), labels)


def test_a_folder_with_class_subfolders_is_labelled_like_image_folder(tmp_path):
    from PIL import Image

    for label, colour in (("cats", 0), ("dogs", 255)):
        (tmp_path / label).mkdir()
        for i in range(8):
            Image.new("L", (8, 8), colour).save(tmp_path / label / f"{i}.png")
    data = ganzoo.create_dataset("folder", path=str(tmp_path), size=8, channels=1)
    assert (data.classes, data.class_names) == (2, ["cats", "dogs"])
    images, labels = next(data.labelled_batches(16, torch.device("cpu"), ganzoo.Shard(seed=0)))
    assert torch.equal(images.flatten(1).mean(1) > 0, labels == 1)  # white images are the dogs
    Image.new("L", (8, 8)).save(tmp_path / "loose.png")  # an image outside every subfolder: no classes
    assert ganzoo.create_dataset("folder", path=str(tmp_path), size=8, channels=1).classes == 0


def test_an_unconditional_run_ignores_the_labels(old_style, tmp_path):
    """ring8 now has labels; a run without --conditional trains exactly as on the same data without them."""
    labelled = ganzoo.train({"loss": "nonsaturating", **TINY, "out": str(tmp_path / "a")}, quiet=True)
    plain = ganzoo.train({"loss": "nonsaturating", **TINY, "data": "unlabelled-ring", "out": str(tmp_path / "b")}, quiet=True)
    assert weights(labelled).keys() == weights(plain).keys()
    assert all(torch.equal(weights(labelled)[k], weights(plain)[k]) for k in weights(plain))


def test_plugins_written_before_conditioning_still_train_on_labelled_data(old_style, tmp_path):
    run = ganzoo.train({"loss": "wgan", "generator": "old", "critic": "old", **{k: TINY[k] for k in ("batch_size", "steps")},
                        "constraints": ["gradient-penalty"], "data": "ring8",
                        "out": str(tmp_path / "run")}, quiet=True)  # fmt: skip
    assert run.step == TINY["steps"] and math.isfinite(run.metrics["critic_loss"])
    generator = ganzoo.load_generator(run.generator_path)
    assert generator.classes == 0 and generator.sample(5).shape == (5, 2)


@pytest.mark.parametrize(
    "config, needle",
    [
        ({"generator": "old"}, "generator 'old' takes no labels; conditional generators: dcgan, mlp"),
        ({"critic": "old"}, "critic 'old' takes no labels; conditional critics: dcgan, maxout, mlp, pac"),
        ({"data": "unlabelled-ring"}, "--conditional needs labelled data, and 'unlabelled-ring' has no labels"),
        ({"critic": "pac:base=old"}, "critic 'old' takes no labels, so it cannot judge labelled packs"),
        ({"constraints": ["ac"]}, "constraint 'ac' needs a conditional critic with a classifier head"),
    ],
)
def test_what_cannot_condition_is_one_line(old_style, tmp_path, capsys, config, needle):
    flags = [f"--{k.removesuffix('s') if k == 'constraints' else k}={v[0] if isinstance(v, list) else v}" for k, v in config.items()]
    assert main(["train", "--loss", "nonsaturating", "--conditional", "--steps", "2", "--out", str(tmp_path / "r"), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_a_resumed_run_keeps_its_conditioning(tmp_path, capsys):
    ganzoo.train({"loss": "nonsaturating", **TINY, "conditional": True, "out": str(tmp_path / "r")}, quiet=True)
    with pytest.raises(ConfigError, match="--conditional cannot change on --resume"):
        ganzoo.train({"steps": 9, "conditional": False}, resume=tmp_path / "r", quiet=True)


# -- networks ------------------------------------------------------------------------------


def test_sample_takes_labels_and_checks_them():
    generator = ganzoo.create_generator("mlp", sample_shape=(2,), classes=3)
    torch.manual_seed(0)
    seeded = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    drawn = generator.sample(6, generator=seeded(), labels=[2] * 6)
    z = generator.latent(6, seeded())
    with torch.no_grad():
        assert torch.equal(drawn, generator(z, torch.full((6,), 2)))
    assert generator.sample(4).shape == (4, 2)  # labels drawn uniformly
    for bad, needle in (([0, 1], "must be 6 class indices.*got 2 labels"), ([0.5] * 6, "got a float"), ([3] * 6, "in 0..2.*got 3")):
        with pytest.raises(UsageError, match=needle):
            generator.sample(6, labels=bad)
    with pytest.raises(UsageError, match="unconditional: it takes no labels"):
        ganzoo.create_generator("mlp", sample_shape=(2,)).sample(2, labels=[0, 0])


@pytest.mark.parametrize("critic", ["mlp", "maxout", "dcgan"])
def test_a_projection_critic_adds_the_class_embedding_times_its_features(critic):
    shape = (1, 8, 8) if critic == "dcgan" else (2,)
    net = ganzoo.create_critic(critic, sample_shape=shape, classes=4)
    plain = ganzoo.create_critic(critic, sample_shape=shape)
    x, y = torch.randn(6, *shape), torch.tensor([0, 1, 2, 3, 0, 1])
    with torch.no_grad():
        net.embed.weight.normal_()
        h = net.features(x).flatten(1)
        expected = net.last(net.features(x)) + (net.embed(y) * h).sum(1)
        assert torch.allclose(net(x, y), expected, atol=1e-5)
    # Its layers are the unconditional critic's, drawn in the same order from the same seed.
    shared = {k: v for k, v in net.state_dict().items() if not k.startswith("embed")}
    assert shared.keys() == plain.state_dict().keys()


def test_a_pack_carries_its_labels_to_the_base_critic():
    pac = ganzoo.create_critic("pac", sample_shape=(2,), m=2, base="maxout", classes=5)
    x, y = torch.randn(8, 2), torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    with torch.no_grad():
        pac.critic.embed.weight.normal_()
        expected = pac.critic(x.reshape(4, 4), y.view(4, 2)).repeat_interleave(2)
        assert torch.equal(pac(x, y), expected)
        # a pack's projection uses the mean embedding of its labels
        h = pac.critic.features(x.reshape(4, 4))
        mean = pac.critic.embed(y.view(4, 2)).mean(1)
        assert torch.allclose(pac(x, y)[::2], pac.critic.last(h) + (mean * h).sum(1), atol=1e-5)


def test_conditional_batchnorm_gives_each_class_its_own_scale_and_shift():
    generator = ganzoo.create_generator("dcgan", sample_shape=(1, 8, 8), width=4, classes=3)
    z = torch.randn(4, generator.latent_dim)
    with torch.no_grad():
        same = generator(z, torch.tensor([1, 1, 1, 1]))
        norm = generator.net[1]
        norm.scale.weight[2] += 1
        assert torch.equal(generator(z, torch.tensor([1, 1, 1, 1])), same)  # class 2's scale: not class 1's
        assert not torch.equal(generator(z, torch.tensor([2, 2, 2, 2])), same)


# -- the loop: penalties and the classification loss see the right labels ---------------------


class Recording(ganzoo.Constraint):
    """Keeps what its hooks were given."""

    def penalty(self, critic, real, fake):
        self.critic_view = critic
        return None

    def generator_penalty(self, critic, fake):
        self.generator_view = critic
        return None


def test_a_gradient_penalty_scores_its_interpolates_under_the_pairs_labels():
    critic = ganzoo.create_critic("mlp", sample_shape=(2,), width=8, classes=3)
    with torch.no_grad():
        critic.embed.weight.normal_()
    real, fake, labels = torch.randn(6, 2), torch.randn(6, 2), torch.tensor([0, 1, 2, 2, 1, 0])
    recording, penalty = Recording(), ganzoo.create_constraint("gradient-penalty")
    loss = ganzoo.create_loss("wgan")
    torch.manual_seed(1)
    _, total = critic_objective(loss, [recording, penalty], critic, real, fake, 0.0, labels=(labels, labels))
    view = recording.critic_view
    assert isinstance(view, ganzoo.Labelled) and torch.equal(view.labels, labels) and torch.equal(view.fake_labels, labels)
    # the formula, each interpolate scored under the label its real and fake share
    torch.manual_seed(1)
    eps = torch.rand(6, 1)
    x = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x, labels).sum(), x)
    value = -(critic(real, labels).mean() - critic(fake, labels).mean())
    expected = value + 10 * (grad.norm(dim=1) - 1).square().mean()
    assert torch.allclose(total, expected, atol=1e-5)


def test_ac_gan_classifies_real_data_for_the_critic_and_fakes_for_the_generator():
    critic = ganzoo.create_critic("mlp", sample_shape=(2,), width=8, classes=3, head="ac")
    ac = ganzoo.create_constraint("ac")
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    real_labels, fake_labels = torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([2, 2, 1, 1, 0, 0])
    view = ganzoo.Labelled(critic, real_labels, fake_labels)
    assert torch.allclose(ac.penalty(view, real, fake), F.cross_entropy(critic.classify(real), real_labels))
    both = ganzoo.create_constraint("ac", fake=True).penalty(view, real, fake)
    assert torch.allclose(both, F.cross_entropy(critic.classify(real), real_labels) + F.cross_entropy(critic.classify(fake), fake_labels))
    on_fakes = ac.generator_penalty(ganzoo.Labelled(critic, fake_labels, fake_labels), fake)
    assert torch.allclose(on_fakes, F.cross_entropy(critic.classify(fake), fake_labels))
    assert torch.equal(critic(real, real_labels), critic(real, fake_labels))  # its score ignores the labels


def test_fake_labels_are_the_real_batchs_or_uniform_and_the_generator_draws_its_own(tmp_path, monkeypatch):
    from ganzoo import step

    seen = []
    real_objective = step.critic_objective

    def spy(*args, **kwargs):
        seen.append(args[8] if len(args) > 8 else kwargs.get("labels"))  # critic_objective's labels
        return real_objective(*args, **kwargs)

    monkeypatch.setattr(step, "critic_objective", spy)
    for how in ("real", "uniform"):
        seen.clear()
        ganzoo.train({"loss": "nonsaturating", **TINY, "steps": 2, "conditional": True, "fake_labels": how,
                      "out": str(tmp_path / how)}, quiet=True)  # fmt: skip
        real_labels, fake_labels = seen[-1]
        assert torch.equal(real_labels, fake_labels) == (how == "real")


# -- composition --------------------------------------------------------------------------------

COMPOSED = {
    "minimax": {"loss": "minimax"},
    "nonsaturating+r1": {"loss": "nonsaturating", "constraints": ["r1"]},
    "instance-noise": {"loss": "instance-noise"},
    "wgan+clip": {"loss": "wgan", "constraints": ["clip"]},
    "wgan+gradient-penalty+maxout": {"loss": "wgan", "constraints": ["gradient-penalty"], "critic": "maxout:width=8,pieces=2"},
    "hinge+spectral-norm": {"loss": "hinge", "constraints": ["spectral-norm"]},
    "least-squares+ema": {"loss": "least-squares", "ema": 0.9},
    "pac+gradient-penalty": {"loss": "wgan", "constraints": ["gradient-penalty"], "critic": "pac:m=2,base=mlp:width=8"},
    "ac": {"loss": "nonsaturating", "critic": "mlp:width=16,head=ac", "constraints": ["ac:fake=true"]},
    "uniform-labels": {"loss": "nonsaturating", "fake_labels": "uniform"},
    "digits+dcgan": {"loss": "nonsaturating", **DIGITS},
    "digits+dcgan+ac+bf16": {"loss": "hinge", **DIGITS, "critic": "dcgan:width=4,head=ac", "constraints": ["ac"], "precision": "bf16"},
}  # fmt: skip


@pytest.mark.parametrize("name", COMPOSED)
def test_conditional_runs_compose_with_every_loss_constraint_and_critic(tmp_path, name):
    run = ganzoo.train({**TINY, **COMPOSED[name], "conditional": True, "out": str(tmp_path / "r")}, quiet=True)
    assert run.step == (COMPOSED[name].get("steps") or TINY["steps"]) and math.isfinite(run.metrics["critic_loss"])
    generator = ganzoo.load_generator(run.generator_path)
    assert generator.classes == (10 if "digits" in name else 8)
    samples = generator.sample(4, labels=[1, 1, 2, 2])
    assert samples.shape[0] == 4 and torch.isfinite(samples).all()


def test_a_conditional_run_resumes_bitwise(tmp_path):
    spec = {"loss": "wgan", **TINY, "conditional": True, "fake_labels": "uniform", "constraints": ["gradient-penalty"]}
    whole = ganzoo.train({**spec, "out": str(tmp_path / "whole")}, quiet=True)
    ganzoo.train({**spec, "steps": 3, "out": str(tmp_path / "half")}, quiet=True)
    resumed = ganzoo.train({"steps": TINY["steps"]}, resume=tmp_path / "half", quiet=True)
    assert all(torch.equal(weights(whole)[k], weights(resumed)[k]) for k in weights(whole))


def test_compile_trains_a_conditional_run(tmp_path):
    run = ganzoo.train({"loss": "nonsaturating", **TINY, "steps": 2, "conditional": True, "compile": True,
                        "out": str(tmp_path / "r")}, quiet=True)  # fmt: skip
    assert math.isfinite(run.metrics["critic_loss"])


# -- pictures, sample and evaluate -------------------------------------------------------------


class Oracle(ganzoo.Generator):
    """A perfect conditional generator of a 2-D mixture or of digits: the class's centre plus its
    noise, or a real image of the class."""

    class Config(ganzoo.GeneratorConfig, ganzoo.ConditionalConfig):
        pass

    def __init__(self, config, centres=None, std=0.0, images=None, labels=None):
        super().__init__(config)
        self.anchor = torch.nn.Parameter(torch.zeros(()))
        self.centres, self.std, self.images, self.image_labels = centres, std, images, labels

    def forward(self, z, labels):
        if self.images is None:
            return self.centres[labels] + self.std * z[:, :2] + self.anchor
        rows = [self.images[self.image_labels == k] for k in labels.tolist()]
        return torch.stack([r[i % len(r)] for i, r in enumerate(rows)]) + self.anchor


def test_per_class_metrics_of_a_perfect_conditional_generator():
    ring = ganzoo.create_dataset("ring8")
    oracle = Oracle(Oracle.Config(sample_shape=(2,), latent_dim=2, classes=8), centres=ring.centres(), std=0.01)
    metrics = evaluate(oracle, "ring8")
    assert (metrics["own_mode"], metrics["own_mode_worst"], metrics["modes"]) == (100.0, 100.0, 8)
    assert [r["class"] for r in metrics["per_class"]] == list(range(8))
    assert all(r["high_quality"] > 95 for r in metrics["per_class"])
    swapped = Oracle(oracle.config, centres=ring.centres().roll(1, 0), std=0.01)  # class k drawn in mode k+1
    assert evaluate(swapped, "ring8")["own_mode"] == 0.0
    images, labels = ganzoo.create_dataset("digits", size=16).tensors()
    digits = Oracle(Oracle.Config(sample_shape=(1, 16, 16), classes=10), images=images, labels=labels)
    scores = evaluate(digits, "digits:size=16")
    assert scores["accuracy"] > 90 and all(r["frechet"] < 1 for r in scores["per_class"])


def test_sample_draws_the_asked_for_classes_one_row_each(tmp_path, capsys):
    run = ganzoo.train({"loss": "nonsaturating", **DIGITS, "conditional": True, "out": str(tmp_path / "r")}, quiet=True)
    from PIL import Image

    assert main(["sample", str(run.generator_path), "--classes", "0,3,7", "--out", str(tmp_path / "three.png")]) == 0
    assert main(["sample", str(run.generator_path), "--out", str(tmp_path / "all.png")]) == 0
    three, every = Image.open(tmp_path / "three.png"), Image.open(tmp_path / "all.png")
    row = (every.height - three.height) / 7  # ten rows against three, under a title of the same height
    assert row > 0 and three.height > 3 * row and every.height > 10 * row
    assert main(["sample", str(run.generator_path), "--classes", "10"]) == 2
    assert "class indices in 0..9, one per sample, as a list or an integer tensor; got 10" in capsys.readouterr().err
    assert main(["sample", "wgan-ring8", "--classes", "1"]) == 2
    assert "unconditional generator: it takes no --classes" in capsys.readouterr().err
    assert main(["evaluate", str(run.generator_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["metrics"]["per_class"]
    assert [r["class"] for r in rows] == list(range(10)) and {"accuracy", "frechet"} <= rows[0].keys()
    assert sorted((tmp_path / "r" / "samples").glob("*.png"))  # the run's own pictures, one row per class


def test_classes_are_not_a_users_option(tmp_path, capsys):
    assert main(["train", "--loss", "wgan", "--generator", "mlp:classes=4", "--out", str(tmp_path / "r")]) == 2
    assert "option 'classes' is not a user's: the loop sets it from the data in a --conditional run" in capsys.readouterr().err

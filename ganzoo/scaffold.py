"""`ganzoo plugin new`: writes a pip-installable plugin distribution that passes its own test.

The distribution is three files: pyproject.toml (with the entry point), one module with a
working minimal plugin of the chosen kind, and one pytest file. They are built in a
temporary folder beside the target and renamed into place, so nothing is half-written.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from string import Template

from . import __version__
from .errors import UsageError
from .registry import GROUPS, PLUGIN_API_VERSION

NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


@dataclass(frozen=True)
class _KindTemplate:
    plugin: str  # the module's source
    test: str  # tests of this kind's math, between the common tests
    train_role: str  # the TrainConfig entry that puts the plugin into a run


PYPROJECT = Template('''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "The ganzoo $kind plugin '$name'."
requires-python = ">=3.10"
dependencies = ["ganzoo>=$ganzoo_version"]

[project.optional-dependencies]
dev = ["pytest>=8"]

# ganzoo finds the plugin through this entry point: NAME = "module:Class".
[project.entry-points."$group"]
$name = "$module:$cls"

[tool.setuptools]
py-modules = ["$module"]
''')

TEST = Template('''\
"""The $kind plugin '$name': found through its entry point, correct, and trainable in ganzoo's loop."""

import torch

import ganzoo

# DIST/NAME picks this distribution's plugin even where another one offers the same name.
PLUGIN = "$dist/$name"


def test_it_is_found_through_its_entry_point():
    info = ganzoo.plugin_info("$kind", PLUGIN)
    assert (info.name, info.distribution, info.version) == ("$name", "$dist", "0.1.0")
    assert info.summary  # the class docstring's first line, which `ganzoo list` shows

$test

def test_it_trains_in_the_shared_loop(tmp_path):
    tiny = {"name": "mlp", "options": {"width": 8, "depth": 1}}
    # The plugin, in a run whose other parts are small built-ins.
    config = {$others, $train_role, "steps": 2, "batch_size": 8}
    result = ganzoo.train({**config, "out": str(tmp_path / "run")}, quiet=True)
    assert result.step == 2 and result.generator_path.exists()
''')

README = Template('''\
# $dist

A $kind plugin for ganzoo, the plugin-based GAN zoo for PyTorch: `$name`. Its plugin guide,
`docs/plugins.md` in ganzoo's source, says what each hook must do.

```bash
pip install -e .            # ganzoo finds it through its entry point
ganzoo show $kind $name      # its summary and options
pytest -q                   # its tests
```
''')

LICENSE = """\
MIT License (replace it if your plugin is under another licence)

Copyright (c) the authors of this plugin

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""

# The header every module shares: what it is and where to change it.
HEADER = '''\
"""The ganzoo $kind plugin '$name', written by `ganzoo plugin new` as a working example.

Replace the math with yours; keep the class docstring's first line short: `ganzoo list` shows it.
"""
'''

KINDS = {
    "loss": _KindTemplate(
        plugin='''
from pydantic import Field
from torch import Tensor

import ganzoo


class $cls(ganzoo.Loss):
    """Least-squares GAN (Mao et al. 2017): real scores regressed to a target, fake ones to 0."""

    plugin_api = "$plugin_api"  # the ganzoo plugin API versions this class is written for

    class Config(ganzoo.Config):
        target: float = Field(1.0, gt=0, description="score the critic gives real samples")

    # Recommended training settings; every one can be overridden by the user.
    defaults = ganzoo.TrainDefaults(optimizer="adam", lr=2e-4, n_critic=1)

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return 0.5 * ((real_scores - self.config.target) ** 2).mean() + 0.5 * (fake_scores**2).mean()

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return 0.5 * ((fake_scores - self.config.target) ** 2).mean()
''',
        test='''
def test_the_losses_vanish_at_their_targets():
    loss = ganzoo.create_loss(PLUGIN, target=2.0)
    assert loss.critic_loss(torch.full((4,), 2.0), torch.zeros(4)).item() == 0.0
    assert loss.generator_loss(torch.full((4,), 2.0)).item() == 0.0
    assert loss.critic_loss(torch.zeros(4), torch.zeros(4)).item() == 2.0
''',
        train_role='"loss": PLUGIN',
    ),
    "constraint": _KindTemplate(
        plugin='''
from pydantic import Field
from torch import Tensor, nn

import ganzoo


class $cls(ganzoo.Constraint):
    """Drift penalty (Karras et al. 2018): epsilon * E[D(x)^2] keeps real scores near 0."""

    plugin_api = "$plugin_api"  # the ganzoo plugin API versions this class is written for

    class Config(ganzoo.Config):
        epsilon: float = Field(1e-3, ge=0, description="weight of the penalty")

    # The other hooks, attach(critic) and after_critic_step(critic), keep the base's defaults.
    def penalty(self, critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return self.config.epsilon * critic(real).pow(2).mean()
''',
        test='''
def test_the_penalty_is_epsilon_times_the_mean_squared_real_score():
    constraint = ganzoo.create_constraint(PLUGIN, epsilon=0.5)
    critic = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.ones_(critic.weight)
    real = torch.tensor([[1.0, 1.0], [0.0, 1.0]])  # scores 2 and 1
    assert constraint.penalty(critic, real, torch.zeros_like(real)).item() == 0.5 * (4 + 1) / 2
''',
        train_role='"constraints": [PLUGIN]',
    ),
    "generator": _KindTemplate(
        plugin='''
import math

from pydantic import Field
from torch import Tensor, nn

import ganzoo


class $cls(ganzoo.Generator):
    """A one-hidden-layer perceptron generator for samples of any shape."""

    plugin_api = "$plugin_api"  # the ganzoo plugin API versions this class is written for

    # sample_shape comes from the dataset; latent_dim is an option whose default is ours to pick.
    class Config(ganzoo.GeneratorConfig):
        latent_dim: int = Field(8, gt=0, description="size of z")
        width: int = Field(64, gt=0, description="hidden units")

    def __init__(self, config: Config) -> None:
        super().__init__(config)  # sets self.latent_dim and self.sample_shape
        size = math.prod(self.sample_shape)
        self.net = nn.Sequential(nn.Linear(config.latent_dim, config.width), nn.ReLU(), nn.Linear(config.width, size))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, *self.sample_shape)
''',
        test='''
def test_samples_have_the_data_shape_and_an_export_rebuilds_it(tmp_path):
    generator = ganzoo.create_generator(PLUGIN, sample_shape=(1, 4, 4), width=16)
    assert generator.sample(3).shape == (3, 1, 4, 4)
    again = ganzoo.load_generator(ganzoo.save_generator(generator, tmp_path / "g.safetensors", PLUGIN))
    z = torch.randn(2, generator.latent_dim)
    assert torch.equal(generator(z), again(z))
''',
        train_role='"generator": PLUGIN',
    ),
    "critic": _KindTemplate(
        plugin='''
import math

from pydantic import Field
from torch import Tensor, nn

import ganzoo


class $cls(ganzoo.Critic):
    """A one-hidden-layer perceptron critic for samples of any shape."""

    plugin_api = "$plugin_api"  # the ganzoo plugin API versions this class is written for

    # sample_shape comes from the dataset.
    class Config(ganzoo.NetworkConfig):
        width: int = Field(64, gt=0, description="hidden units")

    def __init__(self, config: Config) -> None:
        super().__init__(config)  # sets self.sample_shape
        size = math.prod(self.sample_shape)
        self.net = nn.Sequential(nn.Linear(size, config.width), nn.LeakyReLU(0.2), nn.Linear(config.width, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1)).squeeze(1)  # one unbounded score per sample
''',
        test='''
def test_it_gives_one_score_per_sample():
    critic = ganzoo.create_critic(PLUGIN, sample_shape=(1, 4, 4), width=16)
    assert critic(torch.randn(3, 1, 4, 4)).shape == (3,)
''',
        train_role='"critic": PLUGIN',
    ),
    "dataset": _KindTemplate(
        plugin='''
import math
from collections.abc import Iterator

import torch
from pydantic import Field
from torch import Tensor

import ganzoo


class $cls(ganzoo.Dataset):
    """Points on a circle in 2-D with Gaussian noise."""

    plugin_api = "$plugin_api"  # the ganzoo plugin API versions this class is written for

    sample_shape = (2,)

    class Config(ganzoo.Config):
        radius: float = Field(1.0, gt=0, description="radius of the circle")
        std: float = Field(0.02, ge=0, description="std of the noise")

    def batches(self, batch_size: int, device: torch.device) -> Iterator[Tensor]:
        while True:
            # Drawn on the device from the global RNG, which checkpoints save: a resume is exact.
            angle = 2 * math.pi * torch.rand(batch_size, device=device)
            points = self.config.radius * torch.stack([angle.cos(), angle.sin()], 1)
            yield points + self.config.std * torch.randn(batch_size, 2, device=device)
''',
        test='''
def test_batches_lie_on_the_circle():
    data = ganzoo.create_dataset(PLUGIN, radius=2.0, std=0.0)
    batch = next(data.batches(5, torch.device("cpu")))
    assert batch.shape == (5, *data.sample_shape)
    assert torch.allclose(batch.norm(dim=1), torch.full((5,), 2.0))
''',
        train_role='"data": PLUGIN',
    ),
}


def new_plugin(name: str, kind: str, directory: str | Path | None = None) -> Path:
    """Write the distribution `ganzoo-NAME` for a plugin of `kind` into `directory`; returns it."""
    if not NAME.fullmatch(name):
        raise UsageError(
            f"invalid plugin name '{name}': use lowercase letters, digits and single hyphens, "
            "starting with a letter (e.g. my-loss)"
        )
    if kind not in KINDS:
        raise UsageError(f"cannot scaffold a plugin of kind '{kind}'; kinds are: {', '.join(KINDS)}")
    target = Path(directory if directory is not None else f"ganzoo-{name}").resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{target} already exists and is not an empty folder")

    module = "ganzoo_" + name.replace("-", "_")
    fields = {
        "name": name,
        "kind": kind,
        "dist": f"ganzoo-{name}",
        "module": module,
        "cls": "".join(part.capitalize() for part in name.split("-")),
        "group": GROUPS[kind],
        "ganzoo_version": __version__,
        "plugin_api": f">={PLUGIN_API_VERSION},<{PLUGIN_API_VERSION + 1}",
    }
    template = KINDS[kind]
    others = {"loss": '"loss": "nonsaturating"', "generator": '"generator": tiny', "critic": '"critic": tiny'}
    others.pop(kind, None)
    files = {
        "pyproject.toml": PYPROJECT.substitute(fields),
        f"{module}.py": Template(HEADER + template.plugin).substitute(fields),
        f"tests/test_{module}.py": TEST.substitute(
            fields, test=template.test, train_role=template.train_role, others=", ".join(others.values())
        ),
        "README.md": README.substitute(fields),
        "LICENSE": LICENSE,
    }

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        staging.chmod(0o755)  # mkdtemp makes it private
        if target.exists():
            target.rmdir()  # empty, checked above
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target

"""Measurements behind the papers' claims, for any generator / critic / loss triple.

Arjovsky & Bottou (ICLR 2017) froze a generator, trained a discriminator from scratch
against it and watched the norm of the generator's gradient: it vanishes under the
minimax cost, grows and gets noisy under -log D, and stays alive with instance noise.
Arjovsky, Chintala & Bottou (2017) compared the critic's estimate with sample quality.
The pieces to repeat that on any pair of networks:

- `generator_grad_norm`: the norm of the generator's gradient through the critic;
- `train_critic`, `mean_critic_loss`: train a critic against a frozen generator, and read
  its objective (for WGAN, minus this is the Wasserstein estimate);
- `critic_training_trace`: a fresh critic trained from scratch, the generator's gradient
  norm recorded every few critic steps;
- `spearman`, `window_stats`: the statistics the claims are stated in;
- `load_run_checkpoint`: the networks, loss and data of a `ganzoo.train` checkpoint.

A core module: plugins are built through the registry, never imported.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .checkpoint import CHECKPOINT, load_module, read_metadata, read_tensors
from .interfaces import Constraint, Dataset, Loss
from .loop import plan
from .step import critic_objective


def generator_grad_norm(
    generator: nn.Module, critic: nn.Module, loss: Loss, n: int = 256, z: Tensor | None = None, progress: float = 0.0,
    real: Tensor | None = None,
) -> float:
    """The L2 norm, over all the generator's trainable parameters, of the gradient of
    `loss.generator_loss(critic(loss.perturb(G(z), progress)))`; for a loss that compares real and
    fake in the generator step (`generator_sees_real`), of its loss against the scores of `real`.

    `z` defaults to n fresh latents. Neither network's `.grad` is touched.
    """
    if z is None:
        z = generator.latent(n)
    params = [p for p in generator.parameters() if p.requires_grad]
    scores = critic(loss.perturb(generator(z), progress)).float()
    if loss.generator_sees_real:
        if real is None:
            from .errors import UsageError

            raise UsageError(f"{type(loss).__name__} compares real and fake in the generator step: give real samples")
        with torch.no_grad():
            real_scores = critic(loss.perturb(real, progress)).float()
        value = loss.generator_loss(scores, real_scores)
    else:
        value = loss.generator_loss(scores)
    grads = torch.autograd.grad(value, params, allow_unused=True)
    norms = [g.double().norm() for g in grads if g is not None]  # double: norms near 1e-40 stay exact
    return float(torch.stack(norms).norm()) if norms else 0.0


def train_critic(
    generator: nn.Module,
    critic: nn.Module,
    loss: Loss,
    real_batches: Iterator[Tensor],
    optimizer: torch.optim.Optimizer,
    steps: int,
    constraints: Sequence[Constraint] = (),
    progress: float = 0.0,
) -> float:
    """`steps` critic updates against a frozen generator, as the training loop does them
    (loss's critic objective on perturbed inputs, constraint penalties, then their
    after-step hooks). Returns the mean critic loss of those steps (nan for none)."""
    total = 0.0
    for _ in range(steps):
        real = next(real_batches)
        with torch.no_grad():
            fake = generator(generator.latent(len(real)))
        value, objective = critic_objective(loss, constraints, critic, real, fake, progress)
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        for constraint in constraints:
            constraint.after_critic_step(critic)
        total = total + value.detach()  # a tensor: no device sync per step
    return float(total) / steps if steps else math.nan


@torch.no_grad()
def mean_critic_loss(
    generator: nn.Module, critic: nn.Module, loss: Loss, real_batches: Iterator[Tensor], batches: int = 1,
    progress: float = 0.0,
) -> float:
    """The critic loss averaged over `batches` fresh real and fake batches, without training.

    For WGAN, minus this is the critic's Wasserstein estimate; for the JS losses it is
    2 log 2 - 2 JSD when the discriminator is optimal.
    """
    values = []
    for _ in range(batches):
        real = next(real_batches)
        fake = generator(generator.latent(len(real)))
        values.append(float(critic_objective(loss, (), critic, real, fake, progress)[0]))
    return float(np.mean(values))


@dataclass
class CriticTrace:
    """What `critic_training_trace` saw: at each recorded critic step, the generator's
    gradient norm and the critic loss on one fresh batch."""

    critic_steps: list[int] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    critic_losses: list[float] = field(default_factory=list)


def critic_training_trace(
    generator: nn.Module,
    critic: nn.Module,
    loss: Loss,
    data: Dataset,
    steps: int,
    every: int,
    *,
    batch_size: int = 64,
    n: int = 64,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    constraints: Sequence[Constraint] = (),
    progress: float = 0.0,
    description: str | None = None,
) -> CriticTrace:
    """Freeze `generator`, train `critic` (normally fresh) for `steps` steps with Adam on
    the loss's critic objective, and every `every` steps (and at 0 and `steps`) record
    `generator_grad_norm` on n fresh latents: one minibatch gradient, as training sees it.

    This is the measurement of Arjovsky & Bottou (2017), Figures 2 and 3; the defaults are
    DCGAN's Adam settings. The generator's parameters are never updated. With a
    `description`, a progress bar of that name counts the critic steps.
    """
    if steps < 0 or every <= 0:
        raise ValueError(f"critic_training_trace needs steps >= 0 and every > 0, got {steps} and {every}")
    device = next(critic.parameters()).device
    real_batches = data.batches(batch_size, device)
    optimizer = torch.optim.Adam(critic.parameters(), lr=lr, betas=betas)
    trace = CriticTrace()
    done = 0
    with tqdm(total=steps, desc=description, unit="step", disable=description is None, dynamic_ncols=True) as bar:
        while True:
            trace.critic_steps.append(done)
            real = next(real_batches) if loss.generator_sees_real else None
            trace.grad_norms.append(generator_grad_norm(generator, critic, loss, n=n, progress=progress, real=real))
            trace.critic_losses.append(mean_critic_loss(generator, critic, loss, real_batches, progress=progress))
            bar.set_postfix(grad_norm=f"{trace.grad_norms[-1]:.3g}", refresh=False)
            if done == steps:
                return trace
            chunk = min(every, steps - done)
            train_critic(generator, critic, loss, real_batches, optimizer, chunk, constraints, progress)
            done += chunk
            bar.update(chunk)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation of two equal-length sequences; ties get their average
    rank. nan when either sequence is constant (no ranking to correlate)."""
    from scipy.stats import rankdata

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"spearman needs two 1-D sequences of one length >= 2, got shapes {a.shape} and {b.shape}")
    rank_a, rank_b = rankdata(a), rankdata(b)
    if rank_a.std() == 0 or rank_b.std() == 0:
        return math.nan
    return float(np.corrcoef(rank_a, rank_b)[0, 1])


def window_stats(values: Sequence[float], window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) variance of consecutive, non-overlapping windows of `window`
    values; a shorter tail is left out, so every statistic covers the same number of values."""
    if window <= 0:
        raise ValueError(f"window must be positive, got {window}")
    values = np.asarray(values, dtype=np.float64)
    windows = values[: len(values) // window * window].reshape(-1, window)
    return windows.mean(axis=1), windows.var(axis=1)


@dataclass
class RunCheckpoint:
    """The plugins of a `ganzoo.train` run, rebuilt from one checkpoint, with its weights."""

    step: int
    config: dict[str, Any]
    generator: nn.Module
    critic: nn.Module
    loss: Loss
    constraints: list[Constraint]
    data: Dataset


def load_run_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> RunCheckpoint:
    """Rebuild generator, critic (constraints attached), loss and data of a training
    checkpoint (`run_dir/checkpoints/step-*.safetensors`) and load the networks' weights.
    Optimizer and RNG states are left in the file: a diagnosis starts its own."""
    path = Path(path)
    metadata = read_metadata(path, CHECKPOINT)
    config = json.loads(metadata["config"])
    plugins = plan(config).plugins  # as the run built them, data-derived options (shape, classes) included
    data, generator, critic = (plugins[role].build() for role in ("data", "generator", "critic"))
    constraints = [plugins[role].build() for role in plugins if role.startswith("constraint.")]
    for constraint in constraints:
        critic = constraint.attach(critic)
    tensors = read_tensors(path)
    load_module(generator, "generator", tensors, path)
    load_module(critic, "critic", tensors, path)
    return RunCheckpoint(
        int(metadata["step"]), config, generator.to(device), critic.to(device),
        plugins["loss"].build(), constraints, data,
    )  # fmt: skip

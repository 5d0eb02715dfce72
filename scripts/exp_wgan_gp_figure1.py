"""Why clipped WGAN critics are weak: WGAN-GP's Figure 1 (Gulrajani et al. 2017) with ganzoo's plugins.

    python scripts/exp_wgan_gp_figure1.py        # about 10 minutes on one CPU thread

(a) Against a fixed "generator" (the real data plus Gaussian noise of std 1, as in the paper),
a WGAN critic (mlp 512 x 3, the paper's toy critic) trains for --critic-steps to near-optimality
on ring8 and grid25, once with weight clipping (c = 0.01, RMSProp 5e-5: the WGAN paper) and
once with the gradient penalty (lambda 10, Adam 1e-4, betas (0.5, 0.9): the WGAN-GP paper);
the picture shows each critic's value surface over the real points.
(b) The histogram of those critics' weights: clipping piles them at +-c.
(c) A deep critic (12 ReLU layers of 128 units) trains the same way on grid25 with clipping at
c in {0.1, 0.01, 0.001} and with the gradient penalty; the norm of the critic loss's gradient
with respect to each layer's weights, averaged over the last 100 steps, shows clipping's
gradients exploding or vanishing through the depth and the penalty's staying level.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

import ganzoo
from ganzoo.diagnostics import train_critic
from ganzoo.step import critic_objective
from ganzoo.pictures import new_figure
from shared import arguments, markdown_table, publish

NAME = "exp-wgan-gp-figure1"
DATA = ("ring8", "grid25")
#: constraint name -> (its spec, the optimizer of its paper)
RECIPES = {
    "clip": ("clip:c=0.01", lambda p: torch.optim.RMSprop(p, lr=5e-5)),
    "gradient penalty": ("gradient-penalty:weight=10", lambda p: torch.optim.Adam(p, lr=1e-4, betas=(0.5, 0.9))),
}
DEEP_C = (0.1, 0.01, 0.001)
BATCH = 256


class NoisyData(nn.Module):
    """The paper's fixed 'generator': real points plus N(0, 1) noise (its latent is that sample)."""

    def __init__(self, data: ganzoo.Dataset) -> None:
        super().__init__()
        self.stream = data.batches(BATCH, torch.device("cpu"))

    def latent(self, n: int) -> torch.Tensor:
        return next(self.stream)[:n] + torch.randn(n, 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z


def trained_critic(data_name: str, constraint: str, make_optimizer, critic_spec: str, steps: int, record_every_layer=False):
    torch.manual_seed(0)
    data = ganzoo.create_dataset(data_name)
    spec = ganzoo.PluginSpec.model_validate(critic_spec)
    critic = ganzoo.create_critic(spec.name, **spec.options, sample_shape=(2,))
    parsed = ganzoo.PluginSpec.model_validate(constraint)
    constraints = [ganzoo.create_constraint(parsed.name, **parsed.options)]
    for c in constraints:
        critic = c.attach(critic)
    optimizer, loss, fake = make_optimizer(critic.parameters()), ganzoo.create_loss("wgan"), NoisyData(data)
    real = data.batches(BATCH, torch.device("cpu"))
    norms = []
    if not record_every_layer:
        train_critic(fake, critic, loss, real, optimizer, steps, constraints)
        return critic, data, norms
    layers = [m for m in critic.modules() if isinstance(m, nn.Linear)]
    for step in range(steps):
        train_critic(fake, critic, loss, real, optimizer, 1, constraints)
        if step >= steps - 100:  # the gradient of the critic's objective at each layer, late in training
            batch = next(real)
            objective = critic_objective(loss, constraints, critic, batch, fake(fake.latent(len(batch))), 0.0)[1]
            grads = torch.autograd.grad(objective, [layer.weight for layer in layers])
            norms.append([float(g.norm()) for g in grads])
    return critic, data, np.mean(norms, axis=0).tolist()


def depth_row(label: str, norms: list[float]) -> tuple[str, ...]:
    ratio = f"{norms[0] / norms[-1]:.3g}" if norms[-1] else "none left: the output underflows to 0"
    return label, f"{norms[0]:.2e}", f"{norms[-1]:.2e}", ratio


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--critic-steps", type=int, default=5000, help="critic steps against the fixed generator")
    args = arguments(__doc__, parser)
    steps = 20 if args.smoke else args.critic_steps
    fig, axes = new_figure(nrows=3, ncols=3, figsize=(13, 12))
    numbers: dict = {"surfaces": {}, "weights": {}, "depth": {}}
    rows = []
    for col, data_name in enumerate(DATA):
        for row, (label, (constraint, make_optimizer)) in enumerate(RECIPES.items()):
            critic, data, _ = trained_critic(data_name, constraint, make_optimizer, "mlp:width=512,depth=3", steps)
            ax = axes[row, col]
            span = 1.6 if data_name == "ring8" else 5.5
            grid = torch.linspace(-span, span, 120)
            xx, yy = torch.meshgrid(grid, grid, indexing="xy")
            with torch.no_grad():
                values = critic(torch.stack([xx.flatten(), yy.flatten()], 1)).reshape(120, 120)
            ax.contourf(xx, yy, values, levels=30, cmap="viridis")
            points = next(data.batches(500, torch.device("cpu")))
            ax.scatter(points[:, 0], points[:, 1], s=2, c="white")
            ax.set_title(f"{data_name}, {label}: critic value", fontsize=9)
            ax.set_aspect("equal")
            weights = torch.cat([p.detach().flatten() for p in critic.parameters()])
            at_edges = float((weights.abs() > 0.99 * 0.01).double().mean()) if label == "clip" else None
            numbers["weights"][f"{data_name}/{label}"] = weights.tolist()[:5000]
            hist = axes[1, 2] if label == "clip" else axes[2, col]  # clipped weights live on a 100x smaller scale
            hist.hist(weights.numpy(), bins=60, alpha=0.6, label=data_name if label == "clip" else label, log=True)
            hist.set_title("clipped critics' weights (c = 0.01)" if label == "clip" else f"{data_name}: {label} critic's weights", fontsize=9)
            hist.legend(fontsize=7)
            spread = float(values.max() - values.min())
            numbers["surfaces"][f"{data_name}/{label}"] = {"value_range": spread, "share_at_clip_bounds": at_edges}
            rows.append((data_name, label, f"{spread:.3g}", f"{100 * at_edges:.1f}%" if at_edges is not None else "-"))
    depth_ax = axes[0, 2]
    depth_rows = []
    for c in DEEP_C:
        _, _, norms = trained_critic("grid25", f"clip:c={c}", RECIPES["clip"][1], "mlp:width=128,depth=12", steps, True)
        numbers["depth"][f"clip c={c}"] = norms
        depth_ax.plot(range(1, len(norms) + 1), norms, "o-", label=f"clip c={c}")
        depth_rows.append(depth_row(f"clip c={c}", norms))
    _, _, norms = trained_critic("grid25", RECIPES["gradient penalty"][0], RECIPES["gradient penalty"][1],
                                 "mlp:width=128,depth=12", steps, True)  # fmt: skip
    numbers["depth"]["gradient penalty"] = norms
    depth_ax.plot(range(1, len(norms) + 1), norms, "s-", label="gradient penalty")
    depth_rows.append(depth_row("gradient penalty", norms))
    depth_ax.set_yscale("log")
    depth_ax.set_xlabel("critic layer (input first)")
    depth_ax.set_ylabel("gradient norm of its weights")
    depth_ax.set_title("a 12-layer critic on grid25", fontsize=9)
    depth_ax.legend(fontsize=7)
    axes[2, 2].axis("off")
    table = (
        markdown_table(("data", "constraint", "range of the critic's values", "weights within 1% of +-c"), rows)
        + f"\n\nCritics: mlp 512 x 3, {steps:,} steps against the real data plus N(0, 1) noise, batch {BATCH}.\n\n"
        + markdown_table(("12-layer critic on grid25", "gradient norm, first layer", "last layer", "first / last"), depth_rows)
    )
    publish(args, NAME, fig, table, numbers, "value surfaces, weights and gradient norms of clipped and penalised WGAN critics")


if __name__ == "__main__":
    main()

"""Sampling tools: latent paths between samples (interpolation) and truncated latents.

Interpolation runs along great circles (spherical, `slerp`): a Gaussian latent's norm sits near
sqrt(latent_dim), and the straight line between two latents passes through the low-norm middle
that the generator rarely saw (White 2016, "Sampling Generative Networks").
"""

from __future__ import annotations

import torch
from torch import Tensor

from .errors import UsageError


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation from rows `a` (R, D) to rows `b` at fractions `t` (T,): (R, T, D).
    Falls back to the straight line where a and b point the same way (no circle is defined)."""
    a_unit, b_unit = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((a_unit * b_unit).sum(1).clamp(-1, 1))[:, None, None]  # (R, 1, 1)
    t = t[None, :, None]
    straight = (1 - t) * a[:, None] + t * b[:, None]
    sin = torch.sin(omega)
    curved = (torch.sin((1 - t) * omega) * a[:, None] + torch.sin(t * omega) * b[:, None]) / sin.clamp(min=1e-12)
    return torch.where(sin > 1e-6, curved, straight)


@torch.no_grad()
def interpolate(
    generator: torch.nn.Module, steps: int = 8, rows: int = 4, seed: int = 0, labels: list[int] | Tensor | None = None
) -> tuple[Tensor, Tensor | None]:
    """`rows` paths of `steps` samples each between two latents drawn from `seed`, spherically:
    (rows * steps, *sample_shape) in path order, and the labels they were drawn for. A conditional
    generator keeps one class along each path (`labels`, one per row; default: classes in turn)."""
    if steps < 2 or rows < 1:
        raise UsageError(f"an interpolation needs at least 2 steps and 1 row, got {steps} steps and {rows} rows")
    rng = torch.Generator(device=generator.device).manual_seed(seed)
    ends = generator.latent(2 * rows, rng)
    was_training = generator.training
    generator.eval()
    try:
        return _along(generator, ends, steps, rows, labels)
    finally:
        generator.train(was_training)


def _along(generator: torch.nn.Module, ends: Tensor, steps: int, rows: int, labels) -> tuple[Tensor, Tensor | None]:
    path = slerp(ends[:rows], ends[rows:], torch.linspace(0, 1, steps, device=ends.device)).reshape(rows * steps, -1)
    if not generator.classes:
        if labels is not None:
            raise UsageError("the generator is unconditional: it takes no labels")
        return generator(path), None
    from .interfaces import check_labels

    per_row = torch.arange(rows) % generator.classes if labels is None else labels
    per_row = check_labels(per_row, rows, generator.classes, generator.device)
    along = per_row.repeat_interleave(steps)
    return generator(path, along), along

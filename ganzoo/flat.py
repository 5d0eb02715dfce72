"""A small network's parameters as views into one flat tensor, and their gradients into another.

The optimizer, the gradient all-reduce and zeroing then work on one tensor instead of one
per layer: on the MLP critic of the toy data (33k parameters) RMSprop's step takes 38
instead of 97 microseconds. For large networks the per-tensor overhead is lost in the
arithmetic while adding each gradient into its view costs a pass over memory: the DCGAN
on 32x32 digits (1.7M parameters) ran 4% slower flat (scripts/bench_loop.py), so networks
above FLAT_MAX_NUMEL parameters keep their own tensors.
"""

from __future__ import annotations

import torch
from torch import nn


def _dense(p: torch.Tensor) -> bool:
    """True when p's elements fill exactly p.numel() consecutive places (contiguous or channels_last)."""
    return p.is_contiguous() or p.is_contiguous(memory_format=torch.channels_last)


#: the largest network, in parameters, that is flattened
FLAT_MAX_NUMEL = 250_000


class FlatParameters:
    """Every trainable parameter of `module` becomes a view into one tensor, keeping its memory
    layout, and its gradient a view into that tensor's gradient.

    Give the optimizer `optimized`; call `zero_grad()` before each backward and `gather_grads()`
    after it. Large networks and parameters of several dtypes or devices stay as they are
    (`optimized` is then the list of them).
    """

    def __init__(self, module: nn.Module) -> None:
        self.params = [p for p in module.parameters() if p.requires_grad]
        first = self.params[0] if self.params else None
        self.flat = 0 < sum(p.numel() for p in self.params) <= FLAT_MAX_NUMEL and all(
            p.dtype == first.dtype and p.device == first.device and _dense(p) for p in self.params
        )
        if not self.flat:
            self.optimized, self.grads = self.params, []
            return
        flat = nn.Parameter(torch.empty(sum(p.numel() for p in self.params), dtype=first.dtype, device=first.device))
        flat.grad = torch.zeros_like(flat)
        self.optimized, self.grads = [flat], []
        offset = 0
        for p in self.params:
            value = flat.data.as_strided(p.shape, p.stride(), offset)
            value.copy_(p.detach())
            p.data = value
            p.grad = flat.grad.as_strided(p.shape, p.stride(), offset)
            self.grads.append(p.grad)
            offset += p.numel()

    def zero_grad(self) -> None:
        if self.flat:
            self.optimized[0].grad.zero_()
        else:
            for p in self.params:
                p.grad = None

    def gather_grads(self) -> None:
        """Backward adds into the gradient views in place; a gradient that something replaced
        (backward under grad mode builds new ones) is copied into its place."""
        for p, view in zip(self.params, self.grads):
            if p.grad is not view:
                view.copy_(p.grad) if p.grad is not None else view.zero_()
                p.grad = view

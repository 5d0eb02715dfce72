"""What one training step computes: the critic's updates on real and generated batches, then the
generator's, for any loss, constraints and networks (Algorithm 1 of the WGAN paper, generalised).
The loop (loop.py) orders the steps and records the run: checkpoints, logs and pictures."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from .checkpoint import module_tensors, optimizer_tensors
from .config import TrainConfig
from .distributed import World
from .flat import FlatParameters
from .interfaces import Augment, Constraint, Labelled, Loss, Shard


def critic_steps(step: int, cfg: TrainConfig) -> int:
    """n_critic, or the boosted count early on and every so often (the WGAN reference schedule)."""
    boosted = step < cfg.critic_boost_first or step % cfg.critic_boost_every == 0
    return cfg.critic_boost if cfg.critic_boost and boosted else cfg.n_critic


def critic_objective(
    loss: Loss,
    constraints: Sequence[Constraint],
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    progress: float,
    autocast: contextlib.AbstractContextManager = contextlib.nullcontext(),
    fused: bool = False,
    labels: tuple[torch.Tensor, torch.Tensor] | None = None,
    augment: Augment | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the loss's critic objective, that plus every constraint's penalty): what one critic step minimises.

    Scores are computed under `autocast` and read in float32; penalties get the batches in full
    precision, augmented as the critic sees them (before the loss's perturbation, e.g. instance noise).
    `fused` scores real and fake in one forward, valid for a critic whose samples do not interact.
    `labels`, in a conditional run: (the real batch's, the fakes').
    """
    if augment is not None:
        real, fake = augment(real, progress), augment(fake, progress)
    with autocast:
        real_in, fake_in = loss.perturb(real, progress), loss.perturb(fake, progress)
        if fused:
            both = scored(critic, torch.cat([real_in, fake_in]), None if labels is None else torch.cat(labels))
            real_scores, fake_scores = both.split([len(real_in), len(fake_in)])
        else:
            real_labels, fake_labels = labels or (None, None)
            real_scores, fake_scores = scored(critic, real_in, real_labels), scored(critic, fake_in, fake_labels)
    value = loss.critic_loss(real_scores.float(), fake_scores.float())
    total = value
    judge, real, fake = penalty_view(critic, real, fake.to(real.dtype), labels)
    for constraint in constraints:
        penalty = constraint.penalty(judge, real, fake)
        if penalty is not None:
            total = total + penalty
    return value, total


def scored(critic: Callable, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """The critic's scores of x, under `labels` in a conditional run."""
    return critic(x) if labels is None else critic(x, labels)


def penalty_view(
    critic: Callable, real: torch.Tensor, fake: torch.Tensor, labels: tuple[torch.Tensor, torch.Tensor] | None = None
) -> tuple[Callable, torch.Tensor, torch.Tensor]:
    """What penalties see: the critic's own function and inputs (`Critic.penalty_view`), for a
    plain callable the callable itself; `Labelled` in a conditional run."""
    view = getattr(critic, "penalty_view", None)
    if view is not None:
        return view(real, fake) if labels is None else view(real, fake, labels)
    return (critic if labels is None else Labelled(critic, *labels)), real, fake


def grad_norm(module: nn.Module) -> torch.Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def make_optimizer(cfg: TrainConfig, params: list[nn.Parameter], lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Each optimizer's fastest implementation on the device, as measured on the CPU: fused Adam
    66 us a step against 157 us for foreach on the toy critic; RMSprop (no fused kernel) on one
    flat tensor 38 us single-tensor against 48 us foreach, on 8 tensors 97 us foreach against 115."""
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, foreach=device.type == "cuda" or len(params) > 1)
    return torch.optim.Adam(params, lr=lr, betas=cfg.betas, fused=True)


class GANStep:
    """The networks, their optimizers (and EMA) and the math of one generator step; `real_batches`
    counts the global batches of real data the critic steps drew."""

    def __init__(
        self, cfg: TrainConfig, world: World, device: torch.device, loss: Loss, constraints: list[Constraint],
        generator: nn.Module, critic: nn.Module, augment: Augment | None = None,
    ) -> None:  # fmt: skip
        self.cfg, self.world, self.device = cfg, world, device
        self.loss, self.constraints, self.augment = loss, constraints, augment
        self.generator, self.critic = generator, critic
        self.rows = Shard(world.rank, world.size).rows(cfg.batch_size)
        self.local_batchnorm = world.size > 1 and not cfg.sync_batchnorm
        self.real_batches = 0
        self.flat_g, self.flat_c = FlatParameters(self.generator), FlatParameters(self.critic)
        self.opt_g = make_optimizer(cfg, self.flat_g.optimized, cfg.lr_generator, device)
        self.opt_c = make_optimizer(cfg, self.flat_c.optimized, cfg.lr_critic, device)
        self.ema = None
        if cfg.ema:
            from timm.utils import ModelEmaV3

            # Warmed up (the decay grows from 0 towards cfg.ema), so early pictures show a generator
            # that has followed the training one, not a barely moved copy of the initial weights.
            self.ema = ModelEmaV3(self.generator, decay=cfg.ema, use_warmup=True, warmup_power=3 / 4)
        self.generator_fn, self.critic_fn = self.generator, self.critic
        self.cuda_graphs = cfg.compile and device.type == "cuda"
        if cfg.compile:
            # Static shapes: each phase (fakes without grad, fakes with grad, the critic on both batches
            # or one) compiles its own graph in the first step, and nothing recompiles after it.
            # On CUDA the graphs are replayed as CUDA graphs, so a small step costs few launches.
            mode = "reduce-overhead" if device.type == "cuda" else None
            self.generator_fn = torch.compile(self.generator, dynamic=False, mode=mode)
            self.critic_fn = torch.compile(self.critic, dynamic=False, mode=mode)
        bf16 = cfg.precision == "bf16"
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        # One critic forward for real and fake together, where the critic says its samples do not interact.
        self.fused = bool(getattr(self.critic, "independent_samples", False))

    def __call__(self, step: int, real_stream: Iterator, progress: float, log: bool) -> tuple[torch.Tensor, ...]:
        """Generator step `step`: its critic steps, each on the next real batch, then the generator's
        update. Returns the last critic loss and gradient norm, then the generator's (norms when `log`)."""
        if self.cfg.lr_decay == "linear":  # from the step alone, so a resumed run decays alike
            for opt, lr in ((self.opt_g, self.cfg.lr_generator), (self.opt_c, self.cfg.lr_critic)):
                for group in opt.param_groups:
                    group["lr"] = lr * (1 - step / self.cfg.steps)
        for _ in range(critic_steps(step, self.cfg)):
            critic_loss, critic_norm = self.critic_step(real_stream, progress, log)
        generator_loss, generator_norm = self.generator_step(step, progress, log)
        return critic_loss, critic_norm, generator_loss, generator_norm

    def fake_batch(self, draw_labels: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This process's rows of a global batch of z and, if asked, of uniform labels, drawn from the
        shared stream (so the labels, like z, do not depend on the number of processes)."""
        z = self.generator.latent(self.cfg.batch_size)
        labels = self.generator.labels(self.cfg.batch_size) if draw_labels else None
        if self.world.size == 1:
            return z, labels
        return z[self.rows], None if labels is None else labels[self.rows]

    def critic_step(self, real_stream, progress: float, log: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One critic update on the next real batch and a batch of fakes; in a conditional run the
        fakes take the real batch's labels (fake_labels=real) or uniform ones."""
        if self.cuda_graphs:  # a new step: the graphs' outputs of the last one are no longer read
            torch.compiler.cudagraph_mark_step_begin()
        real, real_labels = next(real_stream) if self.cfg.conditional else (next(real_stream), None)
        self.real_batches += 1
        z, fake_labels = self.fake_batch(self.cfg.conditional and self.cfg.fake_labels == "uniform")
        if real_labels is not None and fake_labels is None:
            fake_labels = real_labels
        with torch.no_grad(), self.autocast:
            fake = self.generate(z, fake_labels)
        labels = None if real_labels is None else (real_labels, fake_labels)
        with self.world.own_rng():
            loss, total = critic_objective(
                self.loss, self.constraints, self.critic_fn, real, fake, progress, self.autocast, self.fused, labels,
                self.augment,
            )
        self.flat_c.zero_grad()
        total.backward()
        self.flat_c.gather_grads()
        self.world.average_gradients(self.flat_c.optimized)
        norm = grad_norm(self.critic) if log else None
        self.opt_c.step()
        for constraint in self.constraints:
            constraint.after_critic_step(self.critic)
        return loss.detach(), norm

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.generator_fn(z) if labels is None else self.generator_fn(z, labels)

    def generator_step(self, step: int, progress: float, log: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One generator update on fakes of uniform labels in a conditional run: the loss's term plus
        every constraint's generator penalty (AC-GAN's class loss); the loss's term is returned."""
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        z, labels = self.fake_batch(self.cfg.conditional)
        with self.autocast:
            fake = self.generate(z, labels)
            with self.world.own_rng():
                if self.augment is not None:  # differentiably: the generator learns through it
                    fake = self.augment(fake, progress)
                scores = scored(self.critic_fn, self.loss.perturb(fake, progress), labels)
        loss = total = self.loss.generator_loss(scores.float())
        judge = self.critic if labels is None else Labelled(self.critic, labels, labels)
        for constraint in self.constraints:
            term = constraint.generator_penalty(judge, fake.float())
            if term is not None:
                total = total + term
        self.flat_g.zero_grad()
        total.backward(inputs=self.flat_g.params)  # through the critic, but no critic weight gradients
        self.flat_g.gather_grads()
        self.world.average_gradients(self.flat_g.optimized)
        norm = grad_norm(self.generator) if log else None
        self.opt_g.step()
        if self.local_batchnorm:
            self.world.average_buffers(self.generator)
            self.world.average_buffers(self.critic)
        if self.ema is not None:
            self.ema.update(self.generator, step=step)
        return loss.detach(), norm

    def sample_generator(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.generator

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The networks', the EMA's and the optimizers' tensors, and the optimizers' metadata."""
        tensors = {**module_tensors("generator", self.generator), **module_tensors("critic", self.critic)}
        if self.ema is not None:
            tensors.update(module_tensors("ema", self.ema.module))
        meta = {}
        for name, opt in (("optimizer_generator", self.opt_g), ("optimizer_critic", self.opt_c)):
            opt_tensors, meta[name] = optimizer_tensors(name, opt)
            tensors.update(opt_tensors)
        return tensors, meta

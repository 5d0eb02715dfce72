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
from .interfaces import Augment, Constraint, Labelled, LazyConfig, Loss, Shard
from .schedule import Schedule


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
    critic_step: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(the loss's critic objective, that plus every constraint's penalty): what one critic step minimises.

    Scores are computed under `autocast` and read in float32; penalties get the batches in full
    precision, augmented as the critic sees them (before the loss's perturbation, e.g. instance noise).
    `fused` scores real and fake in one forward, valid for a critic whose samples do not interact.
    `labels`, in a conditional run: (the real batch's, the fakes'). `critic_step` counts the run's
    critic steps: a lazy penalty (option `every` = K) is computed on every K-th only, times K.
    """
    if augment is not None:
        real, fake = augment(real, progress), augment(fake, progress)
    with autocast:
        real_scores, fake_scores = scored_pair(loss, critic, real, fake, progress, fused, labels)
    value = loss.critic_loss(real_scores.float(), fake_scores.float())
    total = value
    judge, real, fake = penalty_view(critic, real, fake.to(real.dtype), labels)
    for constraint in constraints:
        every = constraint.config.every if isinstance(constraint.config, LazyConfig) else 1
        if critic_step % every:
            continue
        penalty = constraint.penalty(judge, real, fake)
        if penalty is not None:
            total = total + (penalty * every if every > 1 else penalty)
    return value, total


def scored_pair(
    loss: Loss, critic: Callable, real: torch.Tensor, fake: torch.Tensor, progress: float, fused: bool,
    labels: tuple[torch.Tensor, torch.Tensor] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The critic's scores of the real and the fake batch, each through the loss's perturbation; in
    one forward when `fused`."""
    real_in, fake_in = loss.perturb(real, progress), loss.perturb(fake, progress)
    if fused:
        both = scored(critic, torch.cat([real_in, fake_in]), None if labels is None else torch.cat(labels))
        return both.split([len(real_in), len(fake_in)])
    real_labels, fake_labels = labels or (None, None)
    return scored(critic, real_in, real_labels), scored(critic, fake_in, fake_labels)


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


def make_optimizer(cfg: TrainConfig, params: list[nn.Parameter], device: torch.device) -> torch.optim.Optimizer:
    """Each optimizer's fastest implementation on the device, as measured on the CPU: fused Adam
    66 us a step against 157 us for foreach on the toy critic; RMSprop (no fused kernel) on one
    flat tensor 38 us single-tensor against 48 us foreach, on 8 tensors 97 us foreach against 115.
    Its learning rate (and betas) are set before every step, from the run's settings and schedules."""
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, foreach=device.type == "cuda" or len(params) > 1)
    return torch.optim.Adam(params, fused=True)


def run_settings(cfg: TrainConfig) -> dict[str, float | str]:
    """The run's settings that the loop sets before every step, each a number or a schedule: the
    learning rates (`--lr-decay linear` is the schedule linear:LR:0:run), Adam's betas, the EMA's."""
    rates = {name: getattr(cfg, name) for name in ("lr_generator", "lr_critic")}
    if cfg.lr_decay == "linear":
        rates = {name: f"linear:{value!r}:0:run" for name, value in rates.items()}
    betas = dict(zip(("beta1", "beta2"), cfg.betas)) if cfg.optimizer == "adam" else {}
    ema = {name: getattr(cfg, name) for name in ("ema", "ema_half_life") if getattr(cfg, name) is not None}
    return {**rates, **betas, **ema}


class GANStep:
    """The networks, their optimizers (and EMA) and the math of one generator step; `real_batches`
    counts the global batches of real data drawn (by critic steps, and by generator steps of a loss
    that sees real data), `critic_updates` the critic's steps. `scheduled` maps a plugin option
    given as a schedule, by the name its logs give it, to (the plugin's config, option, schedule)."""

    def __init__(
        self, cfg: TrainConfig, world: World, device: torch.device, loss: Loss, constraints: list[Constraint],
        generator: nn.Module, critic: nn.Module, augment: Augment | None = None,
        scheduled: dict[str, tuple[Any, str, str]] | None = None,
    ) -> None:  # fmt: skip
        self.cfg, self.world, self.device = cfg, world, device
        self.loss, self.constraints, self.augment = loss, constraints, augment
        self.generator, self.critic = generator, critic
        self.rows = Shard(world.rank, world.size).rows(cfg.batch_size)
        self.local_batchnorm = world.size > 1 and not cfg.sync_batchnorm
        self.real_batches = self.critic_updates = 0
        self.flat_g, self.flat_c = FlatParameters(self.generator), FlatParameters(self.critic)
        self.opt_g = make_optimizer(cfg, self.flat_g.optimized, device)
        self.opt_c = make_optimizer(cfg, self.flat_c.optimized, device)
        scheduled = scheduled or {}
        texts = {**run_settings(cfg), **{name: text for name, (_, _, text) in scheduled.items()}}
        self.settings = {name: Schedule.parse(v) if isinstance(v, str) else v for name, v in texts.items()}  # parsed once
        self.plugin_options = {name: (config, option) for name, (config, option, _) in scheduled.items()}
        self.ema = None
        if cfg.ema is not None or cfg.ema_half_life is not None:
            from timm.utils import ModelEmaV3

            # A fixed decay is warmed up (it grows from 0 towards cfg.ema), so early pictures show a
            # generator that has followed the training one, not a barely moved copy of the initial
            # weights; a scheduled decay or a half-life sets the decay itself at every step.
            warmup = isinstance(cfg.ema, float)
            self.ema = ModelEmaV3(self.generator, decay=cfg.ema if warmup else 0.0, use_warmup=warmup, warmup_power=3 / 4)
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
        self.apply_settings(0)

    def settings_at(self, step: int) -> dict[str, float]:
        """Every setting the loop sets, and every scheduled plugin option, at generator step `step`:
        a pure function of the step, so a resumed run continues its schedules exactly."""
        images, run_images = step * self.cfg.batch_size, self.cfg.steps * self.cfg.batch_size
        return {name: v(images, run_images) if isinstance(v, Schedule) else v for name, v in self.settings.items()}

    def scheduled_values(self, step: int) -> dict[str, float]:
        """The values of what follows a schedule at `step`, by name, as the metrics log records them."""
        values = self.settings_at(step)
        return {name: values[name] for name, v in self.settings.items() if isinstance(v, Schedule)}

    def apply_settings(self, step: int) -> None:
        """Sets the optimizers' rates and betas, the EMA's decay and the scheduled plugin options for `step`."""
        values = self.settings_at(step)
        for opt, rate in ((self.opt_g, "lr_generator"), (self.opt_c, "lr_critic")):
            for group in opt.param_groups:
                group["lr"] = values[rate]
                if "beta1" in values:
                    group["betas"] = (values["beta1"], values["beta2"])
        if self.ema is not None and not self.ema.use_warmup:
            half_life = values.get("ema_half_life")
            self.ema.decay = values["ema"] if half_life is None else 0.5 ** (self.cfg.batch_size / half_life) if half_life else 0.0
        for name, (config, option) in self.plugin_options.items():
            setattr(config, option, values[name])

    def __call__(self, step: int, real_stream: Iterator, progress: float, log: bool) -> tuple[torch.Tensor, ...]:
        """Generator step `step`: its critic steps, each on the next real batch, then the generator's
        update. Returns the last critic loss and gradient norm, then the generator's (norms when `log`)."""
        self.apply_settings(step)
        for _ in range(critic_steps(step, self.cfg)):
            critic_loss, critic_norm = self.critic_step(real_stream, progress, log)
        generator_loss, generator_norm = self.generator_step(step, real_stream, progress, log)
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
        real, real_labels = self.real_batch(real_stream)
        z, fake_labels = self.fake_batch(self.cfg.conditional and self.cfg.fake_labels == "uniform")
        if real_labels is not None and fake_labels is None:
            fake_labels = real_labels
        with torch.no_grad(), self.autocast:
            fake = self.generate(z, fake_labels)
        labels = None if real_labels is None else (real_labels, fake_labels)
        with self.world.own_rng():
            loss, total = critic_objective(
                self.loss, self.constraints, self.critic_fn, real, fake, progress, self.autocast, self.fused, labels,
                self.augment, self.critic_updates,
            )
        self.critic_updates += 1
        self.flat_c.zero_grad()
        total.backward()
        self.flat_c.gather_grads()
        self.world.average_gradients(self.flat_c.optimized)
        norm = grad_norm(self.critic) if log else None
        self.opt_c.step()
        for constraint in self.constraints:
            constraint.after_critic_step(self.critic)
        return loss.detach(), norm

    def real_batch(self, real_stream: Iterator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The stream's next real batch and, in a conditional run, its labels."""
        self.real_batches += 1
        return next(real_stream) if self.cfg.conditional else (next(real_stream), None)

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.generator_fn(z) if labels is None else self.generator_fn(z, labels)

    def generator_step(self, step: int, real_stream: Iterator, progress: float, log: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One generator update on fakes of uniform labels in a conditional run: the loss's term plus
        every constraint's generator penalty (AC-GAN's class loss); the loss's term is returned. A loss
        that compares real and fake here (`generator_sees_real`) also gets the scores of the stream's
        next real batch, seen as a critic step sees it, and the fakes then take that batch's labels."""
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        sees_real = self.loss.generator_sees_real
        real, real_labels = self.real_batch(real_stream) if sees_real else (None, None)
        z, labels = self.fake_batch(self.cfg.conditional and real_labels is None)
        labels = real_labels if real_labels is not None else labels
        real_scores = None
        with self.autocast:
            fake = self.generate(z, labels)
            with self.world.own_rng():
                if self.augment is not None:  # differentiably: the generator learns through it
                    fake = self.augment(fake, progress)
                scores = scored(self.critic_fn, self.loss.perturb(fake, progress), labels)
                if sees_real:  # no gradient reaches the critic in a generator step, nor through real data
                    with torch.no_grad():
                        seen = self.augment(real, progress) if self.augment is not None else real
                        real_scores = scored(self.critic_fn, self.loss.perturb(seen, progress), labels).float()
        if sees_real:
            loss = total = self.loss.generator_loss(scores.float(), real_scores)
        else:
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

"""The one training loop: the only place that orders the steps of training."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import __version__, run_folder
from .checkpoint import (
    CHECKPOINT,
    atomic_write,
    load_metadata_json,
    metadata_int,
    load_module,
    load_optimizer,
    read_metadata,
    read_tensors,
    remove_stale_temps,
    save_generator,
    save_tensors,
)
from .config import TrainConfig, to_config
from .distributed import LAUNCHER_REPORTS, PeerFailed, World, convert_batchnorm, restarted
from .errors import CheckpointError, ConfigError, GanzooError, Interrupted, TrainingError, UsageError
from .interfaces import Constraint, Critic, Shard, recorded_options, takes_labels
from .logger_group import LoggerGroup
from .pictures import picture_labels, save_curves, save_samples
from .precision import choose as choose_precision
from .registry import Configured, configured, plugin_info
from .step import GANStep


#: settings a resumed run cannot change, and why
FIXED_ON_RESUME = {
    "seed": "the run continues its random streams from the checkpoint",
    "optimizer": "the checkpoint holds the other optimizer's state",
    "conditional": "the checkpoint's networks were built for it",
}
#: the run folder's record of what its logged image metrics were measured under
PROTOCOL = "image-metrics-protocol.json"
#: the most generator steps a run may have: a larger step in a checkpoint is damage, not progress
MAX_STEPS = 10**9
#: networks with fewer parameters than this (both together) train on one CPU thread unless told
#: otherwise: more threads gain little (3.3 against 3.9 ms a step on the main command, 2 idle cores)
#: and two ran 2.7x slower beside a busy process (bench_loop.py --busy; OpenMP threads spin as they wait)
SMALL_NETWORKS = 1_000_000


@dataclass
class TrainResult:
    """Where a finished run put its files, and its last logged metrics."""

    run_dir: Path
    generator_path: Path
    samples_path: Path | None
    step: int
    metrics: dict[str, float]
    first_step: int = 0  # where this call started: above 0 when it resumed a run


@dataclass
class Plan:
    """A validated run: the config with every default resolved, and each plugin ready to build."""

    config: TrainConfig
    plugins: dict[str, Configured]  # role -> plugin; constraints as constraint.0, ...
    sample_shape: tuple[int, ...]


def plan(config: TrainConfig | dict[str, Any]) -> Plan:
    """Validate everything and fill in the loss's defaults, before any tensor exists."""
    cfg = to_config(config)
    plugins = {"loss": configured("loss", cfg.loss), "data": configured("dataset", cfg.data)}
    for i, spec in enumerate(cfg.constraints):
        plugins[f"constraint.{i}"] = configured("constraint", spec)
    for i, spec in enumerate(cfg.loggers):
        plugins[f"logger.{i}"] = configured("logger", spec)
    if cfg.augment is not None:
        plugins["augment"] = configured("augment", cfg.augment)
    check_each_once(cfg, plugins)
    data = plugins["data"].build()
    sample_shape = tuple(data.sample_shape)
    eval_metrics = cfg.eval_metrics or (["data"] if data.has_evaluation() else ["fid"])
    if cfg.eval_every:
        check_eval_metrics(cfg, data, eval_metrics)
    if cfg.fake_labels != "real" and not cfg.conditional:
        raise ConfigError("--fake-labels chooses the labels of a --conditional run's fakes; this run is unconditional")
    from_data: dict[str, Any] = {"sample_shape": sample_shape}
    for role in ("generator", "critic"):
        for name in sorted(set(getattr(cfg, role).options) & {"sample_shape", "classes"}):
            when = " in a --conditional run" if name == "classes" else ""
            raise ConfigError(f"--{role} option '{name}' is not a user's: the loop sets it from the data{when}")
    if cfg.conditional:
        from_data["classes"] = conditional_classes(cfg, data)
    for role in ("generator", "critic"):
        plugins[role] = configured(role, getattr(cfg, role), **from_data)
    loss_cls = plugins["loss"].cls
    defaults = loss_cls.defaults
    lr = cfg.lr or defaults.lr
    filled = {
        "batch_size": cfg.batch_size or defaults.batch_size,
        "n_critic": cfg.n_critic or defaults.n_critic,
        "critic_boost": cfg.critic_boost if cfg.critic_boost is not None else (defaults.critic_boost or 0),
        "critic_boost_first": cfg.critic_boost_first if cfg.critic_boost_first is not None else defaults.critic_boost_first,
        "critic_boost_every": cfg.critic_boost_every or defaults.critic_boost_every,
        "optimizer": cfg.optimizer or defaults.optimizer,
        "lr": lr,
        "lr_generator": cfg.lr_generator or lr,
        "lr_critic": cfg.lr_critic or lr,
        "betas": cfg.betas or defaults.betas,
        "eval_metrics": eval_metrics,
    }
    # Record each plugin's full options (defaults included, data-derived shape left out).
    # Scheduled options are recorded as their schedules.
    specs = {
        role: {"name": getattr(cfg, role).name,
               "options": {**recorded_options(plugins[role].config, set(from_data)), **plugins[role].scheduled}}
        for role in ("loss", "data", "generator", "critic")
    }  # fmt: skip
    for field, role in (("constraints", "constraint"), ("loggers", "logger")):
        specs[field] = [
            {"name": spec.name, "options": {**plugins[f"{role}.{i}"].config.model_dump(), **plugins[f"{role}.{i}"].scheduled}}
            for i, spec in enumerate(getattr(cfg, field))
        ]
    if cfg.augment is not None:
        augment = plugins["augment"]
        specs["augment"] = {"name": cfg.augment.name, "options": {**augment.config.model_dump(mode="json"), **augment.scheduled}}
    return Plan(to_config({**cfg.model_dump(), **filled, **specs}), plugins, sample_shape)


def check_each_once(cfg: TrainConfig, plugins: dict[str, Configured]) -> None:
    """Each constraint and logger takes part once, by whatever name it is given (clip, ganzoo/clip)."""
    for field, role in (("constraints", "constraint"), ("loggers", "logger")):
        seen: dict[type, str] = {}
        for i, spec in enumerate(getattr(cfg, field)):
            cls = plugins[f"{role}.{i}"].cls
            if cls in seen:
                raise ConfigError(f"{role}s '{seen[cls]}' and '{spec.name}' are one plugin, named twice; it takes part "
                                  "once (give all its options in one)")  # fmt: skip
            seen[cls] = spec.name


def check_eval_metrics(cfg: TrainConfig, data: Any, wanted: list[str]) -> None:
    """--eval-every's measures exist for this data: its own evaluation, image metrics for images."""
    if "data" in wanted and not data.has_evaluation():
        raise ConfigError(f"--eval-metrics data: dataset '{cfg.data.name}' has no evaluation of its own; "
                          "image data has fid, kid, is and pr")  # fmt: skip
    images = [m for m in wanted if m != "data"]
    if images and len(data.sample_shape) != 3:
        raise ConfigError(f"--eval-metrics {','.join(images)} are image metrics; '{cfg.data.name}' is not image data")


def conditional_classes(cfg: TrainConfig, data: Any) -> int:
    """The classes a --conditional run conditions on; one line when the data or a network cannot."""
    from .registry import get_class, list_plugins

    if not data.classes:
        raise ConfigError(f"--conditional needs labelled data, and '{cfg.data}' has no labels")
    for role in ("generator", "critic"):
        if not takes_labels(get_class(role, getattr(cfg, role).name)):
            able = [i.name for i in list_plugins(role) if i.status == "ok" and takes_labels(get_class(role, i.qualified_name))]
            raise ConfigError(
                f"--conditional: {role} '{getattr(cfg, role).name}' takes no labels; conditional {role}s: {', '.join(able)}"
            )
    return data.classes


def choose_threads(cfg: TrainConfig, *networks: nn.Module) -> int:
    """Set and return this process's CPU threads: the config's, else OMP_NUM_THREADS's (torch
    reads it), else one for small networks and torch's choice for larger ones."""
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    elif "OMP_NUM_THREADS" not in os.environ:
        if sum(p.numel() for net in networks for p in net.parameters()) < SMALL_NETWORKS:
            torch.set_num_threads(1)
    return torch.get_num_threads()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' was asked for, but this torch sees no CUDA device (use --device cpu)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"device '{name}' does not exist; this machine has {torch.cuda.device_count()} CUDA devices")
    return device


def default_run_dir(cfg: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.loss.name.replace('/', '_')}-{cfg.data.name.replace('/', '_')}-{stamp}"


def checkpoint_name(step: int) -> str:
    return f"step-{step:07d}.safetensors"


def checkpoints_in(run_dir: Path) -> list[Path]:
    """The run's checkpoints, oldest first: files named exactly as the loop names them, so rotation
    and resume never take a user's `step-best.safetensors` (or anything else) for one."""
    steps = {}
    for path in (run_dir / "checkpoints").glob("step-*.safetensors"):
        digits = path.name.removeprefix("step-").removesuffix(".safetensors")
        if digits.isdecimal() and digits.isascii() and path.name == checkpoint_name(int(digits)):
            steps[path] = int(digits)
    return sorted(steps, key=steps.get)  # by number: step 10,000,000 has one digit more


class _StopFlag:
    """Turns Ctrl-C into a flag the loop checks between steps, so a checkpoint is always whole.

    One process: a second Ctrl-C stops at once. Several: every process stops at the same step
    (the loop agrees on the flag at its sync points), and SIGTERM counts too, since torchrun
    passes a Ctrl-C on to its workers as a second signal, and schedulers stop jobs with SIGTERM.
    """

    def __init__(self, several: bool) -> None:
        self.raised = False
        self.several = several

    def __call__(self, signum: int, frame: Any) -> None:
        if self.raised and not self.several:
            raise KeyboardInterrupt
        self.raised = True

    @contextlib.contextmanager
    def installed(self):
        signals = [signal.SIGINT, signal.SIGTERM] if self.several else [signal.SIGINT]
        try:
            previous = [signal.signal(s, self) for s in signals]
        except ValueError:  # not the main thread: leave the signals alone
            yield self
            return
        try:
            yield self
        finally:
            for s, handler in zip(signals, previous):
                signal.signal(s, handler)


class Trainer:
    """Holds the state of one run; `run()` is the loop."""

    def __init__(
        self, plan_: Plan, run_dir: Path, quiet: bool = False, world: World | None = None,
        on_evaluation: Callable[[int, dict[str, float]], bool] | None = None, evaluates: bool = True,
    ) -> None:  # fmt: skip
        """`evaluates` False: the run has no step left (a finished run resumed), so its image metrics'
        network is neither fetched nor built."""
        self.plan = plan_
        self.on_evaluation = on_evaluation
        self.cfg = cfg = plan_.config
        self.run_dir = run_dir
        self.world = world = world or World()
        self.quiet = quiet or not world.main
        self.device = world.device or resolve_device(cfg.device)
        self.step = 0

        plugins = plan_.plugins
        self.loss = plugins["loss"].build()
        self.augment = plugins["augment"].build() if "augment" in plugins else None
        self.constraints = [plugins[role].build() for role in plugins if role.startswith("constraint.")]
        self.data = plugins["data"].build()
        # Loggers live where files are written: rank 0.
        loggers = {spec.name: plugins[f"logger.{i}"].build() for i, spec in enumerate(cfg.loggers)} if world.main else {}
        self.loggers = LoggerGroup(loggers)
        torch.manual_seed(cfg.seed)
        world.seed_own_rng(cfg.seed)
        generator, critic = plugins["generator"].build(), plugins["critic"].build()
        check_critic_batch(cfg, world, critic)
        for constraint in self.constraints:
            critic = constraint.attach(critic)
        if cfg.conditional and not getattr(critic, "scores_labels", True) and not any(c.teaches_labels for c in self.constraints):
            raise ConfigError(
                f"--conditional: critic '{cfg.critic.name}' scores samples without their labels (a classifier head) and "
                "no constraint teaches it the classes (add --constraint ac): the run would learn nothing of them"
            )
        if world.main:
            warn_coupled_penalties(cfg, self.constraints, critic)
        if world.size > 1 and cfg.sync_batchnorm:
            generator, critic = convert_batchnorm(generator), convert_batchnorm(critic)
        self.local_batchnorm = world.size > 1 and not cfg.sync_batchnorm
        self.generator, self.critic = generator.to(self.device), critic.to(self.device)
        precision, self.precision_reason = choose_precision(cfg.precision, self.device, plugins["generator"].cls, plugins["critic"].cls)
        # rank 0 decides, so processes on different CPUs compute alike; config.json records the choice
        self.cfg = cfg = cfg.model_copy(update={"precision": world.broadcast_text(precision)})
        self.threads = choose_threads(cfg, self.generator, self.critic)
        self.extractor = None  # the image metrics' network, its weights checked (or fetched) before the run starts
        self.image_metrics = [m for m in cfg.eval_metrics if m != "data"] if cfg.eval_every and evaluates else []
        if self.image_metrics:
            from .image_metrics import check_fid_samples, inception

            self.extractor = inception(self.device, quiet=self.quiet)
            if "fid" in self.image_metrics:
                check_fid_samples(cfg.eval_n, self.extractor.dims)  # said before the run starts, not at its first evaluation
            refusal = ""
            if world.main:  # rank 0 fetches the weights into the cache, where the others read them
                try:
                    self.extractor.prepare()
                except GanzooError as exc:
                    refusal = str(exc)
            refusal = world.broadcast_text(refusal)
            if refusal:
                raise UsageError(refusal)
        world.broadcast_module(self.generator)
        world.broadcast_module(self.critic)
        if len(plan_.sample_shape) == 3:  # convolutions run faster channels-last, on the CPU too (20% here)
            self.generator.to(memory_format=torch.channels_last)
            self.critic.to(memory_format=torch.channels_last)
        built = {"loss": self.loss, "augment": self.augment, **{f"constraint.{i}": c for i, c in enumerate(self.constraints)}}
        scheduled = {
            f"{plugins[role].name}.{option}": (plugin.config, option, text)
            for role, plugin in built.items() if plugin is not None for option, text in plugins[role].scheduled.items()
        }  # fmt: skip
        self.gan = GANStep(
            cfg, world, self.device, self.loss, self.constraints, self.generator, self.critic, self.augment, scheduled
        )
        self.cuda_rng = self.device.type == "cuda"

    # -- checkpoints ---------------------------------------------------------------------------

    def plugin_versions(self) -> dict[str, dict[str, str]]:
        specs = {"loss": self.cfg.loss, "data": self.cfg.data, "generator": self.cfg.generator, "critic": self.cfg.critic}
        specs.update({f"constraint.{i}": s for i, s in enumerate(self.cfg.constraints)})
        if self.cfg.augment is not None:
            specs["augment"] = self.cfg.augment
        kinds = {"data": "dataset"}
        out = {}
        for role, spec in specs.items():
            info = plugin_info(kinds.get(role, role.split(".")[0]), spec.name)
            out[role] = {"name": info.name, "distribution": info.distribution, "version": info.version}
        return out

    def rng_layout(self) -> dict[str, torch.Size]:
        """The shape of each RNG state this run keeps: the CPU's and, on CUDA, the device's."""
        layout = {"cpu": torch.get_rng_state().shape}
        if self.cuda_rng:
            layout["cuda"] = torch.cuda.get_rng_state(self.device).shape
        return layout

    def rng_tensors(self) -> dict[str, torch.Tensor]:
        """The shared RNG state and, with several processes, every process's own stream (a collective)."""
        tensors = {"rng.cpu": torch.get_rng_state()}
        if self.cuda_rng:
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        for i, state in enumerate(self.world.own_rng_states()):
            for rank, part in enumerate(self.world.gather(state)):
                tensors[f"rng.rank{rank}.{('cpu', 'cuda')[i]}"] = part
        return tensors

    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors, meta = self.gan.state_tensors()
        return {**tensors, **self.rng_tensors()}, meta

    def save_checkpoint(self) -> Path | None:
        """Every process takes part (the RNG states are gathered); rank 0 alone writes."""
        tensors, meta = self.state_tensors()
        if not self.world.main:
            return None
        metadata = {
            "format": CHECKPOINT,
            "step": str(self.step),
            "real_batches": str(self.gan.real_batches),
            "critic_updates": str(self.gan.critic_updates),
            "world_size": str(self.world.size),
            "config": self.cfg.model_dump_json(),
            "ganzoo_version": __version__,
            "plugins": self.plugin_versions(),
            **meta,
        }
        path = save_tensors(self.run_dir / "checkpoints" / checkpoint_name(self.step), tensors, metadata)
        for old in checkpoints_in(self.run_dir)[: -self.cfg.keep_checkpoints]:
            old.unlink()
        return path

    def load_checkpoint(self, path: Path, metadata: dict[str, str]) -> None:
        """Continue from `path`: every tensor and number in it is checked before the run uses it."""
        self.step = metadata_int(metadata, "step", path, 0, MAX_STEPS)
        if path.name != checkpoint_name(self.step):
            raise CheckpointError(f"{path}: its metadata says step {self.step}, its name another")
        gan = self.gan
        gan.real_batches = metadata_int(metadata, "real_batches", path, 0, MAX_STEPS * 10**4, default=0)
        # written since losses may draw real data in generator steps; before, every real batch was a critic step's
        gan.critic_updates = metadata_int(metadata, "critic_updates", path, 0, MAX_STEPS * 10**4, default=gan.real_batches)
        saved_size = metadata_int(metadata, "world_size", path, 1, 10**6, default=1)
        tensors = read_tensors(path, self.device)
        load_module(self.generator, "generator", tensors, path)
        load_module(self.critic, "critic", tensors, path)
        if gan.ema is not None:
            load_module(gan.ema.module, "ema", tensors, path)
        # The generator's optimizer made one update a step, the critic's one for each real batch.
        updates = {"optimizer_generator": self.step, "optimizer_critic": gan.critic_updates}
        for name, opt in (("optimizer_generator", gan.opt_g), ("optimizer_critic", gan.opt_c)):
            load_optimizer(opt, name, tensors, load_metadata_json(metadata, name, path, dict), path, updates[name])
        gan.apply_settings(self.step)  # the run's config and schedules, not the checkpoint's, set the hyperparameters
        for kind, expected in self.rng_layout().items():
            state = tensors.get(f"rng.{kind}")
            if state is None or state.dtype != torch.uint8 or state.shape != expected:
                raise CheckpointError(f"{path}: its RNG state rng.{kind} is missing or not {expected[0]} bytes")
        torch.set_rng_state(tensors["rng.cpu"].cpu())
        if self.cuda_rng:
            torch.cuda.set_rng_state(tensors["rng.cuda"].cpu(), self.device)
        own = [tensors.get(f"rng.rank{self.world.rank}.{kind}") for kind in self.rng_layout()]
        if saved_size == self.world.size > 1:
            if not all(
                t is not None and t.dtype == torch.uint8 and t.shape == shape
                for t, shape in zip(own, self.rng_layout().values())
            ):
                raise CheckpointError(f"{path}: the RNG state of process {self.world.rank} is missing or damaged")
            self.world.load_own_rng_states(own)
        elif saved_size != self.world.size:
            self.world.seed_own_rng(self.cfg.seed + self.step)
            if self.world.main:
                print(
                    f"ganzoo: {path} was written by {saved_size} processes and this run has {self.world.size}: "
                    "it continues, but not bitwise as it would have with the same number",
                    file=sys.stderr,
                )

    # -- the loop ------------------------------------------------------------------------------

    def picture(self, fixed: tuple[torch.Tensor, torch.Tensor | None], reference: torch.Tensor | None, metrics_path: Path) -> Path:
        """The samples of the fixed z (and labels), and the curves of every metric so far; both go to the loggers."""
        generator = self.gan.sample_generator()
        was_training = generator.training
        generator.eval()
        with torch.no_grad():
            fake = generator(*[t for t in fixed if t is not None])
        generator.train(was_training)
        path = self.run_dir / "samples" / f"step-{self.step:07d}.png"
        which = ", EMA generator" if self.gan.ema is not None else ""
        samples = save_samples(path, fake, reference, title=f"{self.objective()}, step {self.step:,}{which}", labels=fixed[1])
        records = [json.loads(line) for line in metrics_path.read_text().splitlines()]
        curves = save_curves(self.run_dir / "curves.png", {self.run_dir.name: records}) if records else None
        for name, written in (("samples", samples), ("curves", curves)):
            if written is not None:
                self.loggers.log_picture(self.step, name, written)
        return samples

    def prepare_files(self, metrics_path: Path) -> tuple[tuple[torch.Tensor, torch.Tensor | None], torch.Tensor | None]:
        """Rank 0's files of a starting run; the fixed (z, labels) and real points its pictures show."""
        for folder in (self.run_dir, self.run_dir / "checkpoints", self.run_dir / "samples"):
            remove_stale_temps(folder)  # left by a killed run; ours are made anew
        (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
        atomic_write(self.run_dir / "config.json", lambda tmp: tmp.write_text(self.cfg.model_dump_json(indent=2)))
        if self.image_metrics:  # what the logged FID and its kin were measured under, beside them
            from .image_metrics import protocol, protocol_line

            measured = protocol(self.cfg.data, self.data, self.cfg.eval_n, self.cfg.eval_n, self.extractor)
            atomic_write(self.run_dir / PROTOCOL, lambda tmp: tmp.write_text(json.dumps(measured, indent=2)))
            if not self.quiet:
                print(f"ganzoo: {', '.join(self.image_metrics)} every {self.cfg.eval_every:,} steps, {protocol_line(measured)}")
        self.truncate_metrics(metrics_path)
        # Drawn without touching the training RNG.
        with torch.random.fork_rng(devices=[self.device] if self.cuda_rng else []):
            torch.manual_seed(self.cfg.seed + 1)
            points = len(self.plan.sample_shape) == 1
            labels = picture_labels(self.generator.classes, points).to(self.device) if self.cfg.conditional else None
            fixed_z = self.generator.latent(1000 if points else 64 if labels is None else len(labels))
            reference = next(self.data.batches(1000, self.device)) if self.plan.sample_shape == (2,) else None
        return (fixed_z, labels), reference

    def run(self) -> TrainResult:
        cfg, device, main = self.cfg, self.device, self.world.main
        self.first_step = self.step
        metrics_path = self.run_dir / "metrics.jsonl"
        last: dict[str, float] = {}
        samples_path = None
        stop = _StopFlag(several=self.world.size > 1)
        stopping = False
        if not self.quiet:
            print(self.first_line(), flush=True)
        with contextlib.ExitStack() as stack:
            self.loggers.start(self.run_dir, self.cfg.model_dump(mode="json"))  # one that cannot start: no files
            stack.callback(self.loggers.close)
            fixed, reference = self.prepare_files(metrics_path) if main else (None, None)
            shard = Shard(self.world.rank, self.world.size, cfg.seed, self.gan.real_batches)
            draw = self.data.labelled_batches if cfg.conditional else self.data.local_batches
            stream = draw(cfg.batch_size, device, shard)
            log_file = stack.enter_context(metrics_path.open("a")) if main else None
            bar = stack.enter_context(contextlib.closing(self.progress_bar()))
            stack.enter_context(stop.installed())
            interval_start, interval_steps = _clocks(), 0
            while self.step < cfg.steps and not stopping:
                progress = self.step / cfg.steps
                evaluate = bool(cfg.eval_every) and ((self.step + 1) % cfg.eval_every == 0 or self.step + 1 == cfg.steps)
                log = evaluate or (self.step + 1) % cfg.log_every == 0 or self.step + 1 == cfg.steps
                critic_loss, critic_norm, generator_loss, generator_norm = self.gan(self.step, stream, progress, log)
                self.step += 1
                interval_steps += 1
                bar.update(1)
                checkpoint_due = self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps
                if log or checkpoint_due:
                    # The only host-device sync, and the processes' only agreement: losses (means over
                    # processes) and whether any process was asked to stop.
                    flag = torch.tensor(float(stop.raised), device=device)
                    *values, stop_votes = self.world.mean(torch.stack([critic_loss, generator_loss, flag])).tolist()
                    self.check_finite(values)
                    stopping = stop_votes > 0
                if self.world.size == 1:
                    stopping = stop.raised
                if log:
                    now = _clocks()
                    wall, cpu = ((b - a) / interval_steps for a, b in zip(interval_start, now))
                    last = self.record(values, critic_norm, generator_norm, wall, cpu)
                    if evaluate:
                        last.update(self.evaluation())
                        now = _clocks()  # the evaluation's time is not a step's
                    if main:
                        log_file.write(json.dumps(last) + "\n")
                        log_file.flush()
                    self.loggers.log_metrics(self.step, last)
                    if evaluate and self.on_evaluation is not None and self.on_evaluation(self.step, last):
                        stopping = True  # the caller (a study's pruner) stops the run here, resumable
                    bar.set_postfix({k: f"{last[k]:.4g}" for k in ("critic_loss", "generator_loss", "wasserstein") if k in last})
                    interval_start, interval_steps = now, 0
                if main and (self.step % cfg.sample_every == 0 or self.step == cfg.steps):
                    samples_path = self.picture(fixed, reference, metrics_path)
                if checkpoint_due:
                    self.save_checkpoint()
            if stopping:  # still under the stop handler: a second signal (the launcher's death, torchrun's) waits
                self.save_checkpoint()
                raise Interrupted(f"interrupted at step {self.step}; resume with --resume {self.run_dir}")
        generator_path = self.export() if main else self.run_dir / "generator.safetensors"
        return TrainResult(self.run_dir, generator_path, samples_path, self.step, last, self.first_step)

    def objective(self) -> str:
        """'wgan + clip:c=0.01 on ring8, GENERATOR / CRITIC' with their options: what the pictures' titles name."""
        cfg = self.cfg
        terms = " + ".join(str(s) for s in [cfg.loss, *cfg.constraints])
        return f"{terms} on {cfg.data.name}, {cfg.generator} / {cfg.critic}"

    def evaluation(self) -> dict[str, float]:
        """What --eval-metrics asks of the generator now (its EMA copy with --ema): the data's own
        evaluation, as `ganzoo evaluate` scores the generator (seed 0), and the image metrics."""
        scores = self.image_scores() if self.image_metrics else {}
        if "data" in self.cfg.eval_metrics and self.world.main:
            from .evaluation import own_evaluation

            generator = self.gan.sample_generator()
            was_training = generator.training
            own = own_evaluation(generator.eval(), self.data, str(self.cfg.data))
            generator.train(was_training)
            # a record holds finite numbers (strict JSON): per-class lists and an infinite KL stay out
            scores.update({k: v for k, v in own.items() if isinstance(v, (int, float)) and math.isfinite(v)})
        return scores

    def image_scores(self) -> dict[str, float]:
        """The image metrics of the generator (its EMA copy with --ema) now: every process draws its
        rows of one fixed global set of latents, the features are gathered in that order, and the
        scores are those of the whole set whatever the number of processes (to float rounding)."""
        from .image_metrics import features, metrics_from_features, real_features

        cfg = self.cfg
        with torch.random.fork_rng(devices=[self.device] if self.cuda_rng else []):
            torch.manual_seed(cfg.seed + 2)  # the same latents at every evaluation, none drawn from the run's stream
            rows = Shard(self.world.rank, self.world.size).rows(cfg.eval_n)
            z = self.generator.latent(cfg.eval_n)[rows]
            labels = self.generator.labels(cfg.eval_n)[rows] if cfg.conditional else None
        generator = self.gan.sample_generator()
        was_training = generator.training
        generator.eval()
        inputs = zip(z.split(cfg.batch_size), labels.split(cfg.batch_size)) if labels is not None else ((c,) for c in z.split(cfg.batch_size))
        batches = (generator(*chunk) for chunk in inputs)
        fake, logits = features(batches, len(z), self.extractor, "evaluating", quiet=True)
        generator.train(was_training)
        fake, logits = torch.cat(self.world.gather(fake)), torch.cat(self.world.gather(logits))
        if not self.world.main:  # rank 0 scores, and alone reads or writes the real data's cached features
            return {}
        real, _ = real_features(cfg.data, self.data, cfg.eval_n, cfg.seed, self.extractor, cfg.batch_size, quiet=True)
        return metrics_from_features(fake, real, logits, self.image_metrics)

    def first_line(self) -> str:
        """What this run is, where it runs and where it writes: the first thing a user reads."""
        cfg = self.cfg
        where = f"{self.device.type}, {self.threads} thread{'s' if self.threads > 1 else ''}"
        if self.world.size > 1:
            where += f" x {self.world.size} processes"
        start = f" from step {self.step:,}" if self.step else ""
        if cfg.precision == "bf16":
            where += f", bf16 ({self.precision_reason})" if self.precision_reason else ", bf16"
        return f"ganzoo: {self.objective()}, {cfg.steps:,} steps{start}, batch {cfg.batch_size}, {where} -> {self.run_dir}"

    def record(self, values: list[float], critic_norm, generator_norm, seconds: float, cpu_seconds: float) -> dict[str, float]:
        """A metrics record: losses, gradient norms, times, and the values of what follows a schedule
        (as of the step just taken)."""
        critic_loss, generator_loss = values
        norms = torch.stack([critic_norm.to("cpu"), generator_norm.to("cpu")]).tolist()
        row = {"step": self.step, "critic_loss": critic_loss, "generator_loss": generator_loss}
        if self.loss.estimates_wasserstein:
            row["wasserstein"] = -critic_loss
        row.update({"grad_norm_critic": norms[0], "grad_norm_generator": norms[1], "sec_per_step": seconds,
                    "cpu_sec_per_step": cpu_seconds})  # fmt: skip
        row.update({f"scheduled.{name}": value for name, value in self.gan.scheduled_values(self.step - 1).items()})
        return row

    def check_finite(self, values: list[float]) -> None:
        if all(math.isfinite(v) for v in values):
            return
        saved = checkpoints_in(self.run_dir)
        kept = f"the last good checkpoint is {saved[-1]}" if saved else "no checkpoint was written yet"
        raise TrainingError(
            f"training diverged at step {self.step}: critic loss {values[0]}, generator loss {values[1]}; {kept}"
        )

    def truncate_metrics(self, path: Path) -> None:
        """On resume, drop records the interrupted run logged after its last checkpoint, and a last
        line torn by a full disk or a kill."""
        if not path.exists():
            return
        lines = path.read_text().splitlines()
        kept = []
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
                step = record["step"]
            except (ValueError, TypeError, KeyError):
                if number == len(lines):  # torn while it was written: the run stopped there
                    break
                raise CheckpointError(f"{path}, line {number}, is not a metrics record; move the file away to resume")
            if isinstance(step, int) and step <= self.step:
                kept.append(line)
        atomic_write(path, lambda tmp: tmp.write_text("".join(line + "\n" for line in kept)))

    def progress_bar(self):
        from tqdm.auto import tqdm

        return tqdm(total=self.cfg.steps, initial=self.step, disable=self.quiet, desc=str(self.cfg.loss), unit="step")

    def export(self) -> Path:
        extra = {"trained": {"loss": str(self.cfg.loss), "data": str(self.cfg.data), "steps": self.step,
                             "objective": self.objective()}}  # fmt: skip
        return save_generator(self.gan.sample_generator(), self.run_dir / "generator.safetensors", self.cfg.generator.name, extra)


def _clocks() -> tuple[float, float]:
    """(wall, CPU) seconds: a step's wall time grows on a shared machine, its CPU time (this
    process's, all its threads) much less."""
    return time.perf_counter(), time.process_time()


def train(
    config: TrainConfig | dict[str, Any] | None = None, *, resume: str | Path | None = None, quiet: bool = False,
    on_evaluation: Callable[[int, dict[str, float]], bool] | None = None,
) -> TrainResult:
    """Train a GAN. `config` is a TrainConfig or a dict of its fields; with `resume`, a run folder
    whose newest checkpoint is continued, `config` then overriding the saved settings.

    `on_evaluation(step, record)` is called after each --eval-every evaluation with the logged
    record (one process only); returning True stops the run there as a Ctrl-C does (a checkpoint,
    then Interrupted): what a study's pruner uses.

    Under torchrun, or inside a process group the caller started, every process calls this with
    the same arguments; they share the run (see ganzoo.distributed) and rank 0 writes its files.
    """
    overrides = config.model_dump(exclude_unset=True) if isinstance(config, TrainConfig) else dict(config or {})
    if resume is None and config is None:
        raise ConfigError("train needs a config (at least a loss) or a run folder to resume")
    try:
        world = World.join(str(overrides.get("device", "auto")))
    except GanzooError as exc:  # said alike by every process of a node (a device it lacks): said once
        exc.quiet = os.environ.get("LOCAL_RANK", "0") != "0"
        raise
    broken, threads = False, torch.get_num_threads()
    try:
        if on_evaluation is not None and world.size > 1:
            raise ConfigError("on_evaluation stops a run of one process; several processes cannot share it")
        return _train(overrides, resume, quiet, world, on_evaluation)
    except BaseException as exc:
        broken = isinstance(exc, PeerFailed)
        if broken and os.environ.get(LAUNCHER_REPORTS):
            exc.quiet = True  # the peer's own line, or ganzoo's launcher ("killed by SIGKILL"), tells the cause
        elif isinstance(exc, Interrupted):
            exc.quiet = not world.main  # every process stopped at the same step; the store may be gone with the launcher
        elif world.size > 1 and not isinstance(exc, KeyboardInterrupt) and not world.first_to_fail():
            exc.quiet = True  # another process reports first; one line tells the story
        raise
    finally:
        world.leave(broken)
        torch.set_num_threads(threads)  # the caller's process keeps its own setting


def _train(overrides: dict[str, Any], resume: str | Path | None, quiet: bool, world: World, on_evaluation=None) -> TrainResult:
    run_plan = None
    if resume is None:
        run_plan = plan({**overrides, "world_size": world.size})
        cfg = run_plan.config
        if cfg.out is None and world.size > 1 and int(os.environ.get("TORCHELASTIC_MAX_RESTARTS", "0") or 0) > 0:
            raise ConfigError("a run that torchrun may restart needs --out, so the restarted processes find it")
        run_dir = Path(world.broadcast_text(str(cfg.out or default_run_dir(cfg))))
    else:
        run_dir = Path(resume)
    with _held(run_dir, world, create=resume is None):
        if run_plan is not None and checkpoints_in(run_dir):
            if not restarted():
                raise ConfigError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or choose another --out")
            run_plan = None  # torchrun restarted the group after a failure: continue where it stopped
            overrides = {k: v for k, v in overrides.items() if k != "out"}
        if run_plan is not None:
            check_batch_split(run_plan.config, world)
            return Trainer(run_plan, run_dir, quiet, world, on_evaluation).run()
        return _resume(run_dir, overrides, quiet, world, on_evaluation)


@contextlib.contextmanager
def _held(run_dir: Path, world: World, create: bool):
    """Rank 0 holds the run folder for the whole run; when another run holds it, every process stops."""
    with contextlib.ExitStack() as stack:
        refusal = ""
        if world.main:
            try:
                stack.enter_context(run_folder.held(run_dir, create))
            except ConfigError as exc:
                refusal = str(exc)
        refusal = world.broadcast_text(refusal)
        if refusal:
            raise ConfigError(refusal)
        yield


def _resume(run_dir: Path, overrides: dict[str, Any], quiet: bool, world: World, on_evaluation=None) -> TrainResult:
    saved = checkpoints_in(run_dir)
    if not saved:
        raise CheckpointError(f"{run_dir} holds no checkpoint to resume (looked for checkpoints/step-*.safetensors)")
    metadata = read_metadata(saved[-1], CHECKPOINT)
    base = load_metadata_json(metadata, "config", saved[-1], dict)
    if "lr" in overrides:  # the rate of both networks, unless one is given too
        base = {k: v for k, v in base.items() if k not in ("lr_generator", "lr_critic")}
    for fixed in FIXED_ON_RESUME:
        if fixed in overrides and overrides[fixed] != base.get(fixed):
            raise ConfigError(
                f"--{fixed.replace('_', '-')} cannot change on --resume (the run has {base.get(fixed)!r}): "
                f"{FIXED_ON_RESUME[fixed]}; start a new run with --out instead"
            )
    if "data" in overrides:
        check_same_data(base["data"], overrides["data"])
    if "augment" in overrides:
        check_same_augment(base.get("augment"), overrides["augment"])
    check_eval_flags(overrides, {**base, **overrides}.get("eval_every"))
    run_plan = plan({**base, **overrides, "out": str(run_dir), "world_size": world.size})
    check_batch_split(run_plan.config, world)
    step = metadata_int(metadata, "step", saved[-1], 0, MAX_STEPS)
    if step > run_plan.config.steps:
        raise ConfigError(
            f"--steps {run_plan.config.steps} is below step {step}, where {run_dir} stopped; give --steps above {step} to train on"
        )
    trainer = Trainer(run_plan, run_dir, quiet, world, on_evaluation, evaluates=step < run_plan.config.steps)
    trainer.load_checkpoint(saved[-1], metadata)
    return trainer.run()


def check_same_data(saved: Any, given: Any) -> None:
    """A resumed run goes on with its data: --data may move its files (a path option), nothing else."""
    from pathlib import PurePath

    from .config import PluginSpec

    specs = [PluginSpec.model_validate(spec) for spec in (saved, given)]
    old, new = (configured("dataset", spec) for spec in specs)
    kept = [{k: v for k, v in c.config.model_dump().items() if not isinstance(v, PurePath)} for c in (old, new)]
    if old.cls is not new.cls or kept[0] != kept[1]:
        raise ConfigError(
            f"--data {specs[1]} cannot change on --resume (the run trained on {specs[0]}): its networks and "
            "checkpoints belong to that data; only a path option may change, where its files moved"
        )


def check_eval_flags(given: dict[str, Any], eval_every: Any) -> None:
    """--eval-metrics and --eval-n shape the evaluations --eval-every turns on: without it they would be ignored."""
    flags = [f"--{name.replace('_', '-')}" for name in ("eval_metrics", "eval_n") if given.get(name) is not None]
    if flags and not eval_every:
        raise ConfigError(f"{' and '.join(flags)} appl{'y' if len(flags) > 1 else 'ies'} to evaluations during training, which --eval-every N turns on; "
                          f"add --eval-every (e.g. --eval-every 1000) or drop {' and '.join(flags)}")  # fmt: skip


def check_same_augment(saved: Any, given: Any) -> None:
    """A resumed run keeps its augmentation: the critic learned against it, and the run's record
    (config.json, each checkpoint) names one augmentation for all of its steps."""
    from .config import PluginSpec

    specs = [None if spec is None else PluginSpec.model_validate(spec) for spec in (saved, given)]
    built = [None if spec is None else configured("augment", spec) for spec in specs]
    old, new = (c and (c.cls, c.config.model_dump(), c.scheduled) for c in built)  # as configured: defaults spelt out or not
    if old != new:
        raise ConfigError(
            f"--augment {specs[1] or 'none'} cannot change on --resume (the run trained with {specs[0] or 'none'}): "
            "the critic learned against it and the run records one augmentation for all its steps; start a new run "
            "with --out instead"
        )


def check_critic_batch(cfg: TrainConfig, world: World, critic: Critic) -> None:
    local, multiple = cfg.batch_size // world.size, critic.batch_multiple
    if local % multiple:
        each = " on each of the processes" if world.size > 1 else ""
        raise ConfigError(
            f"critic '{cfg.critic.name}' scores batches of a multiple of {multiple} samples, but a batch "
            f"holds {local}{each}; use a --batch-size that gives a multiple of {multiple}"
        )


def warn_coupled_penalties(cfg: TrainConfig, constraints: list[Constraint], critic: nn.Module) -> None:
    """A gradient penalty assumes each score depends on its own sample; BatchNorm couples a batch."""
    penalties = [
        spec.name for spec, c in zip(cfg.constraints, constraints)
        if type(c).penalty is not Constraint.penalty and c.per_sample_gradients
    ]  # fmt: skip
    if penalties and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in critic.modules()):
        print(
            f"ganzoo: warning: critic '{cfg.critic.name}' has BatchNorm layers, which couple the samples of a batch: "
            f"the gradients that {', '.join(penalties)} penalises are not per-sample; prefer a critic without BatchNorm",
            file=sys.stderr,
        )


def check_batch_split(cfg: TrainConfig, world: World) -> None:
    if cfg.batch_size % world.size:
        raise ConfigError(
            f"--batch-size {cfg.batch_size} is the global batch and does not split evenly over {world.size} "
            f"processes; use a multiple of {world.size}"
        )
    if cfg.eval_every and cfg.eval_n % world.size:
        raise ConfigError(f"--eval-n {cfg.eval_n} does not split evenly over {world.size} processes; use a multiple")

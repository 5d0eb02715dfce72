"""The five plugin interfaces. A plugin subclasses one and supplies math; the loop does the rest."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from torch import Tensor, nn


class Config(BaseModel):
    """Base of every plugin's options: unknown keys are errors, and so are NaN and infinite numbers."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class NetworkConfig(Config):
    """Options every network receives from the data: the shape of one sample."""

    sample_shape: tuple[int, ...] = Field(description="shape of one sample, set from the dataset")

    @field_validator("sample_shape")
    @classmethod
    def _positive(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
        if not shape or any(d <= 0 for d in shape):
            raise ValueError("must be a non-empty tuple of positive sizes")  # the caller reports the input
        return shape


class GeneratorConfig(NetworkConfig):
    latent_dim: int = Field(64, gt=0, description="size of the latent vector z ~ N(0, I)")


class ConditionalConfig(Config):
    """Mixed into a network's Config, it makes the network conditional: in a `--conditional` run the
    loop sets `classes` from the data, and the network takes labels as its second argument."""

    classes: int = Field(0, ge=0, le=1_000_000, description="classes to condition on, set from the data (0: none)")

    #: options that matter only when conditional: left out of what an unconditional network records
    label_options: ClassVar[tuple[str, ...]] = ("classes",)


class LazyConfig(Config):
    """Mixed into a constraint's Config, it makes its penalty lazy (StyleGAN2's lazy regularisation):
    the loop computes it on every `every`-th critic step only, multiplied by `every`."""

    every: int = Field(1, ge=1, le=1_000_000, description="compute the penalty on every K-th critic step only, times K")


def recorded_options(config: Config, leave_out: set[str] = frozenset()) -> dict[str, Any]:
    """A network's options as a run or an exported file records them (JSON types): an unconditional
    network's without its conditioning options, so they read as they did before conditioning existed."""
    if not getattr(config, "classes", 0):
        leave_out = {*leave_out, *getattr(config, "label_options", ())}
    return config.model_dump(mode="json", exclude=set(leave_out))


def takes_labels(cls: type) -> bool:
    """Whether a network plugin class can be conditioned on labels (its Config has `classes`)."""
    return "classes" in getattr(cls, "Config", Config).model_fields


class TrainDefaults(BaseModel):
    """What a loss recommends to the loop; every field can be overridden in TrainConfig."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    optimizer: Literal["adam", "rmsprop"] = "adam"
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: int = 1
    batch_size: int = 64
    # The WGAN reference schedule: extra critic steps early on and every so often.
    critic_boost: int | None = None
    critic_boost_first: int = 25
    critic_boost_every: int = 500

    def describe(self) -> str:
        """One line: what a run with this loss gets unless told otherwise."""
        optimizer = f"{self.optimizer} lr {self.lr:g}" + (f" betas {self.betas[0]:g} {self.betas[1]:g}" if self.optimizer == "adam" else "")
        schedule = (
            f", {self.critic_boost} critic steps in the first {self.critic_boost_first} generator steps and every "
            f"{self.critic_boost_every}th" if self.critic_boost else ""
        )
        return f"{optimizer}, batch size {self.batch_size}, n_critic {self.n_critic}{schedule}"


class _Plugin:
    """Shared by every kind: a validated Config instance is the only constructor argument."""

    Config: ClassVar[type[Config]] = Config
    #: The plugin API versions a plugin works with, e.g. ">=1,<2"; None: any. Outside it the
    #: registry lists the plugin as broken instead of letting it fail mid-run.
    plugin_api: ClassVar[str | None] = None

    def _init_config(self, config: Config | None) -> None:
        self.config = config if config is not None else type(self).Config()


class Loss(_Plugin):
    """A GAN objective: two scalar losses to minimise, built from critic scores."""

    defaults: ClassVar[TrainDefaults] = TrainDefaults()
    #: True when -critic_loss estimates a Wasserstein distance, which the loop then logs.
    estimates_wasserstein: ClassVar[bool] = False
    #: True for a loss that compares real and fake in the generator step too (a relativistic one):
    #: the loop then scores the stream's next real batch in each generator step, augmented and
    #: perturbed as a critic step sees it (in a conditional run the fakes take its labels), and
    #: calls `generator_loss(fake_scores, real_scores)`; the gradient reaches the generator only.
    generator_sees_real: ClassVar[bool] = False

    def __init__(self, config: Config | None = None) -> None:
        self._init_config(config)

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        raise NotImplementedError

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        """The generator's loss from its fakes' scores; `generator_loss(fake_scores, real_scores)`
        for a loss that sets `generator_sees_real`."""
        raise NotImplementedError

    def perturb(self, x: Tensor, progress: float) -> Tensor:
        """Applied to every critic input; `progress` runs from 0 to 1 over the run."""
        return x


class Constraint(_Plugin):
    """Keeps the critic in a class of functions; every hook is optional."""

    #: whether `penalty` differentiates per-sample scores (a gradient penalty does), which a
    #: BatchNorm critic couples: the loop then warns about such a critic
    per_sample_gradients: ClassVar[bool] = True
    #: whether its terms teach the networks the labels (AC-GAN's classification losses): a conditional
    #: critic whose score ignores the labels (`Critic.scores_labels`) needs such a constraint
    teaches_labels: ClassVar[bool] = False

    def __init__(self, config: Config | None = None) -> None:
        self._init_config(config)

    def attach(self, critic: nn.Module) -> nn.Module:
        """Called once before the optimizers exist (e.g. to add spectral norm)."""
        return critic

    def penalty(self, critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor | None:
        """A term added to the critic loss at every critic step; None adds nothing. In a conditional
        run `critic` is a `Labelled` view: called on samples, it scores them under the real labels."""
        return None

    def generator_penalty(self, critic: nn.Module, fake: Tensor) -> Tensor | None:
        """A term added to the generator loss at every generator step (e.g. AC-GAN's class loss on
        fakes); None adds nothing. In a conditional run `critic` is `Labelled` with the fakes' labels."""
        return None

    def after_critic_step(self, critic: nn.Module) -> None:
        """Called after every critic optimizer step (e.g. to clip weights)."""


class Augment(_Plugin):
    """Differentiable augmentation (DiffAugment, ADA-like): transforms every batch the critic sees,
    real and fake alike, in the critic steps and the generator step, so the generator's gradient
    flows through it. Random choices are drawn per sample from torch's current stream (each
    process's own, under several processes), so a run resumes bitwise."""

    def __init__(self, config: Config | None = None) -> None:
        self._init_config(config)

    def __call__(self, x: Tensor, progress: float) -> Tensor:
        """The augmented batch, shaped like `x`; `progress` runs from 0 to 1 over the run."""
        raise NotImplementedError


class Generator(_Plugin, nn.Module):
    """Maps z of shape (B, latent_dim) to samples of shape (B, *sample_shape); a conditional one
    (its Config mixes in ConditionalConfig) maps (z, labels (B,)) instead."""

    Config: ClassVar[type[GeneratorConfig]] = GeneratorConfig
    #: True when it runs faster under bf16 autocast on a CPU with native bf16 than in float32
    #: (measured): `--precision auto` picks bf16 there when both networks say so.
    bf16_on_cpu: ClassVar[bool] = False

    def __init__(self, config: GeneratorConfig) -> None:
        nn.Module.__init__(self)
        self._init_config(config)
        self._device: torch.device | None = None
        self.latent_dim = config.latent_dim
        self.sample_shape = tuple(config.sample_shape)
        self.classes = getattr(config, "classes", 0)

    @property
    def device(self) -> torch.device:
        if self._device is None:  # looked up once: latent() runs several times per training step
            self._device = next(self.parameters()).device
        return self._device

    def _apply(self, fn, recurse=True):  # .to(), .cuda(), ...: the device may change
        self._device = None
        return super()._apply(fn, recurse)

    def latent(self, n: int, generator: torch.Generator | None = None, truncation: float | None = None) -> Tensor:
        """n latent vectors z ~ N(0, I) on the module's device; with `truncation` psi, each coordinate
        from the normal truncated at +-psi (BigGAN's truncation trick), drawn directly by inverting its
        distribution function: one uniform draw per coordinate, however small psi is."""
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            from .errors import UsageError, shortened

            raise UsageError(f"the number of samples must be a whole number from 0; got {shortened(repr(n), 80)}")
        device = self.device if generator is None else generator.device
        if truncation is not None and not truncation > 0:
            from .errors import UsageError

            raise UsageError(f"truncation must be above 0 (a bound on |z|), got {truncation}")
        if truncation is None or math.isinf(truncation):
            return torch.randn(n, self.latent_dim, device=device, generator=generator).to(self.device)
        # z = sqrt2 erfinv(u erf(psi / sqrt2)), u uniform on (-1, 1): in float64, erf and erfinv stay exact
        # relative to psi down to the smallest floats (a difference of two CDFs would round to 0.5 - 0.5)
        u = torch.rand(n, self.latent_dim, device=device, generator=generator, dtype=torch.float64) * 2 - 1
        z = (math.sqrt(2) * torch.erfinv(u * math.erf(truncation / math.sqrt(2)))).float()
        bound = torch.tensor(truncation, dtype=torch.float32)  # psi as a float32 not above psi
        bound = bound if bound <= truncation else torch.nextafter(bound, torch.tensor(0.0))
        return z.clamp(-bound.item(), bound.item()).to(self.device)

    def labels(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n labels drawn uniformly over the classes, on the module's device, after the latents."""
        device = self.device if generator is None else generator.device
        return torch.randint(self.classes, (n,), generator=generator, device=device).to(self.device)

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None, labels: Sequence[int] | Tensor | None = None,
        truncation: float | None = None,
    ) -> Tensor:
        """n samples, without gradients. A conditional generator draws the class of each from
        `labels` (n of them), or uniformly when None; an unconditional one takes no labels.
        `truncation`: latents from a normal truncated at +-truncation (see `latent`)."""
        z = self.latent(n, generator, truncation)
        if not self.classes:
            if labels is not None:
                from .errors import UsageError

                raise UsageError(f"generator '{type(self).__name__}' is unconditional: it takes no labels")
            return self(z)
        return self(z, self.labels(n, generator) if labels is None else check_labels(labels, n, self.classes, self.device))


def check_labels(labels: Sequence[int] | Tensor, n: int, classes: int, device: torch.device) -> Tensor:
    """`labels` as an int64 tensor (n,) on `device`: n class indices in [0, classes), given as a
    sequence of whole numbers or an integer tensor (or array); else a UsageError naming the fault."""
    from .errors import UsageError, shortened

    def refusal(got: str) -> UsageError:
        return UsageError(f"labels must be {n} class indices in 0..{classes - 1}, one per sample, as a list or an "
                          f"integer tensor; got {shortened(got, 80)}")  # fmt: skip

    if not isinstance(labels, (Tensor, Sequence)) and hasattr(labels, "__array__"):  # a NumPy array
        try:
            labels = torch.as_tensor(labels)
        except (TypeError, ValueError, RuntimeError):
            raise refusal(f"an array of {getattr(labels, 'dtype', 'objects')}") from None
    if isinstance(labels, Tensor):
        if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
            raise refusal(f"a tensor of {labels.dtype}")
        if labels.shape != (n,):
            raise refusal(f"a tensor of shape {tuple(labels.shape)}")
        outside = labels[(labels < 0) | (labels >= classes)]
        if len(outside):
            raise refusal(str(int(outside[0])))
        return labels.to(device, torch.long)
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):  # a generator is spent once read
        raise refusal(f"a {type(labels).__name__}")
    odd = [x for x in labels if isinstance(x, bool) or not isinstance(x, numbers.Integral)][:1]
    if odd:
        raise refusal(f"a {type(odd[0]).__name__}")
    if len(labels) != n:
        raise refusal(f"{len(labels)} labels")
    outside = [x for x in labels if not 0 <= x < classes][:1]  # checked before int64 could overflow
    if outside:
        raise refusal(str(outside[0]))
    return torch.tensor([int(x) for x in labels], dtype=torch.long, device=device)


@dataclass(frozen=True)
class Labelled:
    """A conditional critic as a penalty sees it: called on samples, it scores them under `labels`
    (the real batch's, which the critic step's fakes share under fake_labels=real; a penalty's
    interpolates are scored under them). `fake_labels` are the fakes' own."""

    critic: Callable[..., Tensor]
    labels: Tensor
    fake_labels: Tensor

    def __call__(self, x: Tensor) -> Tensor:
        return self.critic(x, self.labels)

    def of_fakes(self) -> Labelled:
        """The view that scores samples under the fakes' labels (what a penalty on fakes uses)."""
        return Labelled(self.critic, self.fake_labels, self.fake_labels)


class Critic(_Plugin, nn.Module):
    """Maps samples (B, *sample_shape) to scores (B,): logits, or unbounded values for WGAN; a
    conditional one (its Config mixes in ConditionalConfig) scores (samples, labels (B,))."""

    Config: ClassVar[type[NetworkConfig]] = NetworkConfig
    #: True when each sample's score depends on that sample alone (no BatchNorm or other
    #: batch-coupled layer): the loop then scores real and fake in one forward.
    independent_samples: ClassVar[bool] = False
    #: as Generator.bf16_on_cpu
    bf16_on_cpu: ClassVar[bool] = False

    def __init__(self, config: NetworkConfig) -> None:
        nn.Module.__init__(self)
        self._init_config(config)
        self.sample_shape = tuple(config.sample_shape)
        self.classes = getattr(config, "classes", 0)

    @property
    def scores_labels(self) -> bool:
        """Whether a conditional critic's score depends on the labels; one that only classifies them
        (an auxiliary classifier head) gives the run no class signal without a constraint that teaches it."""
        return True

    @property
    def batch_multiple(self) -> int:
        """The batches it scores must hold a multiple of this many samples (a packing critic's
        pack size); the loop checks the batch size against it before a run starts."""
        return 1

    def penalty_view(
        self, real: Tensor, fake: Tensor, labels: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Callable[[Tensor], Tensor], Tensor, Tensor]:
        """(function, real, fake) that penalties differentiate: the critic's true function and its
        inputs. A critic is its own (`Labelled` by (real labels, fake labels) in a conditional run);
        a wrapper whose score belongs to a group of samples (pac) returns its inner critic and the
        groups, so a gradient is the group's, not m times it."""
        return (self if labels is None else Labelled(self, *labels)), real, fake


@dataclass(frozen=True)
class Shard:
    """This process's part of a run's data: rows [rank * b, (rank + 1) * b) of every global batch,
    b = global batch / world_size. `seed` is the run's seed; `start` counts the global batches
    the run already drew (non-zero on resume)."""

    rank: int = 0
    world_size: int = 1
    seed: int = 0
    start: int = 0

    def rows(self, global_batch: int) -> slice:
        local = global_batch // self.world_size
        return slice(self.rank * local, (self.rank + 1) * local)


def epoch_indices(n: int, batch_size: int, shard: Shard) -> Iterator[Tensor]:
    """Index batches over n samples, epoch after epoch, for `shard`'s share of each global batch.

    Every epoch is a fresh permutation drawn from (seed, epoch) alone, cut into global batches
    of `batch_size` (the last partial one dropped): each sample is seen once per epoch across
    all processes, the global batches do not depend on the number of processes, and a resumed
    run jumps straight to batch `shard.start`.
    """
    per_epoch = n // batch_size
    if per_epoch == 0:
        from .errors import UsageError

        raise UsageError(f"the data holds {n} samples, fewer than one batch of {batch_size}")
    rows = shard.rows(batch_size)
    epoch, index = divmod(shard.start, per_epoch)
    while True:
        order = torch.randperm(n, generator=torch.Generator().manual_seed((shard.seed * 1_000_003 + epoch) % 2**63))
        for i in range(index, per_epoch):
            yield order[i * batch_size : (i + 1) * batch_size][rows]
        epoch, index = epoch + 1, 0


class Dataset(_Plugin):
    """A source of real samples: `sample_shape` and an endless stream of batches on a device.
    A labelled one sets `classes` and streams (samples, labels) from `labelled_batches` too."""

    sample_shape: tuple[int, ...]
    #: number of classes of a labelled dataset; 0: unlabelled
    classes: int = 0

    def __init__(self, config: Config | None = None) -> None:
        self._init_config(config)

    def batches(self, batch_size: int, device: torch.device) -> Iterator[Tensor]:
        raise NotImplementedError

    def local_batches(self, batch_size: int, device: torch.device, shard: Shard) -> Iterator[Tensor]:
        """What the loop draws: this process's rows of each global batch of `batch_size`.

        By default every process draws the whole global batch from `batches` (the loop keeps
        the global RNG identical on every process) and keeps its rows, so a dataset written
        for one process works unchanged under many. Override it to read only the share.
        """
        if shard.world_size == 1:
            return self.batches(batch_size, device)
        rows = shard.rows(batch_size)
        return (batch[rows] for batch in self.batches(batch_size, device))

    def labelled_batches(self, batch_size: int, device: torch.device, shard: Shard) -> Iterator[tuple[Tensor, Tensor]]:
        """What a conditional run draws: `local_batches`' samples with their int64 labels (rows,).
        Consumes the random streams as `local_batches` does, so a run is the same with or without labels."""
        raise NotImplementedError(f"{type(self).__name__} has no labels")

    def describe(self) -> dict[str, Any]:
        """Facts about the data that metrics may use (e.g. mixture centres)."""
        return {}

    def fingerprint(self) -> dict[str, Any]:
        """What this data is on this machine, for caches keyed on it (the real images' features):
        its options, each path among them made absolute, and the files it reads, each by name,
        size and modification time. A dataset that reads other files than its path options name
        overrides `data_files`."""
        options = self.config.model_dump(mode="json")
        for name, value in self.config.model_dump().items():
            if isinstance(value, Path):
                options[name] = str(value.resolve())
        return {"options": options, "files": file_stamps(self.data_files())}

    def data_files(self) -> list[Path]:
        """The files (or folders, taken whole) this data is read from: its path options by default."""
        return [value for value in self.config.model_dump().values() if isinstance(value, Path)]

    #: how many samples `evaluate` scores: a generator draws them from a fixed seed
    evaluation_samples: int = 10_000

    def evaluate(self, samples: Tensor, labels: Tensor | None, seed: int) -> dict[str, Any]:
        """This data's own scores of a generator's samples, as named figures: what `ganzoo
        evaluate`, model cards and studies report. Optional: a dataset that does not override it
        has no evaluation of its own (image data still has FID and its kin).

        `samples`: `evaluation_samples` finite samples on the CPU; `labels`: the class each was
        drawn for (balanced over the classes) when the generator is conditional, else None;
        `seed` fixes whatever real data the evaluation draws. Returns numbers by name, and
        optionally "per_class": a list of records, one per class, each with its "class".
        """
        raise NotImplementedError(f"{type(self).__name__} has no evaluation of its own")

    @classmethod
    def has_evaluation(cls) -> bool:
        return cls.evaluate is not Dataset.evaluate


def file_stamps(paths: Sequence[Path]) -> list[tuple[str, int, int]]:
    """(absolute name, size, mtime in ns) of each file, and of every file under each folder (links followed)."""
    stamps = []
    for path in paths:
        path = Path(path).resolve()
        if path.is_dir():
            files, seen = [], set()
            for root, folders, names in os.walk(path, followlinks=True):
                if os.path.realpath(root) in seen:  # a link back up the tree: walked once
                    folders.clear()
                    continue
                seen.add(os.path.realpath(root))
                files += [Path(root) / name for name in names]
            files.sort()
        else:
            files = [path] if path.exists() else []
        for file in files:
            info = file.stat()
            stamps.append((str(file), info.st_size, info.st_mtime_ns))
    return stamps


class ImageDataConfig(Config):
    """Options every standard image dataset has; a plugin adds its `split` and checks."""

    root: Path = Field("data", validate_default=True, description="folder that holds the dataset's files")
    size: int = Field(0, ge=0, le=1024, description="image side after resizing; 0 keeps the dataset's own")
    download: bool = Field(False, description="fetch the official files when missing (their published checksum checked)")

    #: whether `download` can fetch the files (False: it says what to fetch by hand)
    downloads: ClassVar[bool] = True

    def files(self) -> list[Path]:
        """The files the chosen split needs."""
        return []

    @field_validator("root")
    @classmethod
    def _a_folder(cls, root: Path) -> Path:
        there = next((p for p in (root, *root.parents) if p.exists()), None)
        if there is not None and not there.is_dir():  # else every file below it is said to be missing
            raise ValueError(f"{there} is a file, not a folder: root names the folder that holds the dataset's files")
        return root

    def by_hand(self) -> str:
        """How a user puts the files in place without `download`, for the message below."""
        return f"put the dataset's files in {self.root}"

    @model_validator(mode="after")
    def _present_or_downloaded(self):
        files = self.files()
        in_the_way = next((path for path in files if path.exists() and not path.is_file()), None)
        if in_the_way is not None:
            raise ValueError(f"{in_the_way} is not a file (a folder or device is where the data file belongs)")
        missing = [path for path in files if not path.exists()]
        if missing and not self.download:  # said before a run starts, not when it first draws data
            fetch = ", or add the option download=true to fetch it" if self.downloads else ""
            raise ValueError(f"{missing[0]} is missing: {self.by_hand()}{fetch}")
        return self


def available_memory() -> int | None:
    """Bytes of memory this process can still get: the smaller of what the machine can give without
    swapping (Linux's MemAvailable) and what its address-space limit (`ulimit -v`) leaves; None if unknown."""
    free = [n for n in (_machine_memory(), _address_space_left()) if n is not None]
    return min(free) if free else None


def _machine_memory() -> int | None:
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _address_space_left() -> int | None:
    """RLIMIT_AS less the address space already mapped; None without a limit (or off Linux)."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError, IndexError):
        return None
    return max(limit - mapped, 0)


def check_memory(nbytes: int, what: str, lower: str = "") -> None:
    """A UsageError, before anything is allocated, when `what` needs more memory than is free;
    `lower` says which option to lower."""
    free = available_memory()
    if free is not None and nbytes > free:
        from .errors import UsageError

        advice = f"; {lower}" if lower else ""
        raise UsageError(f"{what} need {nbytes / 2**30:.1f} GiB of memory, more than the {free / 2**30:.1f} GiB free{advice}")


class InMemoryImages(Dataset):
    """Images with their labels, decoded once into memory: the base of the standard image datasets.

    A subclass sets `channels` and `native_size` and writes `load()`, which returns every image of
    the configured split as uint8 `(N, C, H, W)` and its label as int64 `(N,)`; its Config has
    `size` (0: native). The base resizes (area when shrinking, bilinear when growing), scales to
    [-1, 1], and serves each process its share of one permutation per epoch.
    """

    Config: ClassVar[type[Config]] = ImageDataConfig
    channels: ClassVar[int]
    native_size: ClassVar[int]
    classes: ClassVar[int] = 0  # known without reading a file; load()'s labels lie in [0, classes)

    def __init__(self, config: Config | None = None) -> None:
        super().__init__(config)
        side = self.config.size or self.native_size
        self.sample_shape = (self.channels, side, side)  # known without reading a file
        self._tensors: tuple[Tensor, Tensor] | None = None

    def load(self) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def tensors(self, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
        """Every image of the split in [-1, 1] at `sample_shape`, and its label."""
        if self._tensors is None:
            pixels, labels = self.load()
            side = self.sample_shape[-1]
            check_memory(
                len(pixels) * self.channels * side * side * 4, f"{len(pixels):,} images of {side}x{side} as float32",
                "choose a smaller size= option",
            )
            images = pixels.float() / 127.5 - 1
            if side != images.shape[-1]:
                mode = "area" if side < images.shape[-1] else "bilinear"
                images = torch.nn.functional.interpolate(images, size=(side, side), mode=mode)
            self._tensors = images.contiguous(), labels.long()
        images, labels = self._tensors
        return images.to(device), labels.to(device)

    def batches(self, batch_size: int, device: torch.device) -> Iterator[Tensor]:
        seed = int(torch.randint(2**62, ()))  # from the global RNG, so manual_seed makes it repeatable
        return self.local_batches(batch_size, device, Shard(seed=seed))

    def local_batches(self, batch_size: int, device: torch.device, shard: Shard) -> Iterator[Tensor]:
        return (images for images, _ in self.labelled_batches(batch_size, device, shard))

    def labelled_batches(self, batch_size: int, device: torch.device, shard: Shard) -> Iterator[tuple[Tensor, Tensor]]:
        images, labels = self.tensors(device)
        for indices in epoch_indices(len(images), batch_size, shard):
            indices = indices.to(device)
            yield images[indices], labels[indices]

    def describe(self) -> dict[str, Any]:
        return {"classes": self.classes} if self.classes else {}

    def data_files(self) -> list[Path]:
        return self.config.files()

    def __len__(self) -> int:
        return len(self.tensors()[1])


class Logger(_Plugin):
    """A sink for a run's metrics and pictures (TensorBoard, wandb, ...). The JSON-lines log is
    always written besides; the loop calls loggers in the process that writes files only."""

    def __init__(self, config: Config | None = None) -> None:
        self._init_config(config)

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        """Called once before the first step, with the run's folder and its resolved config."""

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        """One logged step's values: losses, the Wasserstein estimate, gradient norms, seconds per step."""

    def log_picture(self, step: int, name: str, path: Path) -> None:
        """A picture the run just wrote as PNG: `name` is "samples" or "curves"."""

    def close(self) -> None:
        """Called once at the end of the run, also when it fails or is interrupted."""


class GaussianMixture(Dataset):
    """Equal-weight isotropic Gaussians in 2-D, sampled on the device with the global RNG; each
    Gaussian is a class, its label the index of its centre.

    A subclass sets `centres(self) -> Tensor (K, 2)` and a config with `std`.
    """

    sample_shape = (2,)

    @property
    def classes(self) -> int:
        return len(self.centres())

    def centres(self) -> Tensor:
        raise NotImplementedError

    def batches(self, batch_size: int, device: torch.device) -> Iterator[Tensor]:
        return (points for points, _ in self._draws(batch_size, device))

    def labelled_batches(self, batch_size: int, device: torch.device, shard: Shard) -> Iterator[tuple[Tensor, Tensor]]:
        rows = shard.rows(batch_size)  # every process draws the global batch, as local_batches does
        return ((points[rows], labels[rows]) for points, labels in self._draws(batch_size, device))

    def _draws(self, batch_size: int, device: torch.device) -> Iterator[tuple[Tensor, Tensor]]:
        centres = self.centres().to(device)
        std = self.config.std
        while True:
            idx = torch.randint(len(centres), (batch_size,), device=device)
            yield centres[idx] + std * torch.randn(batch_size, 2, device=device), idx

    def describe(self) -> dict[str, Any]:
        return {"centres": self.centres(), "std": self.config.std}

    #: the PacGAN / VEEGAN protocol's sample count
    evaluation_samples = 2500

    def evaluate(self, samples: Tensor, labels: Tensor | None, seed: int) -> dict[str, Any]:
        """Modes captured, % high quality and reverse KL on 2,500 samples (the PacGAN / VEEGAN
        protocol), exact W1 on 2,000 of them; per class for a conditional generator."""
        from .metrics import toy_metrics

        return toy_metrics(samples, labels, self.centres(), self.config.std, seed=seed)


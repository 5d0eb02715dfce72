"""Train, evaluate and write the model card of every generator in ganzoo's pretrained zoo.

    python scripts/train_zoo.py                        # every model whose card is missing
    python scripts/train_zoo.py --jobs 2               # two trainings at once
    python scripts/train_zoo.py --only 'wgan-*' --force
    python scripts/train_zoo.py --table-only           # only regenerate the zoo's tables

Each of the four classic losses (wgan with the clip constraint) is trained on ring8 and grid25
with the PacGAN protocol (scripts/shared.py: PACGAN_NETWORKS, PACGAN_OPTIMIZER) and on digits
(16x16, DCGAN generator and critic), models named LOSS-DATA; so are the toolbox's objectives
(TOOLBOX), the two best of them also on digits; plus PacGAN2 versions of the nonsaturating loss
(LOSS-pac2-DATA) and class-conditional models (METHOD-DATA). A model is skipped when its card and
weights exist at the zoo's step budget (unless --force); an interrupted training resumes from its
run folder under runs/zoo/, and one whose budget was raised goes on from its last checkpoint.
Every process trains on one CPU thread with fixed seeds, keeps a checkpoint every tenth of the
run, then scores each checkpoint's generator with the code of `ganzoo evaluate` (seed 0), draws
the samples and the metrics over training, and writes model_cards/NAME/
(README.md from scripts/model_card_template.md, weights, sample.png, progress.png).
Finally the zoo's table in docs/guides/zoo.md, and the Fashion-MNIST one in README.md, are
regenerated between their markers.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import hashlib
import json
import math
import multiprocessing
import platform
import shutil
import string
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

import ganzoo
from ganzoo import recipes
from ganzoo.checkpoint import atomic_write, load_module, read_tensors
from ganzoo.diagnostics import load_run_checkpoint
from ganzoo.evaluation import LABELS, class_rows, evaluate, headline, metric_rows, to_json
from ganzoo.pictures import new_figure, picture_labels, save_figure, save_samples
from ganzoo.zoo import ModelCard, model_card
from ganzoo_plugins import classifiers
from shared import PACGAN_STEPS, PACGAN_TABLE1, command_line, markdown_table, pacgan_recipe, replace_block

ROOT = Path(__file__).resolve().parents[1]
CARDS = ROOT / "model_cards"
RUNS = ROOT / "runs" / "zoo"
TEMPLATE = Path(__file__).with_name("model_card_template.md")
ZOO_PAGE = ROOT / "docs" / "guides" / "zoo.md"
FASHION_CURVES = ROOT / "docs" / "images" / "fashion-cards-cpu.png"
WEIGHTS = "generator.safetensors"
PICTURE = "sample.png"
PROGRESS = "progress.png"
SEED = 0

#: loss name -> its TrainConfig fields; options are spelled out so the card states them
LOSSES = {
    "minimax": {"loss": "minimax"},
    "nonsaturating": {"loss": "nonsaturating"},
    "instance-noise": {"loss": "instance-noise:base=nonsaturating,sigma=0.1"},
    "wgan": {"loss": "wgan", "constraints": ["clip:c=0.01"]},
    # The toolbox's objectives, each with its paper's own optimizer where it names one.
    "wgan-gp": {"loss": "wgan", "constraints": ["gradient-penalty:weight=10"], "optimizer": "adam", "lr": 1e-4,
                "betas": [0.5, 0.9], "n_critic": 5, "critic_boost": 0},
    "hinge-sn": {"loss": "hinge", "constraints": ["spectral-norm"]},
    "least-squares": {"loss": "least-squares"},
    "nonsaturating-r1": {"loss": "nonsaturating", "constraints": ["r1:gamma=10"]},
    # R3GAN's objective alone, on the DCGAN every other Fashion-MNIST card uses
    "rpgan-r1-r2": {"loss": "rpgan", "constraints": ["r1:gamma=1,every=4", "r2:gamma=1,every=4"]},
    # R3GAN (Huang et al. 2024) sized for one CPU thread, as its shipped recipe: see R3GAN_NOTE; its own EMA only
    "r3gan": {**{k: v for k, v in recipes.read("r3gan-fashion-mnist")[0].items()
                 if k not in ("data", "steps", "n_critic", "batch_size")}, "ema": None},
}  # fmt: skip
#: the toolbox's objectives; only the two best on the 2-D data are also trained on digits
TOOLBOX = ("wgan-gp", "hinge-sn", "least-squares", "nonsaturating-r1")
TOOLBOX_ON_DIGITS = ("nonsaturating-r1", "hinge-sn")
#: (loss, data) -> the loss's fields there, and why they differ from LOSSES
LOSS_ON_DATA = {
    ("instance-noise", "digits"): (
        {"loss": "instance-noise:base=nonsaturating,sigma=0.05,anneal=false"},
        "The noise stays at a constant std of 0.05: in the same run with std 0.1 annealed to 0, the "
        "digits got worse as the noise faded (Frechet 3.5 at step 10,500 of 15,000, 15.4 at the end).",
    ),
    ("nonsaturating-r1", "digits"): (
        {**LOSSES["nonsaturating-r1"], "critic_options": "norm=none"},
        "Beside Mescheder et al. 2018: the -log D loss with R1 on real data at their gamma of 10, and a "
        "critic without BatchNorm (`norm=none`), as their networks: R1 penalises each real sample's own "
        "gradient, which BatchNorm would couple across the batch; not their optimizer (RMSProp 1e-4) nor "
        "their ResNets.",
    ),
    ("wgan-gp", "fashion-mnist"): (
        {**LOSSES["wgan-gp"], "critic_options": "norm=layer"},
        "Beside Gulrajani et al. 2017: their Adam (1e-4, betas (0.5, 0.9)), 5 critic steps per generator step, "
        "penalty weight 10 and layer normalisation in place of the critic's BatchNorm (`norm=layer`), as their "
        "code does; not their ResNets.",
    ),
    ("hinge-sn", "fashion-mnist"): (
        {**LOSSES["hinge-sn"], "critic_options": "norm=none"},
        "Beside Miyato et al. 2018: the hinge loss, spectral normalisation of every critic layer (one power "
        "iteration), a critic without BatchNorm (`norm=none`) and their Adam (2e-4, betas (0.5, 0.999), one "
        "critic step per generator step); not their CNNs.",
    ),
    ("rpgan-r1-r2", "fashion-mnist"): (
        {**LOSSES["rpgan-r1-r2"], "critic_options": "norm=none"},
        "R3GAN's objective without its networks: the relativistic pairing loss with R1 and R2 at gamma 1 (the "
        "start of the R3GAN card's schedule) on every 4th critic step, R3GAN's Adam (2e-4, betas (0, 0.99)) and a "
        "critic without BatchNorm (`norm=none`: R1 and R2 penalise each sample's own gradient); no schedules.",
    ),
    ("hinge-sn", "digits"): (
        {**LOSSES["hinge-sn"], "critic_options": "norm=none"},
        "Beside Miyato et al. 2018: the hinge loss, spectral normalisation of every critic layer (one power "
        "iteration), a critic without BatchNorm (`norm=none`) and their Adam (2e-4, betas (0.5, 0.999), one "
        "critic step per generator step); not their CNNs.",
    ),
}
#: dataset name -> its TrainConfig fields (slowest first, so parallel jobs finish together);
#: the 2-D datasets take the PacGAN protocol's networks and optimizer on top
#: the image cards were trained in float32, which their commands say since `--precision auto` may pick bf16
DATASETS = {
    "fashion-mnist": {"data": "fashion-mnist", "generator": "dcgan:width=64", "critic": "dcgan:width=64", "ema": 0.999,
                      "precision": "fp32"},
    "grid25": {"data": "grid25"},
    "digits": {"data": "digits:size=16", "generator": "dcgan:width=64", "critic": "dcgan:width=64", "ema": 0.999,
               "precision": "fp32"},
    "ring8": {"data": "ring8"},
}
TOY = ("ring8", "grid25")
#: the objectives Lucic et al. 2018 compare on Fashion-MNIST, with the toolbox's hinge + spectral norm and
#: R3GAN's objective
ON_FASHION = ("minimax", "nonsaturating", "least-squares", "wgan", "wgan-gp", "hinge-sn", "rpgan-r1-r2")
#: objectives trained on Fashion-MNIST only
FASHION_ONLY = ("rpgan-r1-r2",)
#: toy model name -> the decay of an EMA of its generator (whose weights are shipped), a departure
#: from the PacGAN protocol, and why
TOY_EMA = {
    "nonsaturating-pac2-grid25": (
        0.999,
        "the same run without it (this card's earlier version) stayed at 84.6-85.0% high quality from step "
        "105,000 to 150,000, short of the published 91.3%, while with it the share was ahead at every checkpoint "
        "from 30,000 on and still rising at the end (an EMA smooths the generator's step-to-step swings and "
        "adds no measurable time per step)",
    ),
}
#: generator steps, chosen from measured speed (one thread of a shared AMD EPYC) to fit the
#: whole zoo in about three hours of two cores: a protocol step of the JS-family losses takes
#: ~17 ms, a WGAN step ~70 ms (5 critic steps, 100 early on), a digits step ~30 ms.
STEPS = {
    ("ring8", "js"): 60_000, ("grid25", "js"): 150_000, ("digits", "js"): 15_000,
    ("ring8", "wgan"): 10_000, ("grid25", "wgan"): 10_000, ("digits", "wgan"): 5_000,
    # Fashion-MNIST: one budget for every objective, about 5.3 epochs at batch 64; a step of the 28x28
    # DCGAN takes ~0.21 s (one critic step), ~0.70 s (WGAN) and ~1.14 s (WGAN-GP) on one idle thread,
    # about twice that beside a second training on a 2-core machine
    ("fashion-mnist", "js"): 5_000, ("fashion-mnist", "wgan"): 5_000,
    # R3GAN: ~0.6 s of one thread a step at these widths with R1 and R2 on every 4th critic step (bf16: no faster)
    ("fashion-mnist", "r3gan"): 5_000,
}
#: the clipped WGAN is trained past its 10,000-step budget, whose high-quality share was still
#: rising (ring8 27% -> 39% over its last 4,000 steps, grid25 25% -> 34% over its last 6,000), to
#: show where it levels off
LEVEL_OFF_STEPS = {("wgan", "ring8"): 40_000, ("wgan", "grid25"): 60_000}
#: image data -> what one sample is called, and what its evaluation compares
IMAGES = {
    "digits": ("digit", "Scores from ganzoo's digits classifier on 1,797 samples against the 1,797 real digits"),
    "fashion-mnist": ("garment", "Scores from ganzoo's Fashion-MNIST classifier (91.25% test accuracy, trained on the "
                      "train split) on 10,000 samples against the 10,000 images of the test split"),
}
#: generator steps of the class-conditional models: each class is one mode (grid25) or one digit,
#: an easier task than covering every mode unconditioned
CONDITIONAL_STEPS = {"grid25": 30_000, "digits": 15_000, "fashion-mnist": 5_000}
#: conditional models trained past that budget, and why
CONDITIONAL_LONGER = {
    "acgan-fashion-mnist": (
        10_000,
        "twice the other Fashion-MNIST DCGAN cards' budget: its first run, of 5,000 steps, ended with its on-class "
        "accuracy still rising (84.3%, 87.9% and 89.7% at steps 4,000, 4,500 and 5,000) and its Frechet distance "
        "still falling (181, 156, 138)",
    ),
}
#: scored checkpoints per run: the metrics over training
LEGS = 10

DESCRIPTIONS = {
    "minimax": "the original saturating GAN loss of Goodfellow et al. (2014): G minimises E[log(1 - D(G(z)))]",
    "nonsaturating": "the non-saturating -log D loss of Goodfellow et al. (2014): G minimises -E[log D(G(z))]",
    "instance-noise": "the -log D loss with instance noise (Arjovsky & Bottou 2017): Gaussian noise on every "
    "critic input (std 0.1 annealed linearly to 0 on the 2-D data, a constant 0.05 on digits)",
    "wgan": "the Wasserstein GAN of Arjovsky, Chintala & Bottou (2017) with weight clipping to [-0.01, 0.01], "
    "RMSProp at learning rate 5e-5 and 5 critic steps per generator step (100 in the first 25 and every 500th)",
    "wgan-gp": "WGAN-GP (Gulrajani et al. 2017): the Wasserstein loss with a gradient penalty of weight 10 in "
    "place of clipping, Adam at 1e-4 with betas (0.5, 0.9) and 5 critic steps per generator step",
    "hinge-sn": "the hinge loss with a spectrally normalised critic (Miyato et al. 2018)",
    "least-squares": "the least-squares loss of LSGAN (Mao et al. 2017), targets 0 and 1",
    "nonsaturating-r1": "the -log D loss with the R1 penalty on real data (Mescheder et al. 2018), gamma 10",
    "projection": "the projection discriminator of Miyato & Koyama (2018): the critic adds the inner product of "
    "a learned class embedding with its last features, and the generator reads a class embedding beside z "
    "(conditional BatchNorm in a DCGAN generator)",
    "acgan": "AC-GAN (Odena et al. 2017): the critic's auxiliary classifier head learns the classes of real "
    "data (weight 1; not of fakes, which StudioGAN's maintainers found helps) and the generator is also "
    "trained to make its fakes classified as the class asked for (conditional BatchNorm in the generator)",
    "rpgan-r1-r2": "R3GAN's objective (Huang et al. 2024) on a DCGAN: the relativistic pairing loss with the "
    "zero-centred R1 and R2 penalties",
    "r3gan": "R3GAN's objective (Huang et al. 2024): the relativistic pairing loss with the zero-centred R1 and R2 "
    "penalties, and its normalization-free ResNet",
    "r3gan-conditional": "a class embedding beside z in the generator and a projection head in the critic; in the "
    "generator step the fakes take the labels of the real samples they are paired with",
    "ring8": "ring8, eight Gaussians (std 0.01) evenly spaced on the unit circle",
    "grid25": "grid25, 25 Gaussians (std 0.05) on the grid {-4, -2, 0, 2, 4}^2",
    "digits": "scikit-learn's 1,797 handwritten 8x8 digits, upsampled to 16x16",
    "fashion-mnist": "Fashion-MNIST (Xiao et al. 2017), Zalando's 28x28 grey images of 10 kinds of clothing, at "
    "their own size (the 60,000 of the train split)",
}
LOSS_NOTES = {
    "minimax": "The saturating loss gives the generator vanishing gradients whenever the critic wins; "
    "Goodfellow et al. recommend the -log D variant instead.",
    "wgan": "Weight clipping with the paper's small learning rate learns slowly, and these runs are far "
    "shorter than the paper's; the clipped critic also limits how sharp the learned density can be.",
}


#: conditioning method -> the TrainConfig fields it adds (a class-conditional model is named METHOD-DATA);
#: every conditional model keeps an EMA of its generator, as BigGAN and StudioGAN do: without one, the
#: projection-grid25 run's generator swung from 100% high quality at step 27,000 to 72% at 30,000
CONDITIONING = {
    "projection": {"conditional": True, "ema": 0.999},
    "acgan": {"conditional": True, "ema": 0.999, "critic_options": "head=ac", "constraints": ["ac"]},
    "r3gan-conditional": {"conditional": True},  # R3GAN's own EMA (a half-life) stays
}
#: dataset -> the loss its conditional models train with: the best unconditional card's recipe there
CONDITIONAL_LOSS = {"grid25": "nonsaturating", "digits": "instance-noise", "fashion-mnist": "hinge-sn"}


@dataclass(frozen=True)
class Model:
    loss: str
    data: str
    pack: int = 1  # PacGAN packing: the critic judges this many samples at once
    conditioning: str = ""  # a key of CONDITIONING: class-conditional

    @property
    def name(self) -> str:
        if self.conditioning:
            return f"{self.conditioning}-{self.data}"
        return f"{self.loss}-pac{self.pack}-{self.data}" if self.pack > 1 else f"{self.loss}-{self.data}"

    @property
    def steps(self) -> int:
        """The data's budget for the recipe: recipes of 5 critic steps per generator step (WGAN, WGAN-GP)
        get the WGAN budget, R3GAN its own; conditional models theirs, some trained longer."""
        if self.name in CONDITIONAL_LONGER:
            return CONDITIONAL_LONGER[self.name][0]
        if self.conditioning and self.loss != "r3gan":
            return CONDITIONAL_STEPS[self.data]
        if (self.loss, self.data) in LEVEL_OFF_STEPS:
            return LEVEL_OFF_STEPS[self.loss, self.data]
        return STEPS[self.data, "wgan" if self.loss in ("wgan", "wgan-gp") else "r3gan" if self.loss == "r3gan" else "js"]

    @property
    def loss_fields(self) -> dict[str, Any]:
        return LOSS_ON_DATA[self.loss, self.data][0] if (self.loss, self.data) in LOSS_ON_DATA else LOSSES[self.loss]

    @property
    def config(self) -> dict[str, Any]:
        """The TrainConfig fields, as `ganzoo train` flags would give them."""
        fields = pacgan_recipe(self.loss_fields, self.pack) if self.data in TOY else self.loss_fields
        # the data's networks, unless the recipe brings its own (r3gan); the card commands keep their order
        fields = {**fields, **DATASETS[self.data], **{k: v for k, v in fields.items() if k in ("generator", "critic", "ema")}}
        if self.name in TOY_EMA:
            fields["ema"] = TOY_EMA[self.name][0]
        if self.conditioning:
            extra = dict(CONDITIONING[self.conditioning])
            extra["constraints"] = fields.get("constraints", []) + extra.get("constraints", [])
            if "critic_options" in fields and "critic_options" in extra:  # the loss's and the method's
                extra["critic_options"] = fields["critic_options"] + "," + extra["critic_options"]
            fields.update({k: v for k, v in extra.items() if v})
        if "critic_options" in fields:  # on top of the dataset's critic
            fields["critic"] += ("," if ":" in fields["critic"] else ":") + fields.pop("critic_options")
        fields = {**fields, "steps": self.steps, "seed": SEED, "device": "cpu"}
        return {**fields, "checkpoint_every": self.steps // LEGS, "out": str((RUNS / self.name).relative_to(ROOT))}

    @property
    def command(self) -> str:
        return command_line(self.config)


MODELS = [Model(loss, data) for data in DATASETS for loss in LOSSES if loss != "r3gan"
          if (loss in ON_FASHION if data == "fashion-mnist" else loss not in FASHION_ONLY
              and (data in TOY or loss not in TOOLBOX or loss in TOOLBOX_ON_DIGITS))]  # fmt: skip
MODELS.insert(next(i for i, m in enumerate(MODELS) if m.name == "instance-noise-grid25") + 1, Model("nonsaturating", "grid25", pack=2))
MODELS.append(Model("nonsaturating", "ring8", pack=2))
MODELS += [Model(CONDITIONAL_LOSS[d], d, conditioning=c) for d, c in (("grid25", "projection"), ("digits", "projection"), ("digits", "acgan"), ("fashion-mnist", "projection"), ("fashion-mnist", "acgan"))]
MODELS += [Model("r3gan", "fashion-mnist"), Model("r3gan", "fashion-mnist", conditioning="r3gan-conditional")]


def machine() -> str:
    cpu = platform.processor()
    if not cpu and Path("/proc/cpuinfo").is_file():
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else ""
    return f"CPU, 1 thread, {cpu or platform.machine()}"


def training_seconds(run_dir: Path) -> tuple[float, float | None]:
    """Wall and CPU time of the training loop, summed over its logged intervals (resumes included);
    the CPU time is None for runs logged before the loop recorded it."""
    wall, cpu, previous = 0.0, 0.0, 0
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        wall += record["sec_per_step"] * (record["step"] - previous)
        cpu = None if cpu is None or "cpu_sec_per_step" not in record else cpu + record["cpu_sec_per_step"] * (record["step"] - previous)
        previous = record["step"]
    return wall, cpu


def train(model: Model) -> Path:
    """Train (or resume, or just re-export a finished run) and return the exported generator.
    The newest LEGS + 2 checkpoints stay; `progress` remembers the scores of older ones."""
    run_dir = ROOT / model.config["out"]
    kept = {"checkpoint_every": model.config["checkpoint_every"], "keep_checkpoints": LEGS + 2}
    if any((run_dir / "checkpoints").glob("step-*.safetensors")):
        print(f"{model.name}: resuming {run_dir}", flush=True)
        return ganzoo.train({"steps": model.steps, **kept}, resume=run_dir, quiet=True).generator_path
    return ganzoo.train({**model.config, **kept, "out": str(run_dir)}, quiet=True).generator_path


def progress(model: Model, run_dir: Path) -> list[dict[str, Any]]:
    """The metrics of the generator (the EMA one where kept) of every checkpoint, scored once
    and remembered in the run folder; those of the run's LEGS checkpoints are returned (a run
    that was lengthened also remembers its earlier, denser ones)."""
    log = run_dir / "progress.json"
    scored = {record["step"]: record for record in (json.loads(log.read_text()) if log.is_file() else [])}
    for path in sorted((run_dir / "checkpoints").glob("step-*.safetensors")):
        if int(path.stem.removeprefix("step-")) in scored:  # the loop names a checkpoint by its step
            continue
        run = load_run_checkpoint(path)
        tensors = read_tensors(path)
        if any(key.startswith("ema.") for key in tensors):
            load_module(run.generator, "ema", tensors, path)
        scored[run.step] = {"step": run.step, **evaluate(run.generator.eval(), DATASETS[model.data]["data"], seed=SEED)}
    records = [scored[step] for step in sorted(scored)]
    atomic_write(log, lambda tmp: tmp.write_text(to_json(records, indent=1)))
    return [r for r in records if r["step"] % model.config["checkpoint_every"] == 0]


def draw_progress(records: list[dict[str, Any]], path: Path, title: str, reference_frechet: float | None) -> None:
    """Modes and % high quality (2-D data) or Frechet distance (log scale, beside the real data's
    own) and classes (digits) over training."""
    steps = [r["step"] for r in records]
    fig, ax = new_figure(figsize=(6, 3.6))
    first, second = ("modes", "high_quality") if "modes" in records[0] else ("frechet", "classes")
    ax.plot(steps, [r[first] for r in records], "o-", color="tab:blue")
    ax.set_ylabel("classifier Frechet (not FID)" if first == "frechet" else LABELS[first], color="tab:blue")
    if first == "frechet":
        from matplotlib.ticker import ScalarFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.axhline(reference_frechet, color="tab:blue", linestyle=":", label="real train vs test data")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)  # off the markers
    else:
        ax.set_ylim(0, records[0]["modes_total"] + 0.5)
    other = ax.twinx()
    other.plot(steps, [r[second] for r in records], "s--", color="tab:orange")
    other.set_ylabel(LABELS[second], color="tab:orange")
    other.set_ylim(0, 100 if second == "high_quality" else records[0]["classes_total"] + 0.5)
    ax.set_xlabel("generator steps")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def draw_picture(generator: torch.nn.Module, model: Model, path: Path, title: str) -> str:
    """Samples from seed 0 (over real points for 2-D data), a conditional generator's by class
    as `ganzoo sample` draws them; returns the picture's caption."""
    points = generator.sample_shape == (2,)
    labels = picture_labels(generator.classes, points) if generator.classes else None
    rng = torch.Generator().manual_seed(SEED)
    fake = generator.sample(64 if labels is None and not points else 1000 if points else len(labels), generator=rng,
                            **({} if labels is None else {"labels": labels}))  # fmt: skip
    if points:
        spec = ganzoo.PluginSpec.model_validate(model.config["data"])
        torch.manual_seed(SEED)
        real = next(ganzoo.create_dataset(spec.name, **spec.options).batches(1000, torch.device("cpu")))
        save_samples(path, fake, real, title, labels=labels)
        if labels is not None:
            return f"1,000 generated points, {1000 // generator.classes} asked of each class and coloured by it, over 1,000 real ones (grey), seed 0"
        return "1,000 generated points (orange) over 1,000 real ones (grey), seed 0"
    save_samples(path, fake, title=title, labels=labels)
    noun = IMAGES[model.data][0]
    if labels is not None:
        return f"8 generated {noun}s of each class, one row per class, seed 0 (`ganzoo sample NAME --seed 0` draws the same)"
    return f"64 generated {noun}s, seed 0 (`ganzoo sample NAME --seed 0` draws the same)"


def reference_frechet(data: str) -> float | None:
    """The real data's own classifier Frechet distance (train against test split), a scale for the cards."""
    if data == "fashion-mnist":
        return float(classifiers.load(classifiers.FashionClassifier).metadata["frechet_train_test"])
    return digits_reference_frechet() if data == "digits" else None


@functools.cache
def digits_reference_frechet() -> float:
    """Frechet distance between the real train and test splits at 16x16: a scale for the cards."""
    from ganzoo.metrics import frechet_distance

    classifier = classifiers.load(classifiers.DigitsClassifier)
    with torch.no_grad():
        train_images, test_images = (ganzoo.create_dataset("digits", size=16, split=s).tensors()[0] for s in ("train", "test"))
        return frechet_distance(classifier.features(train_images), classifier.features(test_images))


def wgan_comparison(model: Model, metrics: dict[str, Any]) -> str:
    """How this WGAN card compares with the -log D card of the same data and protocol."""
    other = Model("nonsaturating", model.data)
    theirs = model_card(str(CARDS / other.name)).metrics  # its run folder may be gone
    return (
        f"With the same networks, the -log D generator (`{other.name}`, {other.steps:,} steps) reaches "
        f"{theirs['modes']}/{theirs['modes_total']} modes and {theirs['high_quality']:.1f}% high quality, against "
        f"{metrics['modes']}/{metrics['modes_total']} and {metrics['high_quality']:.1f}% here: the clipped critic "
        "covers the modes but does not make them sharp in this budget (the curve above)."
    )


def published_row(model: Model) -> str | None:
    """The row of PacGAN's Table 1 with the same recipe, if there is one."""
    if model.data in TOY and model.loss == "nonsaturating" and not model.conditioning:
        return "GAN" if model.pack == 1 else f"PacGAN{model.pack}"
    return None


def verdict(
    model: Model, metrics: dict[str, Any], records: list[dict[str, Any]], reference_frechet: float | None, cpu_seconds: float | None
) -> list[str]:
    """What the numbers say about this generator, in plain words, by fixed thresholds."""
    notes = conditional_notes(metrics) if model.conditioning else []
    if "modes" in metrics:
        found, total, quality, kl = metrics["modes"], metrics["modes_total"], metrics["high_quality"], metrics["kl"]
        if found <= total // 4:
            notes.append(f"**Mode collapse**: it covers only {found} of the {total} modes.")
        elif found < total:
            notes.append(f"**Partial mode collapse**: it misses {total - found} of the {total} modes.")
        if quality < 50:
            notes.append(
                f"Most samples ({100 - quality:.1f}%) lie more than 3 std from every centre: "
                "it has not learned the sharp modes."
            )
        if found > 1 and kl >= 0.1:
            notes.append(
                f"It spreads its samples unevenly over the modes it covers (KL {kl:.2f} nats; 0 is even, "
                f"{math.log(total):.2f} is everything on one mode)."
            )
        if not notes:
            notes.append(f"It covers all {total} modes with {quality:.0f}% of its samples close to a centre.")
        late = [r["high_quality"] for r in records[len(records) // 2 :]]
        if max(late) - min(late) >= 5:
            notes.append(
                f"Over the second half of training its high-quality share ranged {min(late):.0f}-{max(late):.0f}% "
                "from checkpoint to checkpoint (table above): it had not settled when training stopped."
            )
        if (model.loss, model.data) in LEVEL_OFF_STEPS:
            notes.append(level_off(records))
        if model.loss == "wgan":
            notes.append(wgan_comparison(model, metrics))
        row = published_row(model)
        if row:
            modes, share, kl = PACGAN_TABLE1[row][model.data]
            notes.append(
                f"PacGAN's Table 1 reports for its {row} row {modes} modes, {share}% high quality and reverse KL "
                f"{kl} (mean ± standard error of 10 trials of {PACGAN_STEPS:,} steps)."
            )
        notes.append("A toy generator of 2-D points: for teaching, comparing losses and testing metrics.")
    else:
        classes, confidence, kl = metrics["classes"], metrics["confidence"], metrics["kl"]
        noun = IMAGES[model.data][0]
        if metrics["frechet"] > 3 * reference_frechet:
            notes.append(
                f"**Far from real {noun}s**: Frechet distance {metrics['frechet']:.3g}, where the real train and "
                f"test splits are at {reference_frechet:.2g}; look at the picture before trusting the class counts."
            )
        if classes < metrics["classes_total"]:
            notes.append(f"**Mode collapse**: the classifier finds only {classes} of the 10 classes among its samples.")
        elif kl >= 0.1:
            notes.append(f"It draws some classes much more often than others (KL {kl:.2f} nats to uniform).")
        if confidence < 0.8:
            notes.append(
                f"The classifier is unsure about many samples (mean confidence {confidence:.2f}): "
                f"many do not look like any one kind of {noun}."
            )
        if not notes:
            notes.append("It draws all ten classes about equally often, and the classifier recognises them.")
        if model.data == "fashion-mnist":
            notes.append(settled(records, cpu_seconds))
            notes.append(
                "The metrics use a small classifier of Fashion-MNIST's classes, so they measure resemblance to this "
                "dataset only: a domain classifier's Frechet distance, not FID, and not comparable with the FIDs of "
                "papers (`ganzoo evaluate NAME --metrics fid` gives torch-fidelity's FID)."
            )
        elif metrics["frechet"] < reference_frechet:
            notes.append(
                f"Its Frechet distance ({metrics['frechet']:.2g}) is below that of the real train and test splits "
                f"({reference_frechet:.2g}): it is measured against the digits it trained on, so it cannot tell a "
                "close fit from copies of training digits."
            )
        if model.data == "digits":
            notes.append(
                "The metrics use a small classifier trained on these same digits, so they measure "
                "resemblance to this dataset only; 16x16 images upsampled from 8x8 originals are all it knows."
            )
    notes.append(LOSS_NOTES.get(model.loss, ""))
    notes.append(
        f"Trained for only {model.steps:,} steps on one CPU thread: the numbers say how this recipe does "
        "at this budget, not the best the loss can do."
        + (f" The PacGAN protocol trains {PACGAN_STEPS:,}." if model.data in TOY else "")
    )
    return [note for note in notes if note]


def conditional_notes(metrics: dict[str, Any]) -> list[str]:
    """What the per-class figures say about a conditional generator."""
    if "own_mode" in metrics:
        worst = min(metrics["per_class"], key=lambda r: r["own_mode"])
        return [
            f"Asked for a class, it draws in that class's mode {metrics['own_mode']:.1f}% of the time; its worst "
            f"class, {worst['class']}, {worst['own_mode']:.1f}%."
        ]
    worst = min(metrics["per_class"], key=lambda r: r["accuracy"])
    return [
        f"The classifier recognises the asked-for class in {metrics['accuracy']:.1f}% of its samples; "
        f"worst is {worst['class']}, at {worst['accuracy']:.1f}% (a classifier's errors count against it too)."
    ]


def protocol(metrics: dict[str, Any], reference_frechet: float | None) -> str:
    if "modes" in metrics:
        return (
            "The PacGAN / VEEGAN protocol on 2,500 samples: a sample is *high quality* within 3 std of "
            "its nearest centre; a mode is *captured* when it is the nearest centre of a high-quality "
            "sample; KL is the reverse KL, KL(generated || uniform), of the high-quality samples' mode "
            "histogram (the direction of PacGAN's Table 1). W1 is the exact Wasserstein-1 "
            "distance between 2,000 samples and 2,000 real points."
            + (" A conditional generator is asked for each class equally often; per class, the share of its "
               "samples whose nearest centre is the class's own mode, and the share within 3 std of it."
               if "own_mode" in metrics else "")
        )
    noun, source = IMAGES["fashion-mnist" if "frechet_real" in metrics else "digits"]
    features = 128 if "frechet_real" in metrics else 64
    return (
        f"{source}: classes covered by its predictions, KL of the predicted classes to uniform, mean max-softmax "
        f"confidence, and the Frechet distance between Gaussian fits of the classifier's {features} penultimate "
        f"features (a domain classifier's, not FID). For scale, the real train and test splits are at Frechet "
        f"distance {reference_frechet:.3g}."
        + (" A conditional generator is asked for each class equally often; per class, the classifier's accuracy "
           "(it predicts the asked-for class) and the Frechet distance to the real images of that class."
           if "accuracy" in metrics else "")
    )


def deviations(model: Model) -> str:
    """Where the recipe follows a published protocol, and where and why it departs from it."""
    if model.loss == "r3gan":
        return R3GAN_NOTE.format(steps=model.steps, images=model.steps * 64)
    if model.conditioning == "acgan" and model.data == "fashion-mnist":
        return (
            "AC-GAN's auxiliary classifier (Odena et al. 2017) as a head on the critic's features, on the recipe of "
            "the projection card: the hinge loss and spectral normalisation of every critic layer (Miyato et al., "
            "not Odena et al.'s -log D loss), conditional BatchNorm in the generator, the zoo's shared 28x28 DCGAN "
            "(width 64, a critic without BatchNorm); Adam 2e-4 with betas (0.5, 0.999), an EMA of the generator "
            f"(decay 0.999, the weights shipped here); {model.steps:,} steps, "
            + CONDITIONAL_LONGER.get(model.name, (0, "like every Fashion-MNIST DCGAN card"))[1] + "."
        )
    if model.conditioning and model.data == "fashion-mnist":
        return (
            "Miyato & Koyama's own recipe: the hinge loss, spectral normalisation of every critic layer and a "
            "projection critic (the inner product of a learned class embedding with the last features added to a "
            "linear score), with conditional BatchNorm in the generator, on the zoo's shared 28x28 DCGAN (width 64, "
            "a critic without BatchNorm) in place of their ResNets; Adam 2e-4 with betas (0.5, 0.999), an EMA of "
            f"the generator (decay 0.999, the weights shipped here), {model.steps:,} steps like every Fashion-MNIST card."
        )
    if model.conditioning:
        return (
            f"The recipe of the best unconditional `{model.data}` card (`{Model(model.loss, model.data).name}`), "
            f"conditioned on the labels (`--conditional`; the critic step's fakes take the real batch's labels, "
            f"the generator step draws them uniformly), with an EMA of the generator (decay 0.999, the weights "
            f"shipped here), trained for {model.steps:,} steps. Without the EMA, the same recipe on grid25 swung "
            "from 100% high quality at step 27,000 to 72% at 30,000. "
            + (
                "The projection critic follows Miyato & Koyama's form (a linear score plus the inner product of "
                "the class embedding with the last features) on the networks of the protocol, not their ResNets."
                if model.conditioning == "projection"
                else "AC-GAN's classifier shares the critic's features, as in Odena et al.; the losses are "
                "the -log D loss with instance noise, not the paper's, with the classification loss added."
            )
        )
    if model.data not in TOY:
        why = LOSS_ON_DATA.get((model.loss, model.data), ({}, ""))[1]
        return (
            "A DCGAN generator and critic of width 64 with the loss's recommended optimizer, "
            f"and an EMA of the generator (decay 0.999, the weights shipped here). {why}"
        ).strip()
    packing = f" The critic judges packs of {model.pack} samples (PacGAN{model.pack})." if model.pack > 1 else ""
    optimizer, paper = RECIPES.get(model.loss, ("Adam at learning rate 1e-4 with betas (0.8, 0.999)", ""))
    budget = f"{model.steps:,} generator steps instead of {PACGAN_STEPS:,}, the budget of a 2-core machine"
    departures = f"one way: {budget}"
    if model.name in TOY_EMA:
        decay, why = TOY_EMA[model.name]
        departures = f"two ways: {budget}; and an EMA of the generator (decay {decay}, the weights shipped here): {why}"
    return (
        "The PacGAN protocol (Lin et al. 2018): a 4 x 400 ReLU + BatchNorm generator with z in 2-D, a "
        f"3 x 200 maxout critic with 5 pieces, batch 100, {optimizer}.{packing} It departs from the "
        f"protocol in {departures}; the table below shows where the metrics stood along the way.{paper}"
    )


#: what the R3GAN cards follow of the official presets and where they depart
R3GAN_NOTE = (
    "R3GAN's objective and networks (Huang et al. 2024), sized for one CPU thread: the relativistic pairing loss "
    "with R1 and R2 at gamma 1 on every 4th critic step (lazy, times 4); the r3gan ResNet with 96, 48 and 24 maps at "
    "7x7, 14x14 and 28x28 (one block a stage, 12, 6 and 3 groups); Adam with betas (0, 0.9); and, on cosines over the "
    "first 320,000 images as the presets' schedules run over their first 20 million, the learning rate from 2e-3 to "
    "2e-4 and the half-life of the generator's EMA (the weights shipped here) from 0 to 32,000 images. It departs "
    "from the official presets in size (768 maps a stage there); in its learning rate, from ten times theirs: with their "
    "2e-4 to 5e-5 (and gamma 1 to 0.1, beta2 0.9 to 0.99) this network's earlier card reached only Frechet 98.3 in "
    "10,000 steps, while probes at a constant 1e-3 and 2e-3 were at 102 and 76.7 by step 1,000 (on 5,000 samples); "
    "in gamma (0.05 to 0.005 for CIFAR-10: at a constant 0.1 and 2e-4 the raw generator's Frechet rose from 530 at "
    "step 300 to 1,315 at 600, at 1 it fell from 559 to 501); in the lazy penalties; in its budget ({steps:,} steps "
    "of batch 64, {images:,} images); and in having no augmentation."
)
#: recipe -> (its optimizer in words, where it follows and departs from its own paper)
RECIPES = {
    "wgan": (
        "the WGAN paper's RMSProp at 5e-5, weight clipping to [-0.01, 0.01] and 5 critic steps per "
        "generator step (the PacGAN protocol's Adam is for the JS-family losses)",
        "",
    ),
    "wgan-gp": (
        "the WGAN-GP paper's Adam at 1e-4 with betas (0.5, 0.9), 5 critic steps per generator step and "
        "penalty weight 10",
        " Beside the WGAN-GP paper: its optimizer, critic steps and penalty; not its networks (its toy "
        "experiments use ReLU MLPs of 512 units, no BatchNorm), so that every card here shares the protocol's.",
    ),
    "hinge-sn": (
        "Adam at learning rate 1e-4 with betas (0.8, 0.999) and one critic step per generator step",
        " Beside Miyato et al.: the hinge loss and spectral normalisation of every critic layer (one power "
        "iteration) as in SNGAN; not its optimizer (Adam 2e-4, betas (0.5, 0.999)) nor its CNNs, so that "
        "only the objective differs from the other protocol cards.",
    ),
    "least-squares": (
        "Adam at learning rate 1e-4 with betas (0.8, 0.999)",
        " Beside Mao et al.: the least-squares objective with targets 0 (fake) and 1 (real); not its "
        "optimizer (Adam 2e-4, beta1 0.5), so that only the objective differs from the other protocol cards.",
    ),
    "nonsaturating-r1": (
        "Adam at learning rate 1e-4 with betas (0.8, 0.999)",
        " Beside Mescheder et al. 2018: the -log D loss with R1 on real data at their gamma of 10; not "
        "their optimizer (RMSProp 1e-4) nor their networks.",
    ),
}


def level_off(records: list[dict[str, Any]], rise: float = 3.0) -> str:
    """Whether the high-quality share still rose: its last two checkpoints' mean against the two before."""
    last = records[-4:]
    shares = " -> ".join(f"{r['high_quality']:.1f}%" for r in last)
    before, after = (sum(r["high_quality"] for r in pair) / 2 for pair in (last[:2], last[2:]))
    verdict = "it was still rising, so a longer run would do better" if after - before >= rise else "it no longer rose"
    return (
        f"Its high-quality share at steps {last[0]['step']:,} to {last[-1]['step']:,}: {shares}; the last two "
        f"average {after:.1f}%, {after - before:+.1f} points from the two before: {verdict} "
        f"(rising is +{rise:.0f} or more)."
    )


#: a Fashion-MNIST card has settled when its classifier Frechet distance moved by less than this
#: fraction over its last three checkpoints
SETTLED_WITHIN = 0.05


def settle_step(points: list[tuple[int, float]]) -> int | None:
    """The checkpoint by which three in a row first lay within SETTLED_WITHIN of each other and
    stayed so through the last one, or None when the last three do not."""
    settled_from = None
    for i in range(len(points) - 1, 1, -1):
        window = [frechet for _, frechet in points[i - 2 : i + 1]]
        if max(window) / min(window) - 1 >= SETTLED_WITHIN:
            break
        settled_from = points[i][0]
    return settled_from


def settling(points: list[tuple[int, float]]) -> str:
    """Where the Frechet distance settled, or how much it still moved over the last three checkpoints."""
    step = settle_step(points)
    if step is not None:
        return f"at {step:,}"
    first, last = points[-3][1], points[-1][1]
    return f"no: {100 * (last - first) / first:+.0f}% over the last three"


def settled(records: list[dict[str, Any]], cpu_seconds: float | None) -> str:
    """The card's note on whether the classifier Frechet distance had settled when training stopped,
    and why an unsettled one stopped where it did."""
    points = [(r["step"], r["frechet"]) for r in records]
    last, step = records[-3:], settle_step(points)
    cost = f" ({cpu_seconds / 60:.0f} CPU minutes here)" if cpu_seconds is not None else ""
    moving = "still falling, so a longer run would do better" if last[-1]["frechet"] < last[0]["frechet"] else "still moving"
    verdict = (
        f"it had settled by step {step:,}" if step is not None
        else f"it had not settled when it stopped at its budget of {last[-1]['step']:,} steps{cost}: the curve above was {moving}"
    )  # fmt: skip
    return (
        f"Its Frechet distance at steps {last[0]['step']:,} to {last[-1]['step']:,}: "
        + " -> ".join(f"{r['frechet']:.3g}" for r in last)
        + f": {verdict} (settled: within {100 * SETTLED_WITHIN:.0f}% over three checkpoints)."
    )


def progress_table(records: list[dict[str, Any]]) -> str:
    keys = [k for k in ("modes", "classes", "high_quality", "frechet", "kl", "own_mode_worst", "accuracy") if k in records[0]]
    rows = [(f"{r['step']:,}", *(f"{r[k]:.3g}" if isinstance(r[k], float) else r[k] for k in keys)) for r in records]
    return markdown_table(("step", *(LABELS[k] for k in keys)), rows)


def write_card(
    model: Model, weights: Path, seconds: tuple[float, float | None], records: list[dict[str, Any]], reference_frechet: float | None
) -> None:
    seconds, cpu_seconds = seconds
    card_dir = CARDS / model.name
    atomic_write(card_dir / WEIGHTS, lambda tmp: shutil.copyfile(weights, tmp))
    generator = ganzoo.load_generator(card_dir / WEIGHTS)
    data = DATASETS[model.data]["data"]
    metrics = evaluate(generator, data, seed=SEED)
    caption = draw_picture(generator, model, card_dir / PICTURE, f"{model.name}: {headline(metrics)}")
    draw_progress(records, card_dir / PROGRESS, f"{model.name}: ganzoo evaluate (seed 0) of each checkpoint", reference_frechet)
    exported = ganzoo_metadata(card_dir / WEIGHTS)
    front = {
        "license": "mit",
        "library_name": "ganzoo",
        "tags": ["gan", "ganzoo", model.loss, model.data, "toy-2d" if model.data in TOY else "image"]
        + (["pacgan"] if model.pack > 1 else []) + (["conditional", model.conditioning] if model.conditioning else []),
        "dataset": data,
        "loss": model.loss_fields["loss"],
        "constraints": model.config.get("constraints", []),
        "generator": exported["plugin"],
        "generator_config": json.loads(exported["config"]),
        "weights": WEIGHTS,
        "sha256": hashlib.sha256((card_dir / WEIGHTS).read_bytes()).hexdigest(),
        "metrics": metrics,
        "evaluation": {"command": f"ganzoo evaluate {model.name} --seed {SEED}", "seed": SEED},
        "training": {
            "command": model.command,
            "steps": model.steps,
            "seed": SEED,
            "seconds": round(seconds, 1),
            **({"cpu_seconds": round(cpu_seconds, 1)} if cpu_seconds is not None else {}),
            "machine": machine(),
            **({"frechet_by_step": {r["step"]: round(r["frechet"], 4) for r in records}} if "frechet" in records[0] else {}),
        },
    }
    values = {
        "front_matter": yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=1000),
        "name": model.name,
        "summary": f"A {'class-conditional ' if model.conditioning else ''}generator for {DESCRIPTIONS[model.data]}, "
        f"trained with {DESCRIPTIONS[model.loss]}"
        + (f", its critic judging packs of {model.pack} samples (PacGAN{model.pack}). " if model.pack > 1 else ". ")
        + (f"Conditioned on the class with {DESCRIPTIONS[model.conditioning]}. " if model.conditioning else "")
        + f"Headline: {headline(metrics)}.",
        "picture_caption": caption,
        "usage": usage(model),
        "steps": f"{model.steps:,}",
        "batch_size": str(json.loads((weights.parent / "config.json").read_text())["batch_size"]),
        "seed": str(SEED),
        "minutes": f"{seconds / 60:.1f}",
        "cpu": f" and {cpu_seconds / 60:.1f} minutes of CPU time" if cpu_seconds is not None else "",
        "machine": machine(),
        "command": model.command,
        "deviations": deviations(model),
        "progress_table": progress_table(records),
        "metrics_table": markdown_table(("metric", "value"), metric_rows(metrics))
        + ("\n\nand per class (the samples drawn for it):\n\n" + markdown_table(*class_rows(metrics)) if model.conditioning else ""),
        "protocol": protocol(metrics, reference_frechet),
        "limitations": "\n".join(f"- {note}" for note in verdict(model, metrics, records, reference_frechet, cpu_seconds)),
    }
    text = string.Template(TEMPLATE.read_text()).substitute(values)
    atomic_write(card_dir / "README.md", lambda tmp: tmp.write_text(text))


def usage(model: Model) -> str:
    """The card's "Use it" lines."""
    side = {"digits": 16, "fashion-mnist": 28}.get(model.data)
    n, shape = ("64", f"(64, 1, {side}, {side}) images in [-1, 1]") if side else ("1000", "(1000, 2) points")
    if not model.conditioning:
        code, command = f".sample({n})  # {shape}", f"`ganzoo sample {model.name} --n {n} --out {model.name}.png`"
    else:
        code = f".sample({n}, labels=[7] * {n})  # {shape}, all of class 7"
        command = f"`ganzoo sample {model.name} --classes 0,3,7 --out {model.name}.png` (without --classes, every class)"
    return f'```python\nimport ganzoo\nsamples = ganzoo.load_pretrained("{model.name}"){code}\n```\n\nor {command}.'


def ganzoo_metadata(path: Path) -> dict[str, str]:
    from ganzoo.checkpoint import GENERATOR, read_metadata

    return read_metadata(path, GENERATOR)


def build(model: Model, force: bool) -> str:
    """Train, evaluate and write one card; runs in its own process."""
    torch.set_num_threads(1)  # the recorded times and the bit-exact weights assume one thread
    card_dir = CARDS / model.name
    if (card_dir / WEIGHTS).is_file() and (card_dir / "README.md").is_file() and not force:
        trained = model_card(str(card_dir)).training.get("steps")
        if trained == model.steps:
            return f"{model.name}: card exists, skipped (--force retrains)"
        print(f"{model.name}: its card has {trained} steps, the zoo asks {model.steps}: training", flush=True)
    if force:
        shutil.rmtree(ROOT / model.config["out"], ignore_errors=True)
    weights = train(model)
    seconds = training_seconds(weights.parent)
    records = progress(model, weights.parent)
    write_card(model, weights, seconds, records, reference_frechet(model.data))
    return f"{model.name}: trained {model.steps} steps in {seconds[0] / 60:.1f} min"


def published(card: ModelCard) -> str:
    """PacGAN's Table 1 row for the same recipe, or the real data's own score on digits."""
    model = next((m for m in MODELS if m.name == card.name), None)
    row = published_row(model) if model else None
    if row:
        modes, quality, _ = PACGAN_TABLE1[row][card.dataset]
        return f"{row}: {modes} modes, {quality}% high quality"
    data = next((d for d, fields in DATASETS.items() if fields["data"] == card.dataset), None)
    if data in IMAGES:
        return f"real train vs test data: Frechet {reference_frechet(data):.3g}"
    return ""


def zoo_table(cards: list[ModelCard], links: str, published_column: bool = True, settle_column: bool = False) -> str:
    """The cards side by side, per dataset, every objective next to the others; `links` leads to model_cards/."""
    rows = []
    for card in sorted(cards, key=lambda c: (c.dataset, c.name)):
        minutes = card.training.get("seconds", 0) / 60
        cpu = card.training.get("cpu_seconds")
        row = [f"[`{card.name}`]({links}{card.name}/README.md)", f"`{card.dataset}`", card.objective, headline(card.metrics)]
        row += [published(card)] if published_column else []
        row += [f"{card.training.get('steps', 0):,}"]
        row += [settling(sorted(card.training["frechet_by_step"].items()))] if settle_column else []
        row += [f"{minutes:.1f} min" + (f" ({cpu / 60:.1f} CPU)" if cpu is not None else "")]
        rows.append(tuple(row))
    header = ["model", "data", "loss", "headline (ganzoo evaluate, seed 0)"]
    header += ["published (PacGAN Table 1, 400,000 steps) or real data"] if published_column else []
    header += ["steps"] + ([f"settled (Frechet within {100 * SETTLED_WITHIN:.0f}% over 3 checkpoints)"] if settle_column else [])
    return markdown_table((*header, "wall time, 1 CPU thread"), rows)


def draw_fashion_curves(cards: list[ModelCard], path: Path) -> None:
    """Every Fashion-MNIST card's classifier Frechet at its checkpoints against the CPU time spent to
    reach it (a steady pace assumed: the card's CPU time over its steps), log scales: the objectives'
    quality per CPU hour, side by side."""
    from matplotlib import colormaps
    from matplotlib.ticker import ScalarFormatter

    fig, ax = new_figure(figsize=(7, 4.2))
    colours = colormaps["tab10"].colors + ("black",) + colormaps["tab20"].colors[1::2]  # ten strong, black, then light
    for card, colour in zip(sorted(cards, key=lambda c: c.metrics["frechet"]), colours):
        per_step = card.training["cpu_seconds"] / card.training["steps"] / 60
        points = sorted(card.training["frechet_by_step"].items())
        ax.plot([step * per_step for step, _ in points], [f for _, f in points], "o--" if "accuracy" in card.metrics else "o-",
                color=colour, markersize=3, label=f"{card.name} ({card.metrics['frechet']:.3g})")  # fmt: skip
    ax.axhline(reference_frechet("fashion-mnist"), color="grey", linestyle=":", label="real train vs test data")
    ax.set(xscale="log", yscale="log", xlabel="CPU minutes (one thread)", ylabel="classifier Frechet (not FID)")
    for axis in (ax.xaxis, ax.yaxis):  # 10 and 100, not 10^1 and 10^2 (after the scale, which resets it)
        axis.set_major_formatter(ScalarFormatter())
    ax.set_title("Fashion-MNIST cards at each checkpoint (dashed: conditional)", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.grid(alpha=0.3, which="both")
    save_figure(fig, path)


def write_tables() -> None:
    """Regenerate the zoo's table in docs/guides/zoo.md and the Fashion-MNIST one in README.md, from the shipped cards."""
    cards = [model_card(f"ganzoo/{p.name}") for p in CARDS.iterdir() if (p / "README.md").is_file()]
    replace_block("zoo-table", zoo_table(cards, "../model_cards/"), ZOO_PAGE)
    fashion = [card for card in cards if card.dataset == DATASETS["fashion-mnist"]["data"]]
    if fashion:
        replace_block("fashion-table", zoo_table(fashion, "model_cards/", published_column=False, settle_column=True))
        pictures = []
        for kind, labelled in (("without labels", False), ("with labels", True)):
            if kind_cards := [c for c in fashion if ("accuracy" in c.metrics) == labelled]:
                best = min(kind_cards, key=lambda card: card.metrics["frechet"])
                pictures.append(f"![{best.name}, the zoo's best Fashion-MNIST card {kind} (classifier Frechet "
                                f"{best.metrics['frechet']:.3g}): samples from `ganzoo sample {best.name}`]"
                                f"(model_cards/{best.name}/{PICTURE})")  # fmt: skip
        replace_block("fashion-picture", "\n".join(pictures))
        draw_fashion_curves(fashion, FASHION_CURVES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="*", help="shell pattern of model names, e.g. 'wgan-*'")
    parser.add_argument("--force", action="store_true", help="retrain from scratch even if the card exists")
    parser.add_argument("--jobs", type=int, default=1, help="trainings at once, each on one thread")
    parser.add_argument("--table-only", action="store_true", help="only regenerate the zoo's tables")
    args = parser.parse_args()
    if not args.table_only:
        chosen = [m for m in MODELS if fnmatch.fnmatchcase(m.name, args.only)]
        if not chosen:
            raise SystemExit(f"no model matches '{args.only}'; models: {', '.join(m.name for m in MODELS)}")
        # Fresh processes (spawn, not fork): each sets its own thread count before torch runs anything.
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for message in pool.map(build, chosen, [args.force] * len(chosen)):
                print(message, flush=True)
    write_tables()


if __name__ == "__main__":
    main()

"""Train, evaluate and write the model card of every generator in ganzoo's pretrained zoo.

    python scripts/train_zoo.py                        # every model whose card is missing
    python scripts/train_zoo.py --jobs 2               # two trainings at once
    python scripts/train_zoo.py --only 'wgan-*' --force
    python scripts/train_zoo.py --table-only           # only regenerate the README's zoo table

Each of the four losses (wgan with the clip constraint) is trained on ring8, grid25 and
digits (16x16, DCGAN generator and critic): twelve models named LOSS-DATA. A model is
skipped when its card and weights exist (unless --force); an interrupted training resumes
from its run folder under runs/zoo/. Every process trains on one CPU thread with fixed seeds,
then scores the generator with the code of `ganzoo evaluate` (seed 0), draws a picture and
writes model_cards/NAME/ (README.md from scripts/model_card_template.md, weights, sample.png).
Finally the zoo table in README.md is regenerated between its markers.
"""

from __future__ import annotations

import argparse
import fnmatch
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
from ganzoo.checkpoint import atomic_write
from ganzoo.evaluation import evaluate, headline, metric_rows
from ganzoo.pictures import save_samples
from ganzoo.zoo import model_card
from shared import markdown_table, replace_block

ROOT = Path(__file__).resolve().parents[1]
CARDS = ROOT / "model_cards"
RUNS = ROOT / "runs" / "zoo"
TEMPLATE = Path(__file__).with_name("model_card_template.md")
WEIGHTS = "generator.safetensors"
PICTURE = "sample.png"
SEED = 0

#: loss name -> its TrainConfig fields; options are spelled out so the card states them
LOSSES = {
    "minimax": {"loss": "minimax"},
    "nonsaturating": {"loss": "nonsaturating"},
    "instance-noise": {"loss": "instance-noise:base=nonsaturating,sigma=0.1"},
    "wgan": {"loss": "wgan", "constraints": ["clip:c=0.01"]},
}
#: dataset name -> its TrainConfig fields (slowest first, so parallel jobs finish together)
DATASETS = {
    "digits": {"data": "digits:size=16", "generator": "dcgan:width=32", "critic": "dcgan:width=32"},
    "grid25": {"data": "grid25"},
    "ring8": {"data": "ring8"},
}
#: generator steps, chosen from measured speed (one thread of a shared AMD EPYC) to fit the
#: whole zoo in about 30 minutes of two cores: a toy step of the JS-family losses takes ~5 ms,
#: a WGAN step ~30 ms (5 critic steps, 100 early on), a digits step ~70 ms, a WGAN digits step ~200 ms.
STEPS = {
    ("ring8", "js"): 10_000, ("grid25", "js"): 10_000, ("digits", "js"): 3_000,
    ("ring8", "wgan"): 10_000, ("grid25", "wgan"): 10_000, ("digits", "wgan"): 1_500,
}

DESCRIPTIONS = {
    "minimax": "the original saturating GAN loss of Goodfellow et al. (2014): G minimises E[log(1 - D(G(z)))]",
    "nonsaturating": "the non-saturating -log D loss of Goodfellow et al. (2014): G minimises -E[log D(G(z))]",
    "instance-noise": "the -log D loss with instance noise (Arjovsky & Bottou 2017): Gaussian noise of std 0.1, "
    "annealed linearly to 0, on every critic input",
    "wgan": "the Wasserstein GAN of Arjovsky, Chintala & Bottou (2017) with weight clipping to [-0.01, 0.01], "
    "RMSProp at learning rate 5e-5 and 5 critic steps per generator step (100 in the first 25 and every 500th)",
    "ring8": "ring8, eight Gaussians (std 0.01) evenly spaced on the unit circle",
    "grid25": "grid25, 25 Gaussians (std 0.05) on the grid {-4, -2, 0, 2, 4}^2",
    "digits": "scikit-learn's 1,797 handwritten 8x8 digits, upsampled to 16x16",
}
LOSS_NOTES = {
    "minimax": "The saturating loss gives the generator vanishing gradients whenever the critic wins; "
    "Goodfellow et al. recommend the -log D variant instead.",
    "wgan": "Weight clipping with the paper's small learning rate learns slowly, and these runs are far "
    "shorter than the paper's; the clipped critic also limits how sharp the learned density can be.",
}


@dataclass(frozen=True)
class Model:
    loss: str
    data: str

    @property
    def name(self) -> str:
        return f"{self.loss}-{self.data}"

    @property
    def steps(self) -> int:
        return STEPS[self.data, "wgan" if self.loss == "wgan" else "js"]

    @property
    def config(self) -> dict[str, Any]:
        """The TrainConfig fields, as `ganzoo train` flags would give them."""
        fields = {**LOSSES[self.loss], **DATASETS[self.data], "steps": self.steps, "seed": SEED, "device": "cpu"}
        return {**fields, "out": str((RUNS / self.name).relative_to(ROOT))}

    @property
    def command(self) -> str:
        """The `ganzoo train` command for the same run; one thread makes it bit-identical."""
        flags = []
        for key, value in self.config.items():
            flag = "--constraint" if key == "constraints" else "--" + key.replace("_", "-")
            flags += [f"{flag} {v}" for v in (value if isinstance(value, list) else [value])]
        return "OMP_NUM_THREADS=1 ganzoo train " + " ".join(flags)


MODELS = [Model(loss, data) for data in DATASETS for loss in LOSSES]


def machine() -> str:
    cpu = platform.processor()
    if not cpu and Path("/proc/cpuinfo").is_file():
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else ""
    return f"CPU, 1 thread, {cpu or platform.machine()}"


def training_seconds(run_dir: Path) -> float:
    """Wall time of the training loop, summed over its logged intervals (resumes included)."""
    total, previous = 0.0, 0
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        total += record["sec_per_step"] * (record["step"] - previous)
        previous = record["step"]
    return total


def train(model: Model) -> Path:
    """Train (or resume, or just re-export a finished run) and return the exported generator."""
    run_dir = ROOT / model.config["out"]
    if any((run_dir / "checkpoints").glob("step-*.safetensors")):
        print(f"{model.name}: resuming {run_dir}", flush=True)
        return ganzoo.train({"steps": model.steps}, resume=run_dir, quiet=True).generator_path
    return ganzoo.train({**model.config, "out": str(run_dir)}, quiet=True).generator_path


def draw_picture(generator: torch.nn.Module, model: Model, path: Path, title: str) -> str:
    """Samples from seed 0 (over real points for 2-D data); returns the picture's caption."""
    if generator.sample_shape == (2,):
        spec = ganzoo.PluginSpec.model_validate(model.config["data"])
        torch.manual_seed(SEED)
        real = next(ganzoo.create_dataset(spec.name, **spec.options).batches(1000, torch.device("cpu")))
        fake = generator.sample(1000, generator=torch.Generator().manual_seed(SEED))
        save_samples(path, fake, real, title)
        return "1,000 generated points (orange) over 1,000 real ones (grey), seed 0"
    save_samples(path, generator.sample(64, generator=torch.Generator().manual_seed(SEED)), title=title)
    return "64 generated digits, seed 0 (`ganzoo sample NAME --seed 0` draws the same)"


def digits_reference_frechet() -> float:
    """Frechet distance between the real train and test splits at 16x16: a scale for the cards."""
    from ganzoo.metrics import frechet_distance, load_digits_classifier

    classifier = load_digits_classifier()
    with torch.no_grad():
        train_images, test_images = (ganzoo.create_dataset("digits", size=16, split=s).tensors()[0] for s in ("train", "test"))
        return frechet_distance(classifier.features(train_images), classifier.features(test_images))


def verdict(model: Model, metrics: dict[str, Any]) -> list[str]:
    """What the numbers say about this generator, in plain words, by fixed thresholds."""
    notes = []
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
        notes.append("A toy generator of 2-D points: for teaching, comparing losses and testing metrics.")
    else:
        classes, confidence, kl = metrics["classes"], metrics["confidence"], metrics["kl"]
        if classes < metrics["classes_total"]:
            notes.append(f"**Mode collapse**: the classifier finds only {classes} of the 10 digits among its samples.")
        elif kl >= 0.1:
            notes.append(f"It draws some digits much more often than others (KL {kl:.2f} nats to uniform).")
        if confidence < 0.8:
            notes.append(
                f"The classifier is unsure about many samples (mean confidence {confidence:.2f}): "
                "many do not look like any one digit."
            )
        if not notes:
            notes.append("It draws all ten digits about equally often, and the classifier recognises them.")
        notes.append(
            "The metrics use a small classifier trained on these same digits, so they measure "
            "resemblance to this dataset only; 16x16 images upsampled from 8x8 originals are all it knows."
        )
    notes.append(LOSS_NOTES.get(model.loss, ""))
    notes.append(
        f"Trained for only {model.steps:,} steps on one CPU thread: the numbers say how this recipe does "
        "at this budget, not the best the loss can do."
    )
    return [note for note in notes if note]


def protocol(metrics: dict[str, Any], reference_frechet: float | None) -> str:
    if "modes" in metrics:
        return (
            "The PacGAN / VEEGAN protocol on 2,500 samples: a sample is *high quality* within 3 std of "
            "its nearest centre; a mode is *captured* when it is the nearest centre of a high-quality "
            "sample; KL is that of the captured-mode histogram to uniform. W1 is the exact Wasserstein-1 "
            "distance between 2,000 samples and 2,000 real points."
        )
    return (
        "Scores from ganzoo's digits classifier on 1,797 samples against the 1,797 real digits: classes "
        "covered by its predictions, KL of the predicted classes to uniform, mean max-softmax confidence, "
        "and the Frechet distance between Gaussian fits of the classifier's 64 penultimate features. "
        f"For scale, the real train and test splits are at Frechet distance {reference_frechet:.3g}."
    )


def write_card(model: Model, weights: Path, seconds: float, reference_frechet: float | None) -> None:
    card_dir = CARDS / model.name
    atomic_write(card_dir / WEIGHTS, lambda tmp: shutil.copyfile(weights, tmp))
    generator = ganzoo.load_generator(card_dir / WEIGHTS)
    data = DATASETS[model.data]["data"]
    metrics = evaluate(generator, data, seed=SEED)
    caption = draw_picture(generator, model, card_dir / PICTURE, f"{model.name}: {headline(metrics)}")
    exported = ganzoo_metadata(card_dir / WEIGHTS)
    front = {
        "license": "mit",
        "library_name": "ganzoo",
        "tags": ["gan", "ganzoo", model.loss, model.data, "image" if model.data == "digits" else "toy-2d"],
        "dataset": data,
        "loss": LOSSES[model.loss]["loss"],
        "constraints": LOSSES[model.loss].get("constraints", []),
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
            "machine": machine(),
        },
    }
    values = {
        "front_matter": yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=1000),
        "name": model.name,
        "summary": f"A generator for {DESCRIPTIONS[model.data]}, trained with {DESCRIPTIONS[model.loss]}. "
        f"Headline: {headline(metrics)}.",
        "picture_caption": caption,
        "usage_n": "64" if model.data == "digits" else "1000",
        "usage_shape": "(64, 1, 16, 16) images in [-1, 1]" if model.data == "digits" else "(1000, 2) points",
        "steps": f"{model.steps:,}",
        "batch_size": str(json.loads((weights.parent / "config.json").read_text())["batch_size"]),
        "seed": str(SEED),
        "minutes": f"{seconds / 60:.1f}",
        "machine": machine(),
        "command": model.command,
        "metrics_table": markdown_table(("metric", "value"), metric_rows(metrics)),
        "protocol": protocol(metrics, reference_frechet),
        "limitations": "\n".join(f"- {note}" for note in verdict(model, metrics)),
    }
    text = string.Template(TEMPLATE.read_text()).substitute(values)
    atomic_write(card_dir / "README.md", lambda tmp: tmp.write_text(text))


def ganzoo_metadata(path: Path) -> dict[str, str]:
    from ganzoo.checkpoint import GENERATOR, read_metadata

    return read_metadata(path, GENERATOR)


def build(model: Model, force: bool) -> str:
    """Train, evaluate and write one card; runs in its own process."""
    torch.set_num_threads(1)  # the recorded times and the bit-exact weights assume one thread
    card_dir = CARDS / model.name
    if (card_dir / WEIGHTS).is_file() and (card_dir / "README.md").is_file() and not force:
        return f"{model.name}: card exists, skipped (--force retrains)"
    if force:
        shutil.rmtree(ROOT / model.config["out"], ignore_errors=True)
    weights = train(model)
    seconds = training_seconds(weights.parent)
    write_card(model, weights, seconds, digits_reference_frechet() if model.data == "digits" else None)
    return f"{model.name}: trained {model.steps} steps in {seconds / 60:.1f} min"


def write_readme_table() -> None:
    """Regenerate the zoo table in README.md between its markers, from the shipped cards."""
    rows = []
    for folder in sorted(p for p in CARDS.iterdir() if (p / "README.md").is_file()):
        card = model_card(f"ganzoo/{folder.name}")
        minutes = card.training.get("seconds", 0) / 60
        rows.append((
            f"[`{card.name}`](model_cards/{card.name}/README.md)",
            f"`{card.dataset}`",
            card.objective,
            headline(card.metrics),
            f"{card.training.get('steps', 0):,}",
            f"{minutes:.1f} min",
        ))
    table = markdown_table(("model", "data", "loss", "headline (ganzoo evaluate, seed 0)", "steps", "CPU time"), rows)
    replace_block("zoo-table", table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="*", help="shell pattern of model names, e.g. 'wgan-*'")
    parser.add_argument("--force", action="store_true", help="retrain from scratch even if the card exists")
    parser.add_argument("--jobs", type=int, default=1, help="trainings at once, each on one thread")
    parser.add_argument("--table-only", action="store_true", help="only regenerate the README zoo table")
    args = parser.parse_args()
    if not args.table_only:
        chosen = [m for m in MODELS if fnmatch.fnmatchcase(m.name, args.only)]
        if not chosen:
            raise SystemExit(f"no model matches '{args.only}'; models: {', '.join(m.name for m in MODELS)}")
        # Fresh processes (spawn, not fork): each sets its own thread count before torch runs anything.
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for message in pool.map(build, chosen, [args.force] * len(chosen)):
                print(message, flush=True)
    write_readme_table()


if __name__ == "__main__":
    main()

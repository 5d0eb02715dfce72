"""Train a classifier that a dataset's evaluation ships, and write its weights.

    python scripts/train_classifier.py digits          # well under a minute
    python scripts/train_classifier.py fashion-mnist   # ~15 minutes on one CPU thread

Trains on the dataset's train split with small random shifts, reports the accuracy on its
test split, writes plugins/assets/<the classifier's file> atomically and prints its sha256,
which belongs in the classifier's `sha256` (plugins/classifiers.py). Fashion-MNIST's also
records the real data's own Frechet distance (10,000 train images against the 10,000 test
images) that its evaluation prints beside a generator's. One thread, fixed seeds: the same
machine writes the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save

import ganzoo
from ganzoo_plugins import classifiers
from ganzoo_plugins.digits import digits_split

ASSETS = Path(__file__).resolve().parents[1] / "plugins" / "assets"


@dataclass(frozen=True)
class Recipe:
    classifier: type[classifiers.Classifier]
    epochs: int
    batch_size: int
    lr: float
    shift: int  # pixels each way

    def splits(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        if self.classifier is classifiers.DigitsClassifier:
            return {split: digits_split(split) for split in ("train", "test")}
        return {split: ganzoo.create_dataset("fashion-mnist", split=split).tensors() for split in ("train", "test")}


RECIPES = {
    "digits": Recipe(classifiers.DigitsClassifier, epochs=30, batch_size=64, lr=2e-3, shift=1),
    "fashion-mnist": Recipe(classifiers.FashionClassifier, epochs=8, batch_size=128, lr=2e-3, shift=2),
}


def random_shift(images: torch.Tensor, rng: torch.Generator, shift: int) -> torch.Tensor:
    """Shift each (B, 1, S, S) image by up to `shift` pixels each way, filling with background (-1)."""
    batch, _, size, _ = images.shape
    padded = F.pad(images[:, 0], (shift,) * 4, value=-1.0)
    offsets = torch.randint(0, 2 * shift + 1, (batch, 2), generator=rng)
    rows = (offsets[:, 0, None] + torch.arange(size))[:, :, None]
    cols = (offsets[:, 1, None] + torch.arange(size))[:, None, :]
    return padded[torch.arange(batch)[:, None, None], rows, cols].unsqueeze(1)


@torch.no_grad()
def accuracy(classifier: classifiers.Classifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Percentage of correctly classified images."""
    predicted = torch.cat([classifier(chunk).argmax(1) for chunk in images.split(1000)])
    return 100.0 * float((predicted == labels).double().mean())


def train(recipe: Recipe, images: torch.Tensor, labels: torch.Tensor, seed: int) -> classifiers.Classifier:
    torch.manual_seed(seed)  # the initial weights
    rng = torch.Generator().manual_seed(seed)  # batches and shifts
    classifier = recipe.classifier()
    optimizer = torch.optim.Adam(classifier.parameters(), lr=recipe.lr, weight_decay=1e-4)
    steps = recipe.epochs * -(-len(images) // recipe.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=steps)
    from tqdm.auto import tqdm

    with tqdm(total=steps, desc=f"training {recipe.classifier.__name__}", unit="step") as bar:
        for _ in range(recipe.epochs):
            for batch in torch.randperm(len(images), generator=rng).split(recipe.batch_size):
                loss = F.cross_entropy(classifier(random_shift(images[batch], rng, recipe.shift)), labels[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.update(1)
    return classifier.eval()


@torch.no_grad()
def train_test_frechet(classifier: classifiers.Classifier, train_images: torch.Tensor, test_images: torch.Tensor) -> float:
    """The real data's own Frechet distance: as many train images as the test split has (a fixed
    subset) against the test images, in the classifier's features."""
    subset = torch.from_numpy(np.random.RandomState(0).permutation(len(train_images))[: len(test_images)])
    features = [torch.cat([classifier.features(c) for c in x.split(1000)]) for x in (train_images[subset], test_images)]
    return ganzoo.frechet_distance(*features)


def canonical_safetensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """safetensors bytes with a sorted header, so equal weights always give the same sha256.

    The library writes the metadata in hash-map order, which changes from run to run.
    """
    data = save(tensors, metadata=metadata)
    length = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8 : 8 + length]), separators=(",", ":"), sort_keys=True)
    return data[:8] + header.encode().ljust(length) + data[8 + length :]  # same length, space-padded


def write_atomically(data: bytes, path: Path) -> None:
    """Write to a temporary file beside `path`, then rename it: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the asset ships to everyone
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", choices=RECIPES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)  # threaded reductions change the last bits, and so the sha256

    recipe = RECIPES[args.data]
    splits = recipe.splits()
    classifier = train(recipe, *splits["train"], args.seed)
    test_accuracy = accuracy(classifier, *splits["test"])
    metadata = {"test_accuracy": f"{test_accuracy:.2f}", "train_samples": str(len(splits["train"][0])), "seed": str(args.seed)}
    if recipe.classifier is not classifiers.DigitsClassifier:
        metadata["frechet_train_test"] = f"{train_test_frechet(classifier, splits['train'][0], splits['test'][0]):.6g}"
    tensors = {name: value.contiguous() for name, value in classifier.state_dict().items()}
    out = ASSETS / recipe.classifier.file
    write_atomically(canonical_safetensors(tensors, metadata), out)
    print(f"accuracy: {test_accuracy:.2f}% on the test split; {', '.join(f'{k} {v}' for k, v in metadata.items())}")
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")
    print(f'sha256 = "{hashlib.sha256(out.read_bytes()).hexdigest()}"')


if __name__ == "__main__":
    main()

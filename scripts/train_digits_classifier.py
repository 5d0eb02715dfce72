"""Train the digits classifier that ganzoo.metrics ships, and write its weights.

    python scripts/train_digits_classifier.py [--seed 0] [--epochs 30]

Trains on the digits "train" split with small random shifts, reports accuracy on the
held-out "test" split (see ganzoo.metrics.digits_split), writes
ganzoo/assets/digits_classifier.safetensors atomically and prints its sha256, which
belongs in ganzoo.metrics.DIGITS_CLASSIFIER_SHA256. Runs in well under a minute on a CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save

from ganzoo import metrics

OUT = Path(__file__).resolve().parents[1] / "ganzoo" / "assets" / metrics.DIGITS_CLASSIFIER_FILE


def random_shift(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Shift each (B, 1, 8, 8) image by up to one pixel each way, filling with background (-1)."""
    batch, _, size, _ = images.shape
    padded = F.pad(images[:, 0], (1, 1, 1, 1), value=-1.0)
    offsets = torch.randint(0, 3, (batch, 2), generator=rng)
    rows = (offsets[:, 0, None] + torch.arange(size))[:, :, None]
    cols = (offsets[:, 1, None] + torch.arange(size))[:, None, :]
    return padded[torch.arange(batch)[:, None, None], rows, cols].unsqueeze(1)


@torch.no_grad()
def accuracy(classifier: metrics.DigitsClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Percentage of correctly classified images."""
    return 100.0 * float((classifier(images).argmax(1) == labels).double().mean())


def train(seed: int, epochs: int, batch_size: int = 64) -> tuple[metrics.DigitsClassifier, int]:
    torch.set_num_threads(1)  # threaded reductions change the last bits, and so the sha256
    images, labels = metrics.digits_split("train")
    torch.manual_seed(seed)  # the initial weights
    rng = torch.Generator().manual_seed(seed)  # batches and shifts
    classifier = metrics.DigitsClassifier()
    optimizer = torch.optim.Adam(classifier.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * -(-len(images) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    for _ in range(epochs):
        for batch in torch.randperm(len(images), generator=rng).split(batch_size):
            loss = F.cross_entropy(classifier(random_shift(images[batch], rng)), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return classifier.eval(), len(images)


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
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()

    classifier, train_samples = train(args.seed, args.epochs)
    test_accuracy = accuracy(classifier, *metrics.digits_split("test"))
    metadata = {"test_accuracy": f"{test_accuracy:.2f}", "train_samples": str(train_samples), "seed": str(args.seed)}
    tensors = {name: value.contiguous() for name, value in classifier.state_dict().items()}
    write_atomically(canonical_safetensors(tensors, metadata), OUT)
    print(f"held-out accuracy: {test_accuracy:.2f}% on the test split")
    print(f"wrote {OUT}")
    print(f'sha256: DIGITS_CLASSIFIER_SHA256 = "{hashlib.sha256(OUT.read_bytes()).hexdigest()}"')


if __name__ == "__main__":
    main()

"""`ganzoo zoo export RUN DIR`: a finished run as a model card folder, ready for a card distribution.

The folder holds README.md (front matter with the metrics `ganzoo evaluate` measures, the
sha256 and the command that trains it again), generator.safetensors, sample.png and the
run's config.json. Its name is the model's name.
"""

from __future__ import annotations

import json
import secrets
import shlex
import shutil
from pathlib import Path

import torch
import yaml

from .checkpoint import GENERATOR, load_generator, load_metadata_json, read_metadata
from .config import to_config
from .errors import GanzooError, UsageError
from .evaluation import reads_files, evaluate, headline, metric_rows, parse_data
from .pictures import picture_labels, save_samples
from .registry import create_dataset
from .zoo import CARD_FILE, ModelCard, file_sha256

WEIGHTS, PICTURE, CONFIG, ONNX = "generator.safetensors", "sample.png", "config.json", "generator.onnx"
SEED = 0

BODY = """
# {name}

A generator for `{data}`, trained with {objective}. Headline (`ganzoo evaluate`, seed {seed}): {headline}.

![{caption}]({picture})

## Use it

```python
import ganzoo
samples = ganzoo.load_pretrained({literal}).sample(64)  # this folder, by its path from where it was exported
```

Once the card is published (a card package, or the Hugging Face Hub: `ganzoo zoo export` says how),
it loads by its name: `ganzoo.load_pretrained("{name}")`.

## How it was made

{steps:,} generator steps, batch size {batch_size}, seed {train_seed}. The command that trains it
again, from this folder:

```bash
{command}
```

## Metrics

{table}
"""
#: what a card of data without an evaluation of its own says in place of the table
UNMEASURED = (
    "`{data}` has no evaluation of its own, so this card records no metrics. Image data can be scored "
    "with torch-fidelity: `ganzoo evaluate {path} --data {data} --metrics fid,kid --n 10000`."
)


def export_card(run: str | Path, folder: str | Path, license: str = "mit", data: str | None = None, onnx: bool = False) -> Path:
    """Write the card folder `folder` for the finished run `run`; returns the folder. With `onnx`,
    the folder also holds generator.onnx (checked to load before anything is written)."""
    run, folder = Path(run), Path(folder)
    weights = run / WEIGHTS
    if not weights.is_file() or not (run / CONFIG).is_file():
        raise UsageError(f"{run} holds no finished run ({CONFIG} and {WEIGHTS}); train it to the end first")
    if folder.exists() and any(folder.iterdir()):
        raise UsageError(f"{folder} already exists and is not empty; choose a new folder (its name is the model's)")
    try:
        config = to_config(json.loads((run / CONFIG).read_text()))
    except ValueError as exc:
        raise UsageError(f"{run / CONFIG} is not a ganzoo run config: {exc}") from None
    trained = load_metadata_json(read_metadata(weights, GENERATOR), "trained", weights, dict).get("steps")
    if trained != config.steps:  # resumed for longer and stopped: the file holds an older generator
        raise UsageError(
            f"{run} is unfinished: its {WEIGHTS} was trained {trained} steps, its {CONFIG} asks for {config.steps}; "
            f"finish it with ganzoo train --resume {run}"
        )
    spec = parse_data(data or str(config.data))
    if data is None and reads_files(spec):
        raise UsageError(f"{run} was trained on '{spec}', which reads files; pass --data to score against it")

    generator = load_generator(weights)
    if onnx:  # before any file: a missing extra leaves no half a card
        import importlib.util

        if importlib.util.find_spec("onnx") is None:
            raise UsageError("--onnx needs the onnx packages: pip install 'ganzoo[onnx]'")
    dataset = create_dataset(spec.name, **spec.options)
    metrics = evaluate(generator, spec, seed=SEED) if dataset.has_evaluation() else {}
    # The card is written into a hidden folder beside it, renamed into place when whole: a read-only
    # target or a full disk leaves no half a card to block the retry.
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = folder.parent / f".{folder.name}.{secrets.token_hex(4)}.tmp"
        staging.mkdir()
    except OSError as exc:
        raise UsageError(f"cannot create the card folder {folder}: {exc.strerror}; choose a folder you can write to") from None
    try:
        _write_card(run, folder, staging, generator, spec, config, metrics, license, onnx)
        staging.rename(folder)  # onto a missing or empty folder
    except OSError as exc:
        raise GanzooError(f"cannot write the card {folder}: {exc.strerror}; nothing of it was left behind") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already once renamed
    return folder


def _write_card(run: Path, folder: Path, staging: Path, generator, spec, config, metrics: dict, license: str, onnx: bool) -> None:
    """The card's files in `staging`; the README names `folder`, where they will be."""
    shutil.copyfile(run / WEIGHTS, staging / WEIGHTS)
    shutil.copyfile(run / CONFIG, staging / CONFIG)
    if onnx:
        from .onnx_export import export_onnx

        export_onnx(generator, staging / ONNX)
    caption = _picture(generator, spec, staging / PICTURE, f"{folder.name}: {headline(metrics)}")
    sha256 = file_sha256(staging / WEIGHTS)
    command = f"ganzoo train --config {CONFIG} --out runs/{folder.name}"
    # an unpublished card loads by its path (as given, from where the export ran), not yet by its name
    path, literal = shlex.quote(folder.as_posix()), json.dumps(folder.as_posix())  # for a shell, for Python
    front = {
        "license": license,
        "library_name": "ganzoo",
        "tags": ["gan", "ganzoo", config.loss.name, spec.name],
        "dataset": str(spec),
        "loss": str(config.loss),
        "constraints": [str(c) for c in config.constraints],
        "generator": config.generator.name,
        "generator_config": generator.config.model_dump(mode="json"),
        "weights": WEIGHTS,
        "sha256": sha256,
        "metrics": metrics,
        "evaluation": {"command": f"ganzoo evaluate {folder.name} --seed {SEED}", "seed": SEED},
        "training": {"command": command, "steps": config.steps, "seed": config.seed},
    }
    objective = " + ".join(f"`{part}`" for part in [str(config.loss), *front["constraints"]])
    table = "\n".join(["| metric | value |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in metric_rows(metrics))])
    if not metrics:
        table = UNMEASURED.format(data=spec, path=path)
    body = BODY.format(
        name=folder.name, literal=literal, data=spec, objective=objective, seed=SEED, headline=headline(metrics), caption=caption,
        picture=PICTURE, steps=config.steps, batch_size=config.batch_size, train_seed=config.seed, command=command,
        table=table,
    )  # fmt: skip
    text = f"---\n{yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=1000)}---\n{body}"
    ModelCard.model_validate({**front, "name": folder.name, "distribution": "exported", "text": text})
    (staging / CARD_FILE).write_text(text)


def _picture(generator: torch.nn.Module, spec, path: Path, title: str) -> str:
    """Samples from seed 0, over real points for 2-D data (a conditional generator's by class, one
    row or colour per class, as `ganzoo sample` draws them); returns the picture's caption."""
    points = generator.sample_shape == (2,)
    labels = picture_labels(generator.classes, points) if generator.classes else None
    count = len(labels) if labels is not None else 1000 if points else 64
    fake = generator.sample(count, generator=torch.Generator().manual_seed(SEED), **({} if labels is None else {"labels": labels}))
    by_class = " of each class, one row per class" if labels is not None and not points else ""
    if not points:
        save_samples(path, fake, title=title, labels=labels)
        return f"{count} generated samples{by_class}, seed {SEED}"
    torch.manual_seed(SEED)
    real = next(create_dataset(spec.name, **spec.options).batches(1000, torch.device("cpu")))
    save_samples(path, fake, real, title, labels=labels)
    coloured = ", coloured by class," if labels is not None else ""
    return f"1,000 generated points{coloured} (orange) over 1,000 real ones (grey), seed {SEED}"

"""Scores a generator against a dataset: what `ganzoo evaluate` prints and model cards record.

The dataset brings its own evaluation (`Dataset.evaluate`: modes and W1 on 2-D mixtures, a
classifier of its own on digits and Fashion-MNIST, anything on a third party's): the core
draws the samples it asks for from a fixed seed and names no dataset. Image data also has
torch-fidelity's FID, KID, IS and precision/recall (`ganzoo.image_metrics`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .config import PluginSpec
from .errors import ConfigError, UsageError

#: row labels of the metrics table; a key "X_total" is shown with "X" as "X / total"
#: below this mean confidence the digits classifier is unsure of most samples: a headline then
#: leaves out the classes it counted, which noise fills as readily as digits
CONFIDENT = 0.8
LABELS = {
    "fid": "FID (torch-fidelity)",
    "kid": "KID",
    "kid_std": "KID std over subsets",
    "inception_score": "Inception Score",
    "inception_score_std": "Inception Score std over splits",
    "precision": "precision",
    "recall": "recall",
    "modes": "modes captured",
    "high_quality": "high quality (%)",
    "classes": "classes covered",
    "kl": "reverse KL to uniform (nats)",
    "w1": "W1 to real data",
    "confidence": "mean confidence",
    "frechet": "Frechet distance of classifier features (not FID)",
    "frechet_real": "the same between real train and test images",
    "own_mode": "in its class's mode (%)",
    "own_mode_worst": "in its class's mode, worst class (%)",
    "accuracy": "classifier accuracy on its class (%)",
    "accuracy_worst": "classifier accuracy, worst class (%)",
}


def evaluate(
    generator: Any, data: str | PluginSpec, seed: int = 0, metrics: list[str] | None = None, n: int = 10_000,
    quiet: bool = True, reference: str | None = None,
) -> dict[str, Any]:
    """The metrics of `generator` against the dataset spec `data` (e.g. "ring8", "digits:size=16").

    Without `metrics`, the data's own evaluation (`Dataset.evaluate`). With `metrics` (any of
    fid, kid, is, pr), torch-fidelity's image metrics on n generated and n real images of the
    `reference` split (train, test, ...; None: the spec's own, train by default), and under
    "protocol" what they were measured under (see ganzoo.image_metrics).
    """
    from .registry import create_dataset

    spec = parse_data(data)
    if reference is not None:
        spec = reference_split(spec, reference)
    dataset = create_dataset(spec.name, **spec.options)
    if tuple(generator.sample_shape) != tuple(dataset.sample_shape):
        raise UsageError(
            f"the generator makes samples of shape {tuple(generator.sample_shape)}, but dataset '{spec}' "
            f"has {tuple(dataset.sample_shape)}; pass the --data it was trained on"
        )
    if metrics:
        from .image_metrics import image_metrics

        if len(generator.sample_shape) != 3:
            raise UsageError(f"{', '.join(metrics)} are image metrics; '{spec}' is not image data")
        return image_metrics(generator, spec, dataset, list(metrics), n, seed=seed, quiet=quiet)
    return own_evaluation(generator, dataset, str(spec), seed)


def reference_split(spec: PluginSpec, split: str) -> PluginSpec:
    """`spec` with its `split` option set: the real images image metrics compare against."""
    from .registry import plugin_info

    options = {option.name: option for option in plugin_info("dataset", spec.name).options}
    if "split" not in options:
        raise UsageError(f"dataset '{spec.name}' has no splits, so no --reference {split}; leave --reference out")
    return PluginSpec(name=spec.name, options={**spec.options, "split": split})


def own_evaluation(generator: Any, dataset: Any, spec: str, seed: int = 0) -> dict[str, Any]:
    """The dataset's own scores of `generator`'s samples (drawn from `seed`, balanced over the
    classes for a conditional generator)."""
    from .metrics import draw

    if not dataset.has_evaluation():
        images = " (image data: --metrics fid,kid,is,pr scores it with torch-fidelity)" if len(dataset.sample_shape) == 3 else ""
        raise UsageError(f"dataset '{spec}' has no evaluation of its own{images}")
    if generator.classes and generator.classes != dataset.classes:
        raise UsageError(f"the generator has {generator.classes} classes, dataset '{spec}' {dataset.classes}")
    samples, labels = draw(generator, dataset.evaluation_samples, seed)
    return dataset.evaluate(samples, labels, seed)


def parse_data(data: str | PluginSpec) -> PluginSpec:
    try:
        return PluginSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"--data '{data}': {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None


def recorded_data(name_or_file: str) -> str:
    """The dataset a generator was trained on: from an exported file's metadata, or its model card."""
    from .checkpoint import GENERATOR, load_metadata_json, read_metadata

    path = Path(name_or_file)
    if not path.is_file():
        from .zoo import model_card

        return model_card(name_or_file).dataset
    metadata = read_metadata(path, GENERATOR)
    trained = load_metadata_json(metadata, "trained", path) if "trained" in metadata else {}
    if not isinstance(trained, dict) or not isinstance(trained.get("data"), str):
        raise UsageError(f"{path} does not record the data it was trained on; pass --data")
    data = parse_data(trained["data"])
    if reads_files(data):  # a file never chooses what ganzoo reads from this machine
        raise UsageError(f"{path} was trained on '{data}', which reads files; pass --data to score against it")
    return trained["data"]


def reads_files(spec: PluginSpec) -> bool:
    """True for a dataset spec that names a path of its own (the folder dataset's, an image
    dataset's root other than its default): what a file from elsewhere may not choose."""
    from .registry import plugin_info

    options = {option.name: option for option in plugin_info("dataset", spec.name).options}
    paths = [option for option in options.values() if "Path" in option.type]
    return any(option.required or Path(str(spec.options.get(option.name, option.default))) != Path(str(option.default))
               for option in paths)  # fmt: skip


def to_json(data: Any, indent: int | None = 2) -> str:
    """Strict JSON: an infinite or undefined number (KL of a generator with no high-quality
    sample) becomes null, since JSON has no Infinity."""

    def finite(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [finite(v) for v in value]
        return value

    return json.dumps(finite(data), indent=indent, allow_nan=False)


def _value(value: Any) -> str:
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def metric_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs, values rounded to 4 significant digits and counts shown as "k / K"."""
    rows = []
    for key, value in metrics.items():
        if key.endswith("_total") or not isinstance(value, (int, float)):  # per-class rows: class_rows
            continue
        total = metrics.get(f"{key}_total")
        rows.append((LABELS.get(key, key), f"{value} / {total}" if total is not None else _value(value)))
    return rows


def class_rows(metrics: dict[str, Any]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """A conditional generator's per-class figures as (header, rows); no rows for an unconditional one."""
    per_class = metrics.get("per_class") or []
    keys = [k for k in per_class[0] if k != "class"] if per_class else []
    header = ("class", *(LABELS.get(k, k) for k in keys))
    return header, [(str(r["class"]), *(_value(r[k]) for k in keys)) for r in per_class]


def headline(metrics: dict[str, Any]) -> str:
    """The one-line summary `ganzoo zoo list` shows."""
    conditional = ""
    if "own_mode_worst" in metrics:
        conditional = f"; conditional: worst class {metrics['own_mode_worst']:.1f}% in its mode"
    elif "accuracy" in metrics:
        conditional = f"; conditional: accuracy {metrics['accuracy']:.1f}%"
    if {"modes", "modes_total", "high_quality"} <= metrics.keys():
        return f"{metrics['modes']}/{metrics['modes_total']} modes, {metrics['high_quality']:.1f}% high quality{conditional}"
    if {"classes", "classes_total", "frechet"} <= metrics.keys():
        frechet = f"classifier Frechet {metrics['frechet']:.3g}"
        if "frechet_real" in metrics:
            frechet += f" (real data {metrics['frechet_real']:.3g})"
        if metrics.get("confidence", 1.0) < CONFIDENT:  # its class counts would call noise a digit
            return f"{frechet}, classifier unsure (mean confidence {metrics['confidence']:.2f}){conditional}"
        return f"{metrics['classes']}/{metrics['classes_total']} classes, {frechet}{conditional}"
    # A third party's card may record other metrics: show its first two as they are.
    return ", ".join(f"{label} {value}" for label, value in metric_rows(metrics)[:2]) or "not measured"

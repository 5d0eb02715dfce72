"""FID, KID, Inception Score and precision/recall of image generators, computed by torch-fidelity.

torch-fidelity's Inception matches the reference TensorFlow networks to float precision, so
its numbers sit beside a paper's; ganzoo writes the glue only: the weights through its own
bounded, sha256-checked downloader (handed to torch-fidelity as a local file), generated images
fed straight from the generator in batches (no PNG round trip), and the real data's features
computed once per (dataset spec, sample count, seed, extractor) and kept in the cache folder.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .config import PluginSpec
from .errors import CheckpointError, MetricError, UsageError

#: torch-fidelity's Inception-v3 weights (the TF FID network, converted) and their sha256
INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
EXTRACTOR = "inception-v3-compat"
INCEPTION_DIMS = 2048  # its pool features, the ones FID, KID and precision/recall compare
METRICS = ("fid", "kid", "is", "pr")


@dataclass(frozen=True)
class Extractor:
    """Maps uint8 images (B, 3, H, W) to (pool features (B, dims), logits (B, K))."""

    features: Callable[[Tensor], tuple[Tensor, Tensor]]
    dims: int
    #: what a printed score names as its feature extractor, and the sha256 of its weights
    name: str = EXTRACTOR
    weights_sha256: str = INCEPTION_SHA256
    #: makes sure the weights are at hand (fetched into the cache, checked) before any image arrives
    prepare: Callable[[], Any] = lambda: None


def inception_weights(quiet: bool = False) -> Path:
    """The Inception weights in the cache, downloaded on first use; sha256 checked every time."""
    from .zoo import cache_dir, download, file_sha256

    path = cache_dir() / f"weights-inception-2015-12-05-{INCEPTION_SHA256[:8]}.pth"
    if path.exists() and not path.is_file():
        raise UsageError(f"{path} is not a file (a folder or device is where the Inception weights belong); move it away")
    if not path.is_file():
        return download(INCEPTION_URL, path, sha256=INCEPTION_SHA256, what="the Inception weights of FID", quiet=quiet)
    if file_sha256(path) != INCEPTION_SHA256:
        raise CheckpointError(f"{path} is not the Inception file (sha256 differs); delete it to download it again")
    return path


def inception(device: torch.device, quiet: bool = False) -> Extractor:
    """torch-fidelity's Inception-v3 on `device`: 2048 pool features and the 1008 unbiased logits.
    Its weights are fetched, checked and loaded when the first images arrive."""
    network = None

    def extract(images: Tensor) -> tuple[Tensor, Tensor]:
        nonlocal network
        if network is None:
            from torch_fidelity import FeatureExtractorInceptionV3

            weights = str(inception_weights(quiet))
            network = FeatureExtractorInceptionV3(EXTRACTOR, ["2048", "logits_unbiased"], feature_extractor_weights_path=weights)
            network = network.to(device).eval()
        return tuple(network(images.to(device)))

    return Extractor(extract, dims=INCEPTION_DIMS, prepare=lambda: inception_weights(quiet))


def as_uint8_rgb(images: Tensor) -> Tensor:
    """Images in [-1, 1] as torch-fidelity reads them: uint8, three channels. NaN or infinite
    pixels are refused: the cast would make them black and score them."""
    if not torch.isfinite(images).all():
        raise MetricError("no image metric can be computed: the generator made NaN or infinite pixels")
    pixels = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels


def features(batches: Iterator[Tensor], n: int, extractor: Extractor, what: str, quiet: bool) -> tuple[Tensor, Tensor]:
    """The features and logits of the first n images the batches hold, in float64 on the CPU."""
    from tqdm.auto import tqdm

    pools, logits, seen = [], [], 0
    with torch.no_grad(), tqdm(total=n, desc=what, unit="image", disable=quiet) as bar:
        while seen < n:
            images = next(batches)[: n - seen]
            pool, logit = extractor.features(as_uint8_rgb(images))
            pools.append(pool.double().cpu())
            logits.append(logit.double().cpu())
            seen += len(images)
            bar.update(len(images))
    return torch.cat(pools), torch.cat(logits)


def generated(generator: torch.nn.Module, batch_size: int, seed: int) -> Iterator[Tensor]:
    """Batches from the generator itself (eval mode, no gradients), from latents fixed by the seed."""
    rng = torch.Generator(device=generator.device).manual_seed(seed)
    while True:
        yield generator.sample(batch_size, generator=rng)


def real_features(
    data: PluginSpec, dataset: Any, n: int, seed: int, extractor: Extractor, batch_size: int, quiet: bool
) -> tuple[Tensor, Tensor]:
    """The real data's features, computed once per (data, n, seed, extractor) and cached. The data
    is what the dataset reads on this machine (`Dataset.fingerprint`: absolute paths, the files'
    sizes and times), not the spec's text: `folder:path=imgs` in two folders is two datasets."""
    from .checkpoint import save_tensors
    from .zoo import cache_dir

    if hasattr(dataset, "__len__") and n > len(dataset):
        raise UsageError(f"--n {n:,} is more real images than '{data}' holds ({len(dataset):,}): they would repeat; "
                         f"use --n {len(dataset):,} or fewer")  # fmt: skip
    spec = {"data": str(data), "n": n, "seed": seed, "extractor": EXTRACTOR, "weights": INCEPTION_SHA256}
    key = hashlib.sha256(json.dumps({**spec, "fingerprint": dataset.fingerprint()}, sort_keys=True).encode()).hexdigest()
    spec["key"] = key  # the file says which data it holds: one copied from other files under this name is refused
    path = cache_dir() / "real-features" / f"{data.name.replace('/', '_')}-{n}-{key[:20]}.safetensors"
    if path.exists():
        print(f"ganzoo: reusing the real data's features from {path}", file=sys.stderr)
        return cached_features(path, spec, n, extractor.dims)
    with torch.random.fork_rng(devices=[]):  # the caller's random stream stays as it was
        torch.manual_seed(seed)
        found = features(dataset.batches(min(batch_size, n), torch.device("cpu")), n, extractor, f"real {data.name}", quiet)
    metadata = {"format": FEATURES, **{k: str(v) for k, v in spec.items()}, "sha256": features_sha256(*found)}
    save_tensors(path, {"features": found[0], "logits": found[1]}, metadata)
    return found


def features_sha256(features: Tensor, logits: Tensor) -> str:
    """The digest of a cache file's tensors, kept in its metadata: features changed in place are refused."""
    digest = hashlib.sha256()
    for tensor in (features, logits):
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


FEATURES = "ganzoo.real-features"


def cached_features(path: Path, spec: dict[str, Any], n: int, dims: int) -> tuple[Tensor, Tensor]:
    """A cache file's features and logits, each checked: what it says it holds, float64 (n, d), finite."""
    from .checkpoint import read_metadata, read_tensors

    again = "; delete it to compute them again"
    metadata = read_metadata(path, FEATURES)
    if any(metadata.get(k) != str(v) for k, v in spec.items()):
        raise CheckpointError(f"{path} holds the features of other data or another extractor{again}")
    saved = read_tensors(path)
    for name in ("features", "logits"):
        tensor = saved.get(name)
        if tensor is None or tensor.dim() != 2 or len(tensor) != n or tensor.dtype != torch.float64:
            got = "nothing" if tensor is None else f"{tuple(tensor.shape)} of {tensor.dtype}"
            raise CheckpointError(f"{path}: its {name} are {got}, not ({n}, dims) of float64{again}")
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: its {name} hold NaN or infinite values{again}")
    if saved["features"].shape[1] != dims:
        raise CheckpointError(f"{path}: its features have {saved['features'].shape[1]} dimensions, not {dims}{again}")
    if metadata.get("sha256") != features_sha256(saved["features"], saved["logits"]):
        raise CheckpointError(f"{path}: its features are not the ones computed for it (their sha256 differs){again}")
    return saved["features"], saved["logits"]


def metrics_from_features(fake: Tensor, real: Tensor, fake_logits: Tensor, wanted: list[str], **options: Any) -> dict[str, float]:
    """torch-fidelity's metrics of generated against real features (and the generated logits, for IS).

    `options` reach torch-fidelity (kid_subsets, kid_subset_size, isc_splits, prc_neighborhood).
    """
    from torch_fidelity import metric_fid, metric_isc, metric_kid, metric_prc

    options = {"verbose": False, "kid_subset_size": min(1000, len(fake), len(real)), **options}
    out: dict[str, float] = {}
    if "fid" in wanted:
        check_fid_samples(min(len(fake), len(real)), fake.shape[1])
        stats = metric_fid.fid_features_to_statistics(fake), metric_fid.fid_features_to_statistics(real)
        out["fid"] = float(metric_fid.fid_statistics_to_metric(*stats, False)["frechet_inception_distance"])
    if "kid" in wanted:
        kid = metric_kid.kid_features_to_metric(fake, real, **options)
        out.update(kid=kid["kernel_inception_distance_mean"], kid_std=kid["kernel_inception_distance_std"])
    if "is" in wanted:
        splits = options.get("isc_splits", min(10, len(fake_logits)))  # 10, the papers' count, when n allows
        isc = metric_isc.isc_features_to_metric(fake_logits, splits=splits)
        out.update(inception_score=isc["inception_score_mean"], inception_score_std=isc["inception_score_std"])
    if "pr" in wanted:
        prc = metric_prc.prc_features_to_metric(fake, real, **options)
        out.update(precision=prc["precision"], recall=prc["recall"])
    return {k: float(v) for k, v in out.items()}


def check_fid_samples(n: int, dims: int) -> None:
    if n <= dims:
        raise UsageError(f"FID needs more samples than the {dims} feature dimensions to estimate a covariance; "
                         f"--n {n} is too few")  # fmt: skip


def image_metrics(
    generator: torch.nn.Module, data: PluginSpec, dataset: Any, wanted: list[str], n: int, seed: int = 0,
    batch_size: int = 100, quiet: bool = False, extractor: Extractor | None = None,
) -> dict[str, Any]:
    """FID, KID, IS and precision/recall (those `wanted`) of n generated images against n real ones
    of `data` (the reference: its split is the dataset's own option), and "protocol": what they
    were measured under, to print beside them (`protocol_line`)."""
    unknown = sorted(set(wanted) - set(METRICS))
    if unknown:
        raise UsageError(f"unknown metric {unknown[0]!r}; image metrics are {', '.join(METRICS)}")
    extractor = extractor or inception(generator.device, quiet)
    if "fid" in wanted:  # before the weights are fetched or any image is drawn
        check_fid_samples(n, extractor.dims)
    real, _ = real_features(data, dataset, n, seed, extractor, batch_size, quiet)
    fake, logits = features(generated(generator, batch_size, seed), n, extractor, "generated", quiet)
    return {**metrics_from_features(fake, real, logits, wanted), "protocol": protocol(data, dataset, n, n, extractor)}


def protocol(data: PluginSpec, dataset: Any, generated: int, real: int, extractor: Extractor) -> dict[str, Any]:
    """What an image metric was measured under: the papers' numbers differ with each of these."""
    from importlib.metadata import version

    split = getattr(dataset.config, "split", None)
    return {
        "generated": generated, "reference": str(data), "reference_split": split, "real": real,
        "extractor": extractor.name, "weights_sha256": extractor.weights_sha256, "torch_fidelity": version("torch-fidelity"),
    }  # fmt: skip


def protocol_line(protocol: dict[str, Any]) -> str:
    """One line naming a score's protocol, as `ganzoo evaluate` and the run log print it."""
    split = f" ({protocol['reference_split']} split)" if protocol.get("reference_split") else ""
    return (
        f"protocol: {protocol['generated']:,} generated against {protocol['real']:,} real images of "
        f"{protocol['reference']}{split}; features {protocol['extractor']} (weights sha256 "
        f"{protocol['weights_sha256'][:12]}...), torch-fidelity {protocol['torch_fidelity']}"
    )

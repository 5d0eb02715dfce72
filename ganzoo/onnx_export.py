"""A generator as ONNX, for runtimes without PyTorch: inputs `z` (batch, latent_dim) and, for a
conditional generator, `labels` (batch,) int64; output `samples` (batch, *sample_shape); any batch
size. The exporter is torch's own (torch.onnx, dynamo); onnx and onnxscript come with the `onnx`
extra, onnxruntime (to run and check the file) too: pip install 'ganzoo[onnx]'."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .checkpoint import atomic_write
from .errors import UsageError


def export_onnx(generator: torch.nn.Module, path: str | Path, opset: int | None = None) -> Path:
    """Write `generator` (a ganzoo.Generator, in eval mode for the export) as an ONNX file at `path`,
    atomically; its metadata names the plugin's config, latent size, sample shape and classes."""
    try:
        import onnx
    except ImportError:
        raise UsageError("ONNX export needs the onnx packages: pip install 'ganzoo[onnx]'") from None
    path = Path(path)
    if path.suffix != ".onnx":
        raise UsageError(f"{path}: an ONNX file's name ends in .onnx")
    z = generator.latent(2, torch.Generator(device=generator.device).manual_seed(0))
    inputs, names = (z,), ["z"]
    if generator.classes:
        inputs, names = (z, torch.zeros(2, dtype=torch.long, device=z.device)), ["z", "labels"]
    batch = torch.export.Dim("batch", min=1)
    was_training = generator.training
    generator.eval()
    try:
        program = torch.onnx.export(
            generator, inputs, input_names=names, output_names=["samples"], dynamo=True, external_data=False,
            dynamic_shapes={name: {0: batch} for name in names}, opset_version=opset, verbose=False,
        )  # fmt: skip
    finally:
        generator.train(was_training)
    model = program.model_proto
    config = getattr(generator, "config", None)
    facts = {
        "ganzoo.latent_dim": str(generator.latent_dim),
        "ganzoo.sample_shape": json.dumps(list(generator.sample_shape)),
        "ganzoo.classes": str(generator.classes),
        "ganzoo.config": config.model_dump_json() if config is not None else "{}",
    }
    onnx.helper.set_model_props(model, facts)
    return atomic_write(path, lambda tmp: onnx.save_model(model, str(tmp)))

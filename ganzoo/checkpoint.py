"""Safetensors files: training checkpoints and self-describing exported generators. No pickle."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from . import __version__
from .errors import CheckpointError
from .registry import configure

CHECKPOINT = "ganzoo.checkpoint"
_UMASK = os.umask(0)
os.umask(_UMASK)
GENERATOR = "ganzoo.generator"


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Run `write(tmp)` and move the finished file into place, so `path` is never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # some writers create private files; give the usual mode
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    """Write tensors (moved to the CPU) and metadata (JSON-encoded where not already str)."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    return atomic_write(path, lambda tmp: save_file(cpu, str(tmp), metadata=meta))


def read_metadata(path: str | Path, expected_format: str) -> dict[str, str]:
    """The metadata of a ganzoo safetensors file, or a CheckpointError saying what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None
    found = metadata.get("format")
    if found != expected_format:
        what = f"a {found} file" if found else "a file without ganzoo metadata"
        raise CheckpointError(f"{path} is {what}, expected a {expected_format} file")
    return metadata


def read_tensors(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} has damaged tensor data ({exc})") from None


def module_tensors(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in module.state_dict().items()}


def load_module(module: nn.Module, prefix: str, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Load `prefix.*` tensors strictly; missing, unexpected or misshapen tensors are one clear error."""
    own = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    expected = module.state_dict()
    missing = sorted(set(expected) - set(own))
    unexpected = sorted(set(own) - set(expected))
    misshapen = [k for k in expected if k in own and own[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensors (e.g. {prefix}.{missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors (e.g. {prefix}.{unexpected[0]})")
    if misshapen:
        k = misshapen[0]
        problems.append(f"{prefix}.{k} has shape {tuple(own[k].shape)}, expected {tuple(expected[k].shape)}")
    if problems:
        raise CheckpointError(f"{path} does not fit the {prefix}: " + "; ".join(problems))
    module.load_state_dict(own, strict=True)


def optimizer_tensors(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's state as flat tensors plus the JSON-able rest (param groups, scalars)."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def load_optimizer(
    optimizer: torch.optim.Optimizer, prefix: str, tensors: dict[str, torch.Tensor], meta: dict, path: Path
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            index, name = key[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(index), {})[name] = value
    for key, value in meta["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    except (ValueError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{path} does not fit the {prefix} optimizer: {exc}") from None


def save_generator(generator: nn.Module, path: str | Path, plugin: str, extra: dict[str, Any] | None = None) -> Path:
    """Export a generator with its plugin name and config, so `load_generator` needs no other file."""
    config = generator.config.model_dump(mode="json")
    metadata = {"format": GENERATOR, "plugin": plugin, "config": config, "ganzoo_version": __version__}
    return save_tensors(path, generator.state_dict(), {**metadata, **(extra or {})})


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild and load a generator from an exported `.safetensors` file, strictly, in eval mode."""
    path = Path(path)
    metadata = read_metadata(path, GENERATOR)
    if not metadata.get("plugin"):
        raise CheckpointError(f"{path} lacks the generator's 'plugin' metadata")
    cls, config = configure("generator", metadata["plugin"], load_metadata_json(metadata, "config", path))
    generator = cls(config)
    load_module(generator, "generator", {f"generator.{k}": v for k, v in read_tensors(path).items()}, path)
    return generator.to(device).eval()


def load_metadata_json(metadata: dict[str, str], key: str, path: Path) -> Any:
    try:
        return json.loads(metadata[key])
    except (KeyError, ValueError):
        raise CheckpointError(f"{path} lacks valid '{key}' metadata") from None

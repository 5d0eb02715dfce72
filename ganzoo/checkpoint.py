"""Safetensors files: training checkpoints and self-describing exported generators. No pickle."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from . import __version__
from .errors import CheckpointError, GanzooError
from .interfaces import recorded_options
from .registry import build, configure, plugin_info

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


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the temporary files `atomic_write` left in `folder` when its process was killed.

    Only files whose writing process is gone: a live process's half-written file stays.
    """
    removed = []
    for tmp in folder.glob(".*.tmp") if folder.is_dir() else []:
        pid = tmp.name.rsplit(".", 2)[-2]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> Path:
    """Write tensors (moved to the CPU) and metadata (JSON-encoded where not already str)."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    return atomic_write(path, lambda tmp: save_file(cpu, str(tmp), metadata=meta))


def read_metadata(path: str | Path, expected_format: str) -> dict[str, str]:
    """The metadata of a ganzoo safetensors file, or a CheckpointError saying what is wrong."""
    path = Path(path)
    try:
        with path.open("rb"):
            pass
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a folder, not a file") from None
    except OSError as exc:  # permission denied, say: said as it is
        raise CheckpointError(f"{path} cannot be read: {exc.strerror}") from None
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


def check_fit(
    found: dict[str, tuple[tuple[int, ...], torch.dtype]],
    expected: dict[str, tuple[tuple[int, ...], torch.dtype]],
    prefix: str,
    path: Path,
) -> None:
    """Names, shapes and dtypes of tensors against what they must be; one clear error when they differ.

    Works on shapes alone, so a file can be checked before anything is allocated for it.
    """
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    misshapen = [k for k in expected if k in found and found[k][0] != expected[k][0]]
    mistyped = [k for k in expected if k in found and k not in misshapen and found[k][1] != expected[k][1]]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensors (e.g. {prefix}.{missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors (e.g. {prefix}.{unexpected[0]})")
    if misshapen:
        k = misshapen[0]
        problems.append(f"{prefix}.{k} has shape {found[k][0]}, expected {expected[k][0]}")
    if mistyped:
        k = mistyped[0]
        problems.append(f"{prefix}.{k} has dtype {found[k][1]}, expected {expected[k][1]}")
    if problems:
        raise CheckpointError(f"{path} does not fit the {prefix}: " + "; ".join(problems))


def _layout(tensors: dict[str, torch.Tensor]) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    return {k: (tuple(v.shape), v.dtype) for k, v in tensors.items()}


def check_finite(tensors: dict[str, torch.Tensor], path: Path) -> None:
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: tensor {name} holds NaN or infinite values")


def load_module(module: nn.Module, prefix: str, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Load `prefix.*` tensors strictly: names, shapes and dtypes must fit, and values be finite."""
    own = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    check_fit(_layout(own), _layout(module.state_dict()), prefix, path)
    check_finite({f"{prefix}.{k}": v for k, v in own.items()}, path)
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


#: optimizer state an optimizer takes a square root of: negative values would make NaN
NON_NEGATIVE_STATE = {"exp_avg_sq", "max_exp_avg_sq", "square_avg"}


def load_optimizer(
    optimizer: torch.optim.Optimizer, prefix: str, tensors: dict[str, torch.Tensor], meta: Any, path: Path, steps: int
) -> None:
    """Load an optimizer's state, every value checked first, since a fused optimizer trusts sizes
    blindly (a state tensor smaller than its parameter is read and written past its end): a state
    tensor has its parameter's shape, a float dtype and finite values (non-negative where a root is
    taken of it); only `step` is a scalar, and it must be `steps`, the updates the run has made."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    unfit = f"{path} does not fit the {prefix} optimizer"
    if not (isinstance(meta, dict) and isinstance(meta.get("scalars"), dict) and isinstance(meta.get("param_groups"), list)):
        raise CheckpointError(f"{unfit}: its metadata lacks 'scalars' and 'param_groups'")
    state: dict[int, dict[str, Any]] = {}
    entries = [(k[len(prefix) + 1 :], v) for k, v in tensors.items() if k.startswith(prefix + ".")]
    for key, value in [*entries, *meta["scalars"].items()]:
        index, _, name = key.partition(".")
        if not index.isdigit() or int(index) >= len(params) or not name:
            raise CheckpointError(f"{unfit}: state '{prefix}.{key}' names no parameter of it")
        if torch.is_tensor(value):
            _check_state_tensor(value, name, params[int(index)], f"{prefix}.{key}", unfit, path)
            number = value.item() if name == "step" else None
        elif not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
            raise CheckpointError(f"{unfit}: state '{key}' is {value!r}, expected a finite number")
        else:
            number = value
        if name == "step" and number != steps:
            raise CheckpointError(f"{unfit}: {prefix}.{key} counts {number:g} updates, but the run made {steps}")
        state.setdefault(int(index), {})[name] = value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    except (ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"{unfit}: {exc}") from None


def _check_state_tensor(value: torch.Tensor, name: str, param: torch.Tensor, key: str, unfit: str, path: Path) -> None:
    expected = () if name == "step" else tuple(param.shape)
    if tuple(value.shape) != expected:
        what = "a scalar" if name == "step" else f"its parameter's shape {expected}"
        raise CheckpointError(f"{unfit}: {key} has shape {tuple(value.shape)}, expected {what}")
    if not value.is_floating_point():
        raise CheckpointError(f"{unfit}: {key} has dtype {value.dtype}, expected a float dtype")
    check_finite({key: value}, path)
    if name in NON_NEGATIVE_STATE and bool((value < 0).any()):
        raise CheckpointError(f"{unfit}: {key} holds negative values; the optimizer takes its square root")


def save_generator(generator: nn.Module, path: str | Path, plugin: str, extra: dict[str, Any] | None = None) -> Path:
    """Export a generator with its plugin (as DIST/NAME) and config, so `load_generator` needs no other file."""
    config = recorded_options(generator.config)
    info = plugin_info("generator", plugin)
    metadata = {"format": GENERATOR, "plugin": info.qualified_name, "config": config, "ganzoo_version": __version__}
    return save_tensors(path, generator.state_dict(), {**metadata, **(extra or {})})


#: safetensors' dtype names -> torch dtypes
_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}  # fmt: skip


def file_layout(path: Path) -> dict[str, tuple[tuple[int, ...], Any]]:
    """Name -> (shape, dtype) of every tensor in a safetensors file, read from its header alone."""
    try:
        with safe_open(str(path), framework="pt") as f:
            slices = {k: f.get_slice(k) for k in f.keys()}
            return {k: (tuple(s.get_shape()), _DTYPES.get(s.get_dtype(), s.get_dtype())) for k, s in slices.items()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild and load a generator from an exported `.safetensors` file, strictly, in eval mode.

    The file's tensor names, shapes and dtypes are checked against the generator its metadata
    describes before any memory is allocated for it (the generator is first built on the meta
    device), and every value must be finite.
    """
    path = Path(path)
    metadata = read_metadata(path, GENERATOR)
    plugin = metadata.get("plugin")
    if not plugin:
        raise CheckpointError(f"{path} lacks the generator's 'plugin' metadata")
    cls, config = configure("generator", plugin, load_metadata_json(metadata, "config", path, dict), strict=True)
    try:
        with torch.device("meta"):
            skeleton = build("generator", plugin, cls, config)
    except (NotImplementedError, RuntimeError):  # a plugin that cannot be built without data: check after
        skeleton = None
    found = {f"generator.{k}": v for k, v in file_layout(path).items()}
    if skeleton is not None:
        check_fit(found, {f"generator.{k}": v for k, v in _layout(skeleton.state_dict()).items()}, "generator", path)
    generator = build("generator", plugin, cls, config)
    load_module(generator, "generator", {f"generator.{k}": v for k, v in read_tensors(path).items()}, path)
    return generator.to(device).eval()


def load_metadata_json(metadata: dict[str, str], key: str, path: Path, kind: type = object) -> Any:
    """metadata[key] decoded from JSON, checked to be a `kind` (dict, list, ...)."""
    try:
        value = json.loads(metadata[key])
    except (KeyError, ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise CheckpointError(f"{path} lacks valid '{key}' metadata") from None
    if not isinstance(value, kind):
        raise CheckpointError(f"{path}: its '{key}' metadata is a JSON {type(value).__name__}, expected a {kind.__name__}")
    return value


def metadata_int(metadata: dict[str, str], key: str, path: Path, low: int, high: int, default: int | None = None) -> int:
    """metadata[key] as an integer in [low, high]: a step count, say, that a loop will trust."""
    text = metadata.get(key)
    if text is None and default is not None:
        return default
    if text is None or not text.strip().isdigit() or not low <= int(text) <= high:
        raise CheckpointError(f"{path}: its '{key}' metadata is {text!r}, expected a whole number from {low} to {high}")
    return int(text)


def is_checkpoint(path: str | Path) -> bool:
    """True for a readable training checkpoint (not an exported generator), judged by its metadata."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("format") == CHECKPOINT
    except (SafetensorError, OSError, ValueError):
        return False


def checkpoint_config(path: str | Path) -> tuple[Any, dict[str, str]]:
    """The run config a checkpoint records (a TrainConfig), and the checkpoint's metadata."""
    from .config import to_config

    path = Path(path)
    metadata = read_metadata(path, CHECKPOINT)
    recorded = load_metadata_json(metadata, "config", path, dict)
    try:
        return to_config(recorded), metadata
    except GanzooError as exc:  # written by another ganzoo, or edited: said in one line
        raise CheckpointError(f"{path}: its config metadata is not a run config this ganzoo reads ({exc})") from None


def checkpoint_data(path: str | Path) -> str:
    """The data a checkpoint's run trained on, where ganzoo may read it: data that reads files of
    the checkpoint's naming is refused (pass --data), as for an exported generator's."""
    from .evaluation import parse_data, reads_files

    spec = parse_data(str(checkpoint_config(path)[0].data))
    if reads_files(spec):
        raise CheckpointError(f"{path} was trained on '{spec}', which reads files, and a file does not choose what "
                              "ganzoo reads: give that data with --data (ganzoo sample and evaluate take it)")  # fmt: skip
    return str(spec)


def checkpoint_weights(path: str | Path) -> str:
    """Which generator weights of a checkpoint one samples: "ema" where the run kept an EMA copy
    (what the run exports), else "generator"."""
    return "ema" if any(key.startswith("ema.") for key in file_layout(Path(path))) else "generator"


def load_checkpoint_generator(
    path: str | Path, device: str | torch.device = "cpu", data: str | None = None
) -> tuple[nn.Module, str]:
    """The generator of a training checkpoint, in eval mode (its `checkpoint_weights`), and a line
    saying which weights those are. The data (its run's, or `data`) gives the generator its sample
    shape and classes, as in the run. Tensor names and shapes are checked before it is allocated."""
    from .evaluation import parse_data
    from .registry import create_dataset

    path = Path(path)
    cfg, metadata = checkpoint_config(path)
    step = metadata_int(metadata, "step", path, 0, 10**15)
    spec = parse_data(data or checkpoint_data(path))
    dataset = create_dataset(spec.name, **spec.options)
    from_data = {"sample_shape": tuple(dataset.sample_shape), **({"classes": dataset.classes} if cfg.conditional else {})}
    name = cfg.generator.name
    cls, config = configure("generator", name, {**cfg.generator.options, **from_data}, strict=True)
    prefix = checkpoint_weights(path)
    try:
        with torch.device("meta"):
            skeleton = build("generator", name, cls, config)
    except (NotImplementedError, RuntimeError):  # a plugin that cannot be built on the meta device: checked after
        skeleton = None
    if skeleton is not None:
        own = {key[len(prefix) + 1 :]: value for key, value in file_layout(path).items() if key.startswith(prefix + ".")}
        check_fit(own, _layout(skeleton.state_dict()), prefix, path)
    generator = build("generator", name, cls, config)
    load_module(generator, prefix, read_tensors(path), path)
    which = "the EMA generator" if prefix == "ema" else "the generator (the run kept no EMA)"
    return generator.to(device).eval(), f"{which} of {path}, step {step:,}"

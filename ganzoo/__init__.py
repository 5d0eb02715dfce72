"""ganzoo: a plugin-based GAN zoo for PyTorch.

The public API is importable from here. Attributes load on first use, so `import ganzoo`
(and `ganzoo --help`) stays fast and does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "ganzoo.interfaces": [
        "Loss", "Constraint", "Generator", "Critic", "Dataset", "Logger", "Augment", "GaussianMixture", "InMemoryImages", "ImageDataConfig",
        "Config", "NetworkConfig", "GeneratorConfig", "ConditionalConfig", "LazyConfig", "Labelled", "takes_labels", "recorded_options",
        "TrainDefaults", "Shard", "epoch_indices", "check_memory",
    ],
    "ganzoo.registry": [
        "PLUGIN_API_VERSION", "PluginInfo", "list_plugins", "get_class", "plugin_info",
        "create_loss", "create_constraint", "create_generator", "create_critic", "create_dataset", "create_logger",
        "create_augment",
    ],
    "ganzoo.errors": [
        "GanzooError", "UsageError", "ConfigError", "PluginNotFound", "AmbiguousPlugin",
        "BrokenPlugin", "CheckpointError", "TrainingError", "Interrupted", "MetricError",
    ],
    "ganzoo.config": ["TrainConfig", "PluginSpec"],
    "ganzoo.loop": ["train", "TrainResult"],
    "ganzoo.checkpoint": ["load_generator", "save_generator"],
    "ganzoo.zoo": ["list_pretrained", "load_pretrained", "ModelCard", "download", "DownloadError"],
    "ganzoo.metrics": [
        "mode_metrics", "wasserstein1", "frechet_distance", "kl_to_uniform", "toy_metrics", "classifier_metrics",
        "load_weights",
    ],
    "ganzoo.evaluation": ["evaluate"],
    "ganzoo.sampling": ["interpolate", "slerp"],
    "ganzoo.onnx_export": ["export_onnx"],
}
_WHERE = {name: module for module, names in _PUBLIC.items() for name in names}
__all__ = sorted(_WHERE) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'ganzoo' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

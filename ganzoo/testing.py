"""Helpers for testing plugins through the real `importlib.metadata` discovery path."""

from __future__ import annotations

import contextlib
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path


@contextlib.contextmanager
def temporary_distribution(
    root: str | Path,
    name: str,
    entry_points: Mapping[str, Mapping[str, str]],
    modules: Mapping[str, str] | None = None,
    version: str = "0.0.1",
) -> Iterator[Path]:
    """Make a distribution visible to `importlib.metadata` for the duration of a `with` block.

    Writes `NAME-VERSION.dist-info` (METADATA, entry_points.txt) and the given module
    sources into `root` and puts `root` on `sys.path`; on exit, takes `root` off `sys.path`
    and forgets the modules. The files stay, so give each use a fresh `root`.

    >>> with temporary_distribution(tmp, "my-gan", {"ganzoo.losses": {"hinge": "my_gan:Hinge"}},
    ...                             modules={"my_gan": source}):
    ...     ganzoo.create_loss("hinge")
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, names in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{plugin} = {target}" for plugin, target in names.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in (modules or {}).items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))
    sys.path.insert(0, str(root))
    try:
        yield info
    finally:
        sys.path.remove(str(root))
        for module in modules or {}:
            sys.modules.pop(module, None)


def channel_statistics_extractor():
    """A stand-in for Inception in tests of image metrics, where its weights cannot be fetched: a
    fixed map from uint8 images to 6 features (each channel's mean and std) and 10 'logits'."""
    import torch

    from .image_metrics import Extractor

    def extract(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = images.double() / 255
        pool = torch.cat([x.mean((2, 3)), x.std((2, 3))], 1)
        return pool, pool @ torch.linspace(-1, 1, 60, dtype=torch.float64, device=pool.device).reshape(6, 10)

    return Extractor(extract, dims=6, name="channel statistics (a test stand-in)", weights_sha256="none")

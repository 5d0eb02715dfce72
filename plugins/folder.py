import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from pydantic import Field, field_validator
from torch import Tensor
from torch.utils.data import DataLoader

import ganzoo

SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
CHANNELS = (1, 3)


def image_files(folder: Path) -> list[Path]:
    """Every image under `folder`, recursively and through symbolic links (as torchvision's
    ImageFolder), in a fixed order. A link back to a folder on its own path (a cycle) is not followed."""
    found = []
    ancestors = {str(folder): {os.path.realpath(folder)}}  # each folder to visit: the real paths above it and itself
    for top, folders, files in os.walk(folder, followlinks=True):
        above = ancestors.pop(top)
        folders[:] = [name for name in folders if os.path.realpath(os.path.join(top, name)) not in above]
        for name in folders:
            ancestors[os.path.join(top, name)] = above | {os.path.realpath(os.path.join(top, name))}
        found += [Path(top, name) for name in files if Path(name).suffix.lower() in SUFFIXES]
    return sorted(path for path in found if path.is_file())


def read_square(source, side: int, mode: str, what: str) -> np.ndarray:
    """The image in `source` (a path or a file object) as uint8 (side, side[, channels]): the shorter
    side resized to `side`, the centre cropped. Any fault is a UsageError "cannot read `what`: ...",
    a decompression bomb included (PIL only warns of one up to twice its MAX_IMAGE_PIXELS)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                square = ImageOps.fit(image.convert(mode), (side, side), Image.Resampling.BICUBIC)
    except (OSError, ValueError, EOFError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ganzoo.UsageError(f"cannot read {what}: {exc}") from exc
    return np.array(square, dtype=np.uint8)


class _Images(torch.utils.data.Dataset):
    """Decoded images as uint8 (C, size, size): a quarter of float32's memory, scaled in the batch.
    A bad image is returned as its UsageError, raised by `_read` in this process: raised in a
    DataLoader worker, it would come back wrapped in that worker's traceback."""

    def __init__(self, files: list[Path], size: int, channels: int) -> None:
        self.files, self.size, self.mode = files, size, "L" if channels == 1 else "RGB"

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Tensor | ganzoo.UsageError:
        try:
            square = read_square(self.files[index], self.size, self.mode, f"image {self.files[index]}")
        except ganzoo.UsageError as exc:
            return exc
        return torch.from_numpy(square).view(self.size, self.size, -1).permute(2, 0, 1)


def _collate(items: list) -> Tensor | ganzoo.UsageError:
    return next((item for item in items if isinstance(item, ganzoo.UsageError)), None) or torch.stack(items)


def _read(loader: DataLoader) -> Iterator[Tensor]:
    for batch in loader:
        if isinstance(batch, ganzoo.UsageError):
            raise batch
        yield batch


def _to_unit_range(pixels: Tensor) -> Tensor:
    return pixels.float() / 127.5 - 1  # [0, 255] -> [-1, 1]


class Folder(ganzoo.Dataset):
    """Every image in a folder (png, jpg, jpeg, bmp, webp; recursive), centre-cropped to a square.

    Labelled when every image lies in a subfolder (one class per subfolder, as torchvision's ImageFolder)."""

    class Config(ganzoo.Config):
        path: Path = Field(description="folder of images, searched recursively")
        size: int = Field(64, gt=0, le=4096, description="side of the square images")
        channels: int = Field(3, description="1 (grey) or 3 (RGB)")
        num_workers: int = Field(0, ge=0, description="DataLoader worker processes that decode images")
        memory_limit_mb: float = Field(
            2048, ge=0,
            description="decode every image once and keep them in memory when they fit in this many MB "
            "(as float32, else as uint8); else decode each batch anew",
        )  # fmt: skip

        @field_validator("path")
        @classmethod
        def _holds_images(cls, path: Path) -> Path:
            if not path.is_dir():
                raise ValueError(f"no folder at {path}")
            if not image_files(path):
                raise ValueError(f"no images ({', '.join(SUFFIXES)}) under {path}")
            return path

        @field_validator("channels")
        @classmethod
        def _allowed_channels(cls, channels: int) -> int:
            if channels not in CHANNELS:
                raise ValueError("must be 1 (grey) or 3 (RGB)")
            return channels

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.sample_shape = (config.channels, config.size, config.size)
        self.files = image_files(config.path)
        # As torchvision's ImageFolder: when every image lies in a subfolder, each subfolder is a class.
        parts = [f.relative_to(config.path).parts for f in self.files]
        self.class_names = sorted({p[0] for p in parts}) if all(len(p) > 1 for p in parts) else []
        self.classes = len(self.class_names)
        index = {name: i for i, name in enumerate(self.class_names)}
        self.labels = torch.tensor([index[p[0]] for p in parts] if self.classes else [], dtype=torch.long)

    def batches(self, batch_size: int, device: torch.device) -> Iterator[Tensor]:
        seed = int(torch.randint(2**62, ()))  # from the global RNG, so manual_seed makes it repeatable
        return self.local_batches(batch_size, device, ganzoo.Shard(seed=seed))

    def local_batches(self, batch_size: int, device: torch.device, shard: ganzoo.Shard) -> Iterator[Tensor]:
        return (images for images, _ in self._indexed(batch_size, device, shard))

    def labelled_batches(self, batch_size: int, device: torch.device, shard: ganzoo.Shard) -> Iterator[tuple[Tensor, Tensor]]:
        if not self.classes:
            raise ganzoo.UsageError(f"{self.config.path} has no labels: put each class's images in a subfolder of their own")
        labels = self.labels.to(device)
        return ((images, labels[indices]) for images, indices in self._indexed(batch_size, device, shard))

    def _indexed(self, batch_size: int, device: torch.device, shard: ganzoo.Shard) -> Iterator[tuple[Tensor, Tensor]]:
        """(images in [-1, 1], their indices) of this process's rows of each global batch."""
        device = torch.device(device)
        images = _Images(self.files, self.config.size, self.config.channels)
        if len(images) < batch_size:
            raise ganzoo.UsageError(
                f"{self.config.path} holds {len(images)} images, fewer than one batch of {batch_size}"
            )
        batches = (indices.to(device) for indices in ganzoo.epoch_indices(len(images), batch_size, shard))
        size_mb = len(images) * self.config.channels * self.config.size**2 / 2**20  # as uint8
        if size_mb > self.config.memory_limit_mb:
            return self._stream(images, batches, device)
        ganzoo.check_memory(
            int(size_mb * 2**20 * (5 if 4 * size_mb <= self.config.memory_limit_mb else 1)),  # uint8, and float32 too
            f"{len(images):,} images of {self.config.size}x{self.config.size}",
            "lower the memory_limit_mb= option to read them from disk each batch, or choose a smaller size= option",
        )
        pixels = self._decode_all(images).to(device)
        if 4 * size_mb <= self.config.memory_limit_mb:  # float32 fits too: convert once, index only
            pixels = _to_unit_range(pixels)
            return ((pixels[indices], indices) for indices in batches)
        return ((_to_unit_range(pixels[indices]), indices) for indices in batches)

    def _decode_all(self, images: _Images) -> Tensor:
        loader = DataLoader(images, batch_size=256, num_workers=self.config.num_workers, collate_fn=_collate)
        return torch.cat(list(_read(loader)))

    def _stream(self, images: _Images, batches: Iterator[Tensor], device: torch.device) -> Iterator[tuple[Tensor, Tensor]]:
        pinned = device.type == "cuda"
        order: list[Tensor] = []  # the loader reads the batches in order, so each batch's indices are the next
        loader = DataLoader(
            images,
            batch_sampler=(order.append(indices) or indices.tolist() for indices in batches),
            num_workers=self.config.num_workers,
            collate_fn=_collate,
            pin_memory=pinned,
        )
        for pixels in _read(loader):
            yield _to_unit_range(pixels.to(device, non_blocking=pinned)), order.pop(0)

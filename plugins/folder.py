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
    """Every image under `folder`, recursively, in a fixed order."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())


class _Images(torch.utils.data.Dataset):
    def __init__(self, files: list[Path], size: int, channels: int) -> None:
        self.files, self.size, self.mode = files, size, "L" if channels == 1 else "RGB"

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Tensor:
        path = self.files[index]
        try:
            with Image.open(path) as image:
                # fit = resize the shorter side to `size`, then crop the centre to a square
                square = ImageOps.fit(image.convert(self.mode), (self.size, self.size), Image.Resampling.BICUBIC)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise ganzoo.UsageError(f"cannot read image {path}: {exc}") from exc
        pixels = torch.from_numpy(np.array(square, dtype=np.float32)).view(self.size, self.size, -1)
        return pixels.permute(2, 0, 1) / 127.5 - 1  # [0, 255] -> [-1, 1]


class Folder(ganzoo.Dataset):
    """Every image in a folder (png, jpg, jpeg, bmp, webp; recursive), centre-cropped to a square."""

    class Config(ganzoo.Config):
        path: Path = Field(description="folder of images, searched recursively")
        size: int = Field(64, gt=0, description="side of the square images")
        channels: int = Field(3, description="1 (grey) or 3 (RGB)")
        num_workers: int = Field(0, ge=0, description="DataLoader worker processes")

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

    def batches(self, batch_size: int, device: torch.device) -> Iterator[Tensor]:
        device = torch.device(device)
        images = _Images(image_files(self.config.path), self.config.size, self.config.channels)
        if len(images) < batch_size:
            raise ganzoo.UsageError(
                f"{self.config.path} holds {len(images)} images, fewer than one batch of {batch_size}"
            )
        pinned = device.type == "cuda"
        loader = DataLoader(
            images,
            batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=self.config.num_workers,
            persistent_workers=self.config.num_workers > 0,
            pin_memory=pinned,
        )
        while True:  # one epoch after another, reshuffled each time
            for batch in loader:
                yield batch.to(device, non_blocking=pinned)

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from PIL import Image, ImageOps
from pydantic import Field, field_validator
from torch import Tensor

import ganzoo


class LSUN(ganzoo.Dataset):
    """LSUN scenes (Yu et al. 2015): the official LMDB releases of one or more categories, streamed."""

    class Config(ganzoo.ImageDataConfig):
        downloads: ClassVar[bool] = False
        categories: list[str] = Field(["bedroom"], min_length=1, description="scene categories; the label is the index here")
        split: Literal["train", "val"] = Field("train", description="the official train or val split")
        size: int = Field(64, gt=0, le=1024, description="side of the square images (centre crop, resized)")

        @field_validator("categories", mode="before")
        @classmethod
        def _from_text(cls, value):
            return value.split("+") if isinstance(value, str) else value  # lsun:categories=bedroom+church_outdoor

        @field_validator("categories")
        @classmethod
        def _named(cls, categories: list[str]) -> list[str]:
            if not all(re.fullmatch(r"[a-z_]+", c) for c in categories):
                raise ValueError("each category is a name such as bedroom or church_outdoor, joined by '+'")
            return categories

        @field_validator("download")
        @classmethod
        def _by_hand(cls, download: bool) -> bool:
            if download:
                raise ValueError("LSUN's releases are tens of GB: fetch them with the LSUN authors' download.py")
            return download

        def files(self) -> list[Path]:
            return [Path(self.root) / f"{category}_{self.split}_lmdb" / "data.mdb" for category in self.categories]

        def by_hand(self) -> str:
            return f"unzip the official {self.split} LMDB of each category in {self.root}"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.sample_shape = (3, config.size, config.size)
        self._keys: list[tuple[int, bytes]] | None = None

    def keys(self) -> list[tuple[int, bytes]]:
        """(label, key) of every image, read once; the images stay on disk (millions of them)."""
        if self._keys is None:
            self._keys = []
            for label, path in enumerate(self.config.files()):
                with self.open(path.parent) as env, env.begin() as txn:
                    self._keys += [(label, key) for key in txn.cursor().iternext(keys=True, values=False)]
        return self._keys

    def open(self, folder: Path):
        try:
            import lmdb
        except ImportError:
            raise ganzoo.UsageError("the lsun dataset reads LMDB files: pip install 'ganzoo[lsun]'") from None
        try:
            return lmdb.open(str(folder), readonly=True, lock=False, readahead=False, meminit=False)
        except lmdb.Error as exc:
            raise ganzoo.UsageError(f"{folder} is not a readable LMDB ({exc})") from None

    def decode(self, envs: list, label: int, key: bytes) -> Tensor:
        with envs[label].begin() as txn:
            data = txn.get(key)
        try:
            with Image.open(io.BytesIO(data)) as image:
                square = ImageOps.fit(image.convert("RGB"), self.sample_shape[1:], Image.Resampling.BICUBIC)
        except (OSError, ValueError) as exc:
            raise ganzoo.UsageError(f"LSUN image {key!r} of {self.config.categories[label]} cannot be read: {exc}") from None
        return torch.from_numpy(np.array(square)).permute(2, 0, 1)

    def batches(self, batch_size: int, device: torch.device) -> Iterator[Tensor]:
        seed = int(torch.randint(2**62, ()))  # from the global RNG, so manual_seed makes it repeatable
        return self.local_batches(batch_size, device, ganzoo.Shard(seed=seed))

    def local_batches(self, batch_size: int, device: torch.device, shard: ganzoo.Shard) -> Iterator[Tensor]:
        return (images for images, _ in self.labelled_batches(batch_size, device, shard))

    def labelled_batches(self, batch_size: int, device: torch.device, shard: ganzoo.Shard) -> Iterator[tuple[Tensor, Tensor]]:
        keys = self.keys()
        envs = [self.open(path.parent) for path in self.config.files()]
        for indices in ganzoo.epoch_indices(len(keys), batch_size, shard):
            pixels = torch.stack([self.decode(envs, *keys[i]) for i in indices.tolist()])
            labels = torch.tensor([keys[i][0] for i in indices.tolist()])
            yield (pixels.float() / 127.5 - 1).to(device), labels.to(device)

    @property
    def classes(self) -> int:
        return len(self.config.categories)  # the label is the category

    def labels(self) -> Tensor:
        return torch.tensor([label for label, _ in self.keys()])

    def describe(self) -> dict:
        return {"classes": len(self.config.categories)}

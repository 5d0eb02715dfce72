import tarfile
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

import ganzoo

#: the binary release (its python release is pickle, which ganzoo never reads) and its published md5
ARCHIVE = "cifar-10-binary.tar.gz"
URL = "https://www.cs.toronto.edu/~kriz/" + ARCHIVE
MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
FOLDER = "cifar-10-batches-bin"
FILES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
RECORD = 1 + 3 * 32 * 32  # a label byte, then the red, green and blue 32x32 planes
OFFICIAL_RECORDS = 10_000  # in each batch of the release


class CIFAR10(ganzoo.InMemoryImages):
    """CIFAR-10 (Krizhevsky 2009): 50,000 train and 10,000 test 32x32 colour images, 10 classes."""

    channels, native_size, classes = 3, 32, 10

    class Config(ganzoo.ImageDataConfig):
        split: Literal["train", "test"] = Field("train", description="the official train or test split")
        verify: bool = Field(True, description="refuse a batch without the official 10,000 records (false: batches of your own)")
        mirror: str = Field("", pattern=r"^(https?://\S+)?$", max_length=2000,
                                   description=f"URL of a folder serving {ARCHIVE} (empty: the authors' site)")  # fmt: skip

        def files(self) -> list[Path]:
            return [Path(self.root) / FOLDER / name for name in FILES[self.split]]

        def by_hand(self) -> str:
            return f"unpack CIFAR-10's binary release, {ARCHIVE}, in {self.root}"

    def load(self) -> tuple[Tensor, Tensor]:
        paths = self.config.files()
        folder = paths[0].parent
        if not all(path.is_file() for path in paths):
            self.fetch(folder)
        total = sum(self.records(path) for path in paths)  # judged by the sizes, before a byte is read
        ganzoo.check_memory(total * RECORD * 5, f"the {total:,} records in {folder}")  # as uint8, then float32
        table = torch.from_numpy(np.concatenate([self.read(path) for path in paths]))
        return table[:, 1:].reshape(-1, 3, 32, 32).contiguous(), table[:, 0].long()

    def records(self, path: Path) -> int:
        """How many records `path` holds, by its size; with `verify`, the official count or a UsageError."""
        size = path.stat().st_size
        if size == 0 or size % RECORD:
            raise ganzoo.UsageError(f"{path} is not CIFAR-10's binary format ({size:,} bytes, not records of {RECORD:,})")
        if self.config.verify and size // RECORD != OFFICIAL_RECORDS:
            raise ganzoo.UsageError(
                f"{path} holds {size // RECORD:,} records; an official CIFAR-10 batch holds {OFFICIAL_RECORDS:,} "
                f"(of {RECORD:,} bytes): copy it again, or verify=false reads batches of your own"
            )
        return size // RECORD

    def read(self, path: Path) -> np.ndarray:
        """The records of `path`, one a row, each label checked."""
        records = np.fromfile(path, dtype=np.uint8).reshape(-1, RECORD)
        bad = np.flatnonzero(records[:, 0] >= self.classes)
        if len(bad):
            raise ganzoo.UsageError(
                f"{path}: label {records[bad[0], 0]} at record {bad[0]:,} ({len(bad):,} in all) is not a class of "
                f"CIFAR-10 (0-{self.classes - 1})"
            )
        return records

    def fetch(self, folder: Path) -> None:
        url = self.config.mirror.rstrip("/") + "/" + ARCHIVE if self.config.mirror else URL
        archive = ganzoo.download(url, folder.parent / ARCHIVE, md5=MD5, what=f"CIFAR-10 {ARCHIVE}")
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(folder.parent, filter="data")  # plain files inside the root only
        except (tarfile.TarError, OSError) as exc:
            raise ganzoo.UsageError(f"{archive} cannot be unpacked ({exc})") from None
        finally:
            archive.unlink(missing_ok=True)

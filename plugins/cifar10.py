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


class CIFAR10(ganzoo.InMemoryImages):
    """CIFAR-10 (Krizhevsky 2009): 50,000 train and 10,000 test 32x32 colour images, 10 classes."""

    channels, native_size, classes = 3, 32, 10

    class Config(ganzoo.ImageDataConfig):
        split: Literal["train", "test"] = Field("train", description="the official train or test split")

        def files(self) -> list[Path]:
            return [Path(self.root) / FOLDER / name for name in FILES[self.split]]

        def by_hand(self) -> str:
            return f"unpack CIFAR-10's binary release, {ARCHIVE}, in {self.root}"

    def load(self) -> tuple[Tensor, Tensor]:
        paths = self.config.files()
        folder = paths[0].parent
        if not all(path.is_file() for path in paths):
            self.fetch(folder)
        records = []
        for path in paths:
            data = np.fromfile(path, dtype=np.uint8)
            if data.size == 0 or data.size % RECORD:
                raise ganzoo.UsageError(f"{path} is not CIFAR-10's binary format ({data.size} bytes, not records of {RECORD})")
            records.append(data.reshape(-1, RECORD))
        table = torch.from_numpy(np.concatenate(records))
        labels = table[:, 0].long()
        if int(labels.max()) > 9:
            raise ganzoo.UsageError(f"{folder} holds a label {int(labels.max())}; CIFAR-10 has labels 0-9")
        return table[:, 1:].reshape(-1, 3, 32, 32).contiguous(), labels

    def fetch(self, folder: Path) -> None:
        archive = ganzoo.download(URL, folder.parent / ARCHIVE, md5=MD5, what=f"CIFAR-10 {ARCHIVE}")
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(folder.parent, filter="data")  # plain files inside the root only
        except (tarfile.TarError, OSError) as exc:
            raise ganzoo.UsageError(f"{archive} cannot be unpacked ({exc})") from None
        finally:
            archive.unlink(missing_ok=True)

import functools
import gzip
import hashlib
import json
import math
import struct
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

import ganzoo

from . import classifiers

#: the IDX type code of unsigned bytes, the only one the official files use
UBYTE = 0x08
SIDE = 28


def read_idx(path: Path, shape: tuple[int, ...], md5: str | None) -> np.ndarray:
    """The unsigned-byte IDX array in `path` (gzip-packed when it ends in .gz) whose sizes after the
    first are `shape`; with `md5`, the content (the unpacked bytes) must have it. Every fault is one
    line naming the file; the size is checked against the memory before the data is read.

    Written here rather than taken from torchvision, whose reader reads unpacked files only and
    checks neither the sizes nor the byte count against the header."""
    rank = 1 + len(shape)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as file:
            header = file.read(4 + 4 * rank)
            if len(header) < 4 or header[:2] != b"\0\0":
                raise ganzoo.UsageError(f"{path} is not an IDX file (it does not start with the bytes 0x00 0x00)")
            if header[2] != UBYTE or header[3] != rank:
                raise ganzoo.UsageError(
                    f"{path} holds IDX type 0x{header[2]:02x} in {header[3]} dimensions; an MNIST file holds "
                    f"unsigned bytes (0x08) in {rank}"
                )
            if len(header) < 4 + 4 * rank:
                raise ganzoo.UsageError(f"{path} ends inside its IDX header")
            sizes = struct.unpack(f">{rank}I", header[4:])
            if sizes[1:] != shape:
                found = "x".join(map(str, sizes[1:]))
                raise ganzoo.UsageError(f"{path} holds items of {found} bytes; this dataset's are {'x'.join(map(str, shape))}")
            count = math.prod(sizes)
            ganzoo.check_memory(count, f"the {sizes[0]:,} items of {path}")
            data = file.read(count + 1)
    except (OSError, EOFError) as exc:  # a .gz that is not gzip, or is cut short
        raise ganzoo.UsageError(f"{path} cannot be read: {exc}") from None
    if len(data) != count:
        said = "more" if len(data) > count else f"{len(data):,}"
        raise ganzoo.UsageError(f"{path}: its header announces {count:,} bytes of data, it holds {said}")
    if md5 is not None and hashlib.md5(header + data).hexdigest() != md5:
        raise ganzoo.UsageError(
            f"{path} is not the official file: its content's md5 differs from the published {md5} (damaged? "
            "delete it to fetch it again; verify=false reads files of your own in this format)"
        )
    return np.frombuffer(data, dtype=np.uint8).reshape(sizes)


class MNIST(ganzoo.InMemoryImages):
    """MNIST handwritten digits (LeCun et al.): 60,000 train and 10,000 test 28x28 images, 10 classes."""

    channels, native_size, classes = 1, SIDE, 10
    #: the published md5 of each file's content (its unpacked bytes): repackagers recompress the .gz
    CONTENT_MD5: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    }

    class Config(ganzoo.ImageDataConfig):
        folder: ClassVar[str] = "MNIST"  # torchvision's layout: ROOT/MNIST/raw/<the official IDX files>
        #: where an operating system's package puts the files, searched when no root is given
        system_folders: ClassVar[tuple[str, ...]] = ()
        system_package: ClassVar[str] = ""
        split: Literal["train", "test"] = Field("train", description="the official train or test split")
        verify: bool = Field(True, description="check each file's content against its published md5 (false: files of your own)")
        # "" rather than None for the default: a run records its data as text (mirror=), read back as the default
        mirror: str = Field("", pattern=r"^(https?://\S+)?$", max_length=2000,
                                   description="URL of a folder serving the official .gz files (empty: the dataset's own)")  # fmt: skip

        def names(self) -> list[str]:
            prefix = "train" if self.split == "train" else "t10k"
            return [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]

        def places(self) -> list[Path]:
            """The folders searched, in order: torchvision's layout, the root itself, then the system's."""
            root = Path(self.root)
            default = Path(type(self).model_fields["root"].default)
            system = [Path(p) for p in self.system_folders] if root == default else []  # a root of one's own: its files alone
            return [root / self.folder / "raw", root, *system]

        def files(self) -> list[Path]:
            """Each file as found (unpacked or .gz), else where a download puts it."""
            found = []
            for name in self.names():
                candidates = [folder / f"{name}{suffix}" for folder in self.places() for suffix in ("", ".gz")]
                found.append(next((p for p in candidates if p.exists()), self.places()[0] / f"{name}.gz"))
            return found

        def by_hand(self) -> str:
            where = ", ".join(str(p) for p in self.places())
            package = f"install Debian's package ({self.system_package}), or " if self.system_package else ""
            return f"looked for it, unpacked or .gz, in {where}; {package}put the official files in {self.places()[0]}"

    def load(self) -> tuple[Tensor, Tensor]:
        for path in self.config.files():
            if not path.exists():
                self.fetch(path)
        images_path, labels_path = self.config.files()
        check = self.config.verify
        images = read_idx(images_path, (SIDE, SIDE), self.CONTENT_MD5[self.config.names()[0]] if check else None)
        labels = read_idx(labels_path, (), self.CONTENT_MD5[self.config.names()[1]] if check else None)
        if len(images) != len(labels):
            raise ganzoo.UsageError(f"{images_path} holds {len(images):,} images but {labels_path} {len(labels):,} labels")
        bad = np.flatnonzero(labels >= self.classes)
        if len(bad):
            raise ganzoo.UsageError(
                f"{labels_path}: label {labels[bad[0]]} at index {bad[0]:,} ({len(bad):,} in all) is not a class "
                f"0-{self.classes - 1}"
            )
        return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))

    def fetch(self, path: Path) -> None:
        """The official .gz from the mirror (the config's, else the dataset's own), its published md5
        checked; read packed, as it comes."""
        md5 = dict(self.resources())[path.name]
        base = self.config.mirror or self.mirror()
        ganzoo.download(base.rstrip("/") + "/" + path.name, path, md5=md5, what=f"{self.config.folder} {path.name}")

    def resources(self) -> list[tuple[str, str]]:
        from torchvision.datasets import MNIST as Official

        return Official.resources

    def mirror(self) -> str:
        from torchvision.datasets import MNIST as Official

        return Official.mirrors[0]


class FashionMNIST(MNIST):
    """Fashion-MNIST (Xiao et al. 2017): Zalando's 28x28 clothing images in MNIST's format, 10 classes."""

    CONTENT_MD5: ClassVar[dict[str, str]] = {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    }

    class Config(MNIST.Config):
        folder: ClassVar[str] = "FashionMNIST"
        system_folders: ClassVar[tuple[str, ...]] = ("/usr/share/datasets/fashion-mnist",)
        system_package: ClassVar[str] = "apt-get install dataset-fashion-mnist"

    #: as many as the test split's images, which the samples are scored against
    evaluation_samples = 10_000

    def resources(self) -> list[tuple[str, str]]:
        from torchvision.datasets import FashionMNIST as Official

        return Official.resources

    def mirror(self) -> str:
        # torchvision's mirror is plain http; the authors' repository serves the same files over https
        return "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"

    def evaluate(self, samples: Tensor, labels: Tensor | None, seed: int) -> dict[str, Any]:
        """Scores of ganzoo's Fashion-MNIST classifier (trained on the train split) of the samples
        against the 10,000 test images at 28x28: classes covered, KL to uniform, confidence and the
        Frechet distance of its 128 features; "frechet_real" is that of 10,000 real train images."""
        classifier = classifiers.load(classifiers.FashionClassifier)
        images, real_labels, features = test_split(self.config.model_dump_json())
        scores = ganzoo.classifier_metrics(classifier, samples, images, labels, real_labels, real_features=features)
        return {**scores, "frechet_real": float(classifier.metadata["frechet_train_test"])}


@functools.cache
def test_split(config: str) -> tuple[Tensor, Tensor, Tensor]:
    """Fashion-MNIST's test images at 28x28, their labels and their classifier features, once per
    process for the files a config reads (the zoo scores ten checkpoints, a study every trial)."""
    settings = {**json.loads(config), "split": "test", "size": 0}
    images, labels = FashionMNIST(FashionMNIST.Config(**settings)).tensors()
    classifier = classifiers.load(classifiers.FashionClassifier)
    with torch.no_grad():
        features = torch.cat([classifier.features(chunk) for chunk in images.split(1000)])
    return images, labels, features

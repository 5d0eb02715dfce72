import re
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from torch import Tensor

import ganzoo

from .folder import read_square

SPLITS = {"train": 0, "valid": 1, "test": 2}
PARTITIONS = {str(number) for number in SPLITS.values()}


def fault(path: Path, number: int, what: str) -> ganzoo.UsageError:
    return ganzoo.UsageError(f"{path}, line {number}, {what}")


def read_lines(path: Path) -> list[list[str]]:
    """The words of each line of a CelebA list (line n is item n - 1); one not UTF-8 is refused."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ganzoo.UsageError(f"{path} cannot be read: {exc}") from None
    lines = []
    for number, line in enumerate(data.splitlines(), 1):
        try:
            lines.append(line.decode("utf-8").split())
        except UnicodeDecodeError:
            raise fault(path, number, "is not UTF-8 text") from None
    return lines


def entries(path: Path, lines: list[list[str]], first: int, count: int, allowed: set[str], values: str):
    """(file name, values) of each line from line `first` on; a line that is empty, that has not `count`
    values among `allowed` (said as `values`), or whose file name is not a plain name in the image
    folder is refused."""
    for number, words in enumerate(lines[first - 1 :], first):
        if not words:
            raise fault(path, number, "is empty")
        name, *rest = words
        if len(rest) != count or not set(rest) <= allowed:
            raise fault(path, number, f"is not a file name and {values}")
        if "/" in name or "\\" in name or name in (".", ".."):  # confined to img_align_celeba
            raise fault(path, number, f"names a file outside {path.parent / 'img_align_celeba'}: {name}")
        yield name, rest


class CelebA(ganzoo.InMemoryImages):
    """CelebA (Liu et al. 2015): 202,599 aligned 178x218 celebrity faces with 40 binary attributes."""

    channels, native_size = 3, 64

    class Config(ganzoo.ImageDataConfig):
        downloads: ClassVar[bool] = False
        split: Literal["train", "valid", "test", "all"] = Field("train", description="the official partition, or all")
        size: int = Field(64, gt=0, le=178, description="side of the square faces (the centre 178x178 crop, resized)")
        attribute: str | None = Field(None, description="an attribute (e.g. Male) whose value is the label, 0 or 1")

        @field_validator("download")
        @classmethod
        def _by_hand(cls, download: bool) -> bool:
            if download:
                raise ValueError("CelebA comes from the authors' Google Drive, which ganzoo does not script: fetch "
                                 "img_align_celeba.zip, list_attr_celeba.txt and list_eval_partition.txt by hand")  # fmt: skip
            return download

        def files(self) -> list[Path]:
            folder = Path(self.root) / "celeba"
            return [folder / "list_attr_celeba.txt", folder / "list_eval_partition.txt"]

        def by_hand(self) -> str:
            return f"unzip img_align_celeba.zip and put the attribute and partition lists in {Path(self.root) / 'celeba'}"

    def load(self) -> tuple[Tensor, Tensor]:
        folder = Path(self.config.root) / "celeba"
        names, attributes = self.attributes_table(folder / "list_attr_celeba.txt")
        column = self.column() if self.config.attribute else None  # an unknown attribute is said before decoding
        if self.config.split == "all":
            keep = list(range(len(names)))
        else:
            keep = self.in_split(names, folder / "list_eval_partition.txt")
        side = self.config.size
        ganzoo.check_memory(
            len(keep) * 3 * side * side * 5, f"{len(keep):,} faces of {side}x{side}",  # as uint8, then float32
            "choose a smaller size= option or a split",
        )
        faces = np.empty((len(keep), side, side, 3), dtype=np.uint8)
        from tqdm.auto import tqdm

        for row, i in enumerate(tqdm(keep, desc="decoding CelebA", unit="face", disable=len(keep) < 5000)):
            path = folder / "img_align_celeba" / names[i]
            faces[row] = read_square(path, side, "RGB", f"face {path}")  # the centre square, at the side asked for
        labels = attributes[keep, column] if column is not None else torch.zeros(len(keep), dtype=torch.long)
        return torch.from_numpy(faces).permute(0, 3, 1, 2).contiguous(), labels

    def attributes_table(self, path: Path) -> tuple[list[str], Tensor]:
        """File names and their attributes as 0/1 (the file writes -1/1), checked line by line."""
        lines = read_lines(path)
        if not lines or len(lines[0]) != 1 or not re.fullmatch("[0-9]+", lines[0][0]):
            raise fault(path, 1, "is not the number of faces" + ("" if lines else " (the file is empty)"))
        if len(lines) < 2 or not lines[1]:
            raise fault(path, 2, "names no attributes")
        announced, self.attribute_names = int(lines[0][0]), lines[1]
        count = len(self.attribute_names)
        names, rows = [], []
        for name, values in entries(path, lines, 3, count, {"-1", "1"}, f"{count} values of -1 or 1"):
            names.append(name)
            rows.append([v == "1" for v in values])
        if len(names) != announced:  # a cut-short copy
            raise fault(path, 1, f"announces {announced:,} faces but the file lists {len(names):,}")
        return names, torch.tensor(rows, dtype=torch.long).reshape(len(rows), count)

    def in_split(self, names: list[str], path: Path) -> list[int]:
        """The indices of the faces in the configured split, by the partition list in `path`."""
        listed = entries(path, read_lines(path), 1, 1, PARTITIONS, "its partition, 0, 1 or 2")
        partition = {name: value for name, (value,) in listed}
        missing = next((i for i, name in enumerate(names) if name not in partition), None)
        if missing is not None:  # face i is on line i + 3 of the attribute list, which has no empty line
            raise ganzoo.UsageError(
                f"{path} gives no partition to {names[missing]} ({path.parent / 'list_attr_celeba.txt'}, line {missing + 3}): "
                "the copy is cut short; copy it again"
            )
        wanted = str(SPLITS[self.config.split])
        return [i for i, name in enumerate(names) if partition[name] == wanted]

    def column(self) -> int:
        if self.config.attribute not in self.attribute_names:
            raise ganzoo.UsageError(f"CelebA has no attribute '{self.config.attribute}'; it has {', '.join(self.attribute_names)}")
        return self.attribute_names.index(self.config.attribute)

    def data_files(self) -> list[Path]:
        return [*self.config.files(), Path(self.config.root) / "celeba" / "img_align_celeba"]  # the faces too

    @property
    def classes(self) -> int:
        return 2 if self.config.attribute else 0  # labelled by its attribute, if one is chosen

    def describe(self) -> dict:
        return {"classes": 2 if self.config.attribute else 1}

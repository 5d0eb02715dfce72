from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from PIL import Image, ImageOps
from pydantic import Field, field_validator
from torch import Tensor

import ganzoo

SPLITS = {"train": 0, "valid": 1, "test": 2}


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
        partition = dict(line.split()[:2] for line in (folder / "list_eval_partition.txt").read_text().splitlines() if line.strip())
        keep = [i for i, name in enumerate(names) if self.config.split == "all" or partition.get(name) == str(SPLITS[self.config.split])]
        side = self.config.size
        faces = np.empty((len(keep), side, side, 3), dtype=np.uint8)
        from tqdm.auto import tqdm

        for row, i in enumerate(tqdm(keep, desc="decoding CelebA", unit="face", disable=len(keep) < 5000)):
            path = folder / "img_align_celeba" / names[i]
            try:
                with Image.open(path) as face:  # centre square, then the side asked for
                    faces[row] = np.asarray(ImageOps.fit(face.convert("RGB"), (side, side), Image.Resampling.BICUBIC))
            except (OSError, ValueError) as exc:
                raise ganzoo.UsageError(f"cannot read face {path}: {exc}") from None
        labels = attributes[keep, self.column()] if self.config.attribute else torch.zeros(len(keep), dtype=torch.long)
        return torch.from_numpy(faces).permute(0, 3, 1, 2).contiguous(), labels

    def attributes_table(self, path: Path) -> tuple[list[str], Tensor]:
        """File names and their attributes as 0/1 (the file writes -1/1), checked line by line."""
        lines = path.read_text().splitlines()
        self.attribute_names = lines[1].split()
        names, rows = [], []
        for number, line in enumerate(lines[2:], 3):
            name, *values = line.split()
            if len(values) != len(self.attribute_names) or not set(values) <= {"-1", "1"}:
                raise ganzoo.UsageError(f"{path}, line {number}, is not a file name and {len(self.attribute_names)} values of -1 or 1")
            names.append(name)
            rows.append([v == "1" for v in values])
        return names, torch.tensor(rows, dtype=torch.long).reshape(len(rows), len(self.attribute_names))

    def column(self) -> int:
        if self.config.attribute not in self.attribute_names:
            raise ganzoo.UsageError(f"CelebA has no attribute '{self.config.attribute}'; it has {', '.join(self.attribute_names)}")
        return self.attribute_names.index(self.config.attribute)

    @property
    def classes(self) -> int:
        return 2 if self.config.attribute else 0  # labelled by its attribute, if one is chosen

    def describe(self) -> dict:
        return {"classes": 2 if self.config.attribute else 1}

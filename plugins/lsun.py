import io
import re
import struct
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Literal

import torch
from pydantic import Field, field_validator
from torch import Tensor

import ganzoo

from .folder import read_square

#: LMDB's meta page (64-bit, native byte order): after the 16-byte page header, the magic number at
#: 16; the page size (the free-page DB's md_pad) at 40; the last page used and the txnid at 136
MAGIC, META_MAGIC, META_PAGE_SIZE, META_LAST_PAGE = 0xBEEFC0DE, 16, 40, 136


def lmdb_module():
    """lmdb, an optional dependency: imported when an LSUN file is read."""
    try:
        import lmdb
    except ImportError:
        raise ganzoo.UsageError("the lsun dataset reads LMDB files: pip install 'ganzoo[lsun]'") from None
    return lmdb


def check_lmdb_size(path: Path) -> None:
    """Refuse an LMDB file shorter than its newest meta page says it is: lmdb maps the file, and
    reading a page past a cut-short end kills the process with SIGBUS. A file without LMDB's magic
    number is left to lmdb, which says so."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        first = file.read(META_LAST_PAGE + 16)
        if len(first) < META_LAST_PAGE + 16 or struct.unpack_from("=I", first, META_MAGIC)[0] != MAGIC:
            return
        page_size = struct.unpack_from("=I", first, META_PAGE_SIZE)[0]
        if size < 2 * page_size:
            raise ganzoo.UsageError(
                f"{path} holds {size:,} bytes, less than the two pages an LMDB starts with: the copy is cut short; copy it again"
            )
        file.seek(page_size)
        second = file.read(META_LAST_PAGE + 16)
    metas = [struct.unpack_from("=QQ", page, META_LAST_PAGE) for page in (first, second)
             if struct.unpack_from("=I", page, META_MAGIC)[0] == MAGIC]  # fmt: skip
    last_page, _ = max(metas, key=lambda meta: meta[1])  # lmdb reads the meta of the newest transaction
    if size < (last_page + 1) * page_size:
        raise ganzoo.UsageError(
            f"{path} holds {size:,} bytes but its LMDB reaches {(last_page + 1) * page_size:,}: the copy is cut short; copy it again"
        )


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
            twice = next((c for c, n in Counter(categories).items() if n > 1), None)
            if twice:
                raise ValueError(f"{twice} is named twice; each category is one class")
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
                with self.open(path) as env, env.begin() as txn:
                    try:
                        self._keys += [(label, key) for key in txn.cursor().iternext(keys=True, values=False)]
                    except lmdb_module().Error as exc:
                        raise ganzoo.UsageError(f"{path} cannot be read ({exc})") from None
        return self._keys

    def open(self, path: Path):
        """The LMDB environment of the file `path` (its folder), once its size is checked."""
        lmdb = lmdb_module()
        try:
            check_lmdb_size(path)
            return lmdb.open(str(path.parent), readonly=True, lock=False, readahead=False, meminit=False)
        except (lmdb.Error, OSError) as exc:
            raise ganzoo.UsageError(f"{path} is not a readable LMDB ({exc})") from None

    def decode(self, envs: list, label: int, key: bytes) -> Tensor:
        path, name = self.config.files()[label], key.decode(errors="backslashreplace")
        try:
            with envs[label].begin() as txn:
                data = txn.get(key)
        except lmdb_module().Error as exc:
            raise ganzoo.UsageError(f"{path}, key {name}, cannot be read ({exc})") from None
        square = read_square(io.BytesIO(data), self.config.size, "RGB", f"image {name} of {path}")
        return torch.from_numpy(square).permute(2, 0, 1)

    def batches(self, batch_size: int, device: torch.device) -> Iterator[Tensor]:
        seed = int(torch.randint(2**62, ()))  # from the global RNG, so manual_seed makes it repeatable
        return self.local_batches(batch_size, device, ganzoo.Shard(seed=seed))

    def local_batches(self, batch_size: int, device: torch.device, shard: ganzoo.Shard) -> Iterator[Tensor]:
        return (images for images, _ in self.labelled_batches(batch_size, device, shard))

    def labelled_batches(self, batch_size: int, device: torch.device, shard: ganzoo.Shard) -> Iterator[tuple[Tensor, Tensor]]:
        keys = self.keys()
        envs = [self.open(path) for path in self.config.files()]
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

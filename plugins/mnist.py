import gzip
import shutil
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field
from torch import Tensor

import ganzoo


class MNIST(ganzoo.InMemoryImages):
    """MNIST handwritten digits (LeCun et al.): 60,000 train and 10,000 test 28x28 images, 10 classes."""

    channels, native_size, classes = 1, 28, 10

    class Config(ganzoo.ImageDataConfig):
        folder: ClassVar[str] = "MNIST"  # torchvision's layout: ROOT/MNIST/raw/<the official IDX files>
        split: Literal["train", "test"] = Field("train", description="the official train or test split")

        def files(self) -> list[Path]:
            prefix = "train" if self.split == "train" else "t10k"
            raw = Path(self.root) / self.folder / "raw"
            return [raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"]

        def by_hand(self) -> str:
            return f"put the official {self.folder} files (unpacked) in {self.files()[0].parent}"

    def load(self) -> tuple[Tensor, Tensor]:
        # torchvision's IDX readers, called on the raw files: its dataset class would torch.load
        # (unpickle) a legacy processed/ file if one were there.
        from torchvision.datasets import mnist

        files = self.config.files()
        raw = files[0].parent
        for path in files:
            if not path.is_file():
                self.fetch(path)
        try:
            images, labels = mnist.read_image_file(str(files[0])), mnist.read_label_file(str(files[1]))
        except (AssertionError, RuntimeError, ValueError, OSError) as exc:
            raise ganzoo.UsageError(f"{raw} holds damaged {self.config.folder} files ({exc}); delete them to fetch them again") from None
        if len(images) != len(labels):
            raise ganzoo.UsageError(f"{raw}: {len(images)} images but {len(labels)} labels")
        return images.unsqueeze(1), labels

    def fetch(self, path: Path) -> None:
        """The official .gz of `path` from the mirror, its published md5 checked, unpacked."""
        packed = path.with_name(path.name + ".gz")
        md5 = dict(self.resources())[packed.name]
        ganzoo.download(self.mirror() + packed.name, packed, md5=md5, what=f"{self.config.folder} {packed.name}")
        part = path.with_name(path.name + ".part")
        try:
            with gzip.open(packed) as source, part.open("wb") as out:
                shutil.copyfileobj(source, out)
            part.replace(path)  # whole, or not there
        except (OSError, EOFError) as exc:
            raise ganzoo.UsageError(f"{packed} is not a readable gzip file ({exc})") from None
        finally:
            packed.unlink(missing_ok=True)
            part.unlink(missing_ok=True)

    def resources(self) -> list[tuple[str, str]]:
        from torchvision.datasets import MNIST as Official

        return Official.resources

    def mirror(self) -> str:
        from torchvision.datasets import MNIST as Official

        return Official.mirrors[0]


class FashionMNIST(MNIST):
    """Fashion-MNIST (Xiao et al. 2017): Zalando's 28x28 clothing images in MNIST's format, 10 classes."""

    class Config(MNIST.Config):
        folder: ClassVar[str] = "FashionMNIST"

    def resources(self) -> list[tuple[str, str]]:
        from torchvision.datasets import FashionMNIST as Official

        return Official.resources

    def mirror(self) -> str:
        # torchvision's mirror is plain http; the authors' repository serves the same files over https
        return "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/"

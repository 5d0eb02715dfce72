import json
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
from PIL import Image
from pydantic import Field, field_validator

import ganzoo


class TensorBoard(ganzoo.Logger):
    """TensorBoard event files in the run folder: scalars, pictures and the config as hparams."""

    class Config(ganzoo.Config):
        subdir: str = Field("tensorboard", min_length=1, description="folder inside the run folder for the event files")

        @field_validator("subdir")
        @classmethod
        def _inside_the_run(cls, value: str) -> str:
            if PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute() or ".." in Path(value).parts:
                raise ValueError("must be a folder inside the run folder (relative, without '..')")
            return value

    def __init__(self, config: Config | None = None) -> None:
        super().__init__(config)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ganzoo.UsageError("the tensorboard logger needs the tensorboard package: pip install 'ganzoo[tensorboard]'") from None
        self._writer_class = SummaryWriter
        self.writer = None

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        self.writer = self._writer_class(log_dir=str(Path(run_dir) / self.config.subdir))
        # hparams take numbers, strings and bools; plugin specs and lists go in as JSON text
        flat = {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v) for k, v in config.items()}
        self.writer.add_hparams(flat, {}, run_name=".")

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            if name != "step":
                self.writer.add_scalar(name, value, step)

    def log_picture(self, step: int, name: str, path: Path) -> None:
        with Image.open(path) as picture:
            self.writer.add_image(name, np.asarray(picture.convert("RGB")), step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

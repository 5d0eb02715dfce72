"""Schedules: a numeric setting that moves from a start value to an end value over a number of images.

Written in one line wherever a number goes, on the CLI and in a TOML or JSON config:
`SHAPE:START:END:OVER`, e.g. `cosine:0.05:0.005:20M` (R3GAN's gamma on CIFAR-10) or
`linear:2e-4:0:run` (what `--lr-decay linear` means). SHAPE is `cosine` (half a cosine, as R3GAN's
presets) or `linear`; OVER is a number of images (suffixes k, M, G) or `run`, the run's own
(steps x batch size); after OVER the value stays at END. A run has seen `step x batch size`
images at generator step `step`, so a value depends on the step alone and a resumed run
continues its schedules exactly.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_SCHEDULE = re.compile(r"^(cosine|linear):([^:]+):([^:]+):([^:]+)$")
_SUFFIX = {"k": 10**3, "M": 10**6, "G": 10**9}
SHAPES = ("cosine", "linear")
SYNTAX = "SHAPE:START:END:IMAGES, e.g. cosine:0.05:0.005:20M (SHAPE cosine or linear; IMAGES a number with k, M or G, or run)"


def looks_like_schedule(value: object) -> bool:
    """Whether `value` is meant as a schedule (text starting with a shape), valid or not."""
    return isinstance(value, str) and value.split(":", 1)[0] in SHAPES and ":" in value


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule; `over` None means the run's own number of images."""

    shape: str
    start: float
    end: float
    over: float | None

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """The schedule `text` spells; ValueError naming what is wrong and the syntax."""
        match = _SCHEDULE.match(text.strip())
        if not match:
            raise ValueError(f"'{text[:80]}' is not a schedule; write {SYNTAX}")
        shape, start, end, over = match.groups()
        try:
            values = float(start), float(end)
        except ValueError:
            raise ValueError(f"'{text[:80]}': start and end must be numbers; write {SYNTAX}") from None
        if not all(map(math.isfinite, values)):
            raise ValueError(f"'{text[:80]}': start and end must be finite numbers")
        return cls(shape, *values, None if over == "run" else _images(over, text))

    def __call__(self, images: float, run_images: float) -> float:
        """The value after `images` images of a run of `run_images`."""
        over = self.over if self.over is not None else run_images
        t = min(images / over, 1.0) if over > 0 else 1.0
        weight = (1 - math.cos(math.pi * t)) / 2 if self.shape == "cosine" else t
        return self.start + weight * (self.end - self.start)


def _images(text: str, whole: str) -> float:
    number, scale = (text[:-1], _SUFFIX[text[-1]]) if text[-1:] in _SUFFIX else (text, 1)
    try:
        images = float(number) * scale
    except ValueError:
        images = -1.0
    if not (math.isfinite(images) and images > 0):
        raise ValueError(f"'{whole[:80]}': IMAGES must be a positive number (suffix k, M or G) or run, got '{text[:40]}'")
    return images


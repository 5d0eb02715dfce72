"""A run's logger plugins behind one guard, so a metric sink can never cost a run its results.

A logger that fails to start stops the run before its first step, named in one line. One that
fails later is dropped with one warning and the run goes on; a failing `close` is a warning too,
so it never keeps the generator from being exported, a run from being resumed, or hides the
error that ended a run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .errors import TrainingError
from .interfaces import Logger


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class LoggerGroup:
    def __init__(self, loggers: dict[str, Logger]) -> None:
        self.loggers = dict(loggers)  # name -> logger, in the order given

    def start(self, run_dir: Path, config: dict[str, Any]) -> None:
        for name, logger in self.loggers.items():
            try:
                logger.start(run_dir, config)
            except Exception as exc:
                raise TrainingError(f"logger '{name}' failed to start: {_reason(exc)}") from exc

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self._each("log_metrics", step, metrics)

    def log_picture(self, step: int, name: str, path: Path) -> None:
        self._each("log_picture", step, name, path)

    def close(self) -> None:
        self._each("close")
        self.loggers.clear()

    def _each(self, method: str, *args: Any) -> None:
        for name, logger in list(self.loggers.items()):
            try:
                getattr(logger, method)(*args)
            except Exception as exc:
                del self.loggers[name]
                print(f"ganzoo: warning: logger '{name}' failed in {method} ({_reason(exc)}); "
                      "ganzoo goes on without it", file=sys.stderr)  # fmt: skip

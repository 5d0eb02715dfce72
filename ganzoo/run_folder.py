"""One run writes a run folder at a time: an OS lock on its `.ganzoo-lock` file.

The lock is `flock`'s, so it dies with its process: a run killed with SIGKILL leaves at most
an unlocked file behind, which the next run takes. The file holds the holder's process id, for
the message a second run gets, and goes when the run ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import ConfigError

LOCK_FILE = ".ganzoo-lock"


@contextlib.contextmanager
def held(run_dir: Path, create: bool) -> Iterator[None]:
    """Hold `run_dir` for this process, or raise ConfigError naming the process that holds it.

    `create`: make the folder if need be (a new run), and remove it again if the run left nothing
    in it. Without it a missing folder is left missing (resume says what is wrong with it).
    """
    created = create and not run_dir.exists()
    if created:
        run_dir.mkdir(parents=True)
    elif not run_dir.is_dir():
        yield
        return
    fd = _lock(run_dir)
    try:
        os.ftruncate(fd, 0)  # a killed run's file may name its process
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        # Removed while still held: a run that opened the file meanwhile finds it held, or gone
        # once it holds it (`_lock` checks), so the folder is left as the run's files alone.
        (run_dir / LOCK_FILE).unlink(missing_ok=True)
        if created and not any(run_dir.iterdir()):  # a run that wrote nothing leaves no folder
            run_dir.rmdir()
        os.close(fd)


def _lock(run_dir: Path) -> int:
    path = run_dir / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(
                f"{run_dir} is in use by another run (process {holder}); wait for it to end or choose another --out"
            ) from None
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:  # not removed by its last holder meanwhile
                return fd
        os.close(fd)

"""One run writes a run folder at a time: an OS lock on its `.ganzoo-lock` file.

The lock is `flock`'s, so it dies with its process: a run killed with SIGKILL leaves at most
an unlocked file behind, which the next run takes. The file holds the holder's process id, for
the message a second run gets, and goes when the run ends. Anything else in its place (a link,
a folder, a FIFO, a file with other names) is refused and left alone: the run writes its pid
into the lock, and through a link that would overwrite someone's file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
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
        if _same_file(run_dir / LOCK_FILE, fd):  # what took its place meanwhile is not ours to delete
            (run_dir / LOCK_FILE).unlink()
        if created and not any(run_dir.iterdir()):  # a run that wrote nothing leaves no folder
            run_dir.rmdir()
        os.close(fd)


def _lock(run_dir: Path) -> int:
    path = run_dir / LOCK_FILE
    while True:
        try:  # no link followed; O_NONBLOCK: opening a FIFO must not wait for a writer
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError:
            _refuse_odd(os.lstat(path), path)  # ELOOP for a link (dangling or not), EISDIR for a folder...
            raise  # a plain file that cannot be opened: the OS says why
        try:
            _refuse_odd(os.fstat(fd), path)  # a FIFO or a hard link opens
        except ConfigError:
            os.close(fd)
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(
                f"{run_dir} is in use by another run (process {holder}); wait for it to end or choose another --out"
            ) from None
        if _same_file(path, fd):  # not removed by its last holder meanwhile
            return fd
        os.close(fd)


def _same_file(path: Path, fd: int) -> bool:
    """Whether `path` (itself, not what it may link to) is the open file `fd`."""
    try:
        here, held = os.lstat(path), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)


def _refuse_odd(info: os.stat_result, path: Path) -> None:
    """A ConfigError unless `info` is of a plain file with one name: the only lock a run writes into."""
    if stat.S_ISREG(info.st_mode) and info.st_nlink <= 1:
        return
    kinds = {stat.S_ISLNK: "a symbolic link", stat.S_ISDIR: "a folder", stat.S_ISFIFO: "a FIFO",
             stat.S_ISREG: f"a file with {info.st_nlink - 1} other name(s)"}  # fmt: skip
    what = next((name for test, name in kinds.items() if test(info.st_mode)), "a special file")
    raise ConfigError(
        f"{path} is {what}, not a lock file of ganzoo's; remove it (a run writes its process id there) "
        "and start again, or choose another --out"
    )

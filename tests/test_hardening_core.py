"""Hostile surroundings of the core: odd files where a run writes, huge configs, slow servers,
empty metrics, odd labels, and a launcher that dies under its workers.

Each case must end in one readable line and a non-zero exit (or in correct behaviour), with
nothing of the user's touched.
"""

import contextlib
import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from test_hardening import FAST, one_error_line, snapshot

import ganzoo
from ganzoo import pictures, zoo
from ganzoo.cli import main
from ganzoo.errors import UsageError

NEW_RUN = ["train", "--loss", "wgan", *FAST, "--steps", "3", "--checkpoint-every", "3"]


class TookTooLong(Exception):
    """Not a TimeoutError: the code under test must not mistake the test's limit for its own."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Fail, rather than hang, when the block runs longer than `seconds` (main thread only)."""

    def expire(*_):
        raise TookTooLong(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def run(tmp_path):
    out = tmp_path / "run"
    assert main([*NEW_RUN, "--out", str(out)]) == 0
    return out


# -- 1. the run folder's lock is a regular file of ganzoo's, or the run is refused ----------------


def _outside_file(folder: Path, lock: Path) -> None:
    (folder.parent / "precious.txt").write_text("the user's own words")
    lock.symlink_to(folder.parent / "precious.txt")


LOCK_IMPOSTORS = {
    "symlink": _outside_file,
    "dangling-symlink": lambda folder, lock: lock.symlink_to(folder.parent / "nowhere.txt"),
    "fifo": lambda folder, lock: os.mkfifo(lock),
    "folder": lambda folder, lock: (lock / "inside").mkdir(parents=True),
    "hard-link": lambda folder, lock: (
        (folder.parent / "precious.txt").write_text("the user's own words"), os.link(folder.parent / "precious.txt", lock)
    ),
}


@pytest.mark.parametrize("resume", [False, True], ids=["new-run", "resume"])
@pytest.mark.parametrize("impostor", LOCK_IMPOSTORS)
def test_a_lock_file_that_is_not_a_plain_file_is_refused_and_left_alone(tmp_path, capsys, impostor, resume):
    folder = tmp_path / "run"
    if resume:
        assert main([*NEW_RUN, "--out", str(folder)]) == 0
    else:
        folder.mkdir()
    lock = folder / ".ganzoo-lock"
    LOCK_IMPOSTORS[impostor](folder, lock)
    before = {p: p.lstat() for p in tmp_path.rglob("*")}
    outside = snapshot(tmp_path)
    args = ["train", "--resume", str(folder), "--steps", "4"] if resume else [*NEW_RUN, "--out", str(folder)]
    with time_limit(60):  # a FIFO must not block the open
        assert main(args) == 2
    line = one_error_line(capsys)
    assert f"{lock} is " in line and "not a lock file of ganzoo's" in line and "remove it" in line, line
    assert {p: p.lstat() for p in tmp_path.rglob("*")}.keys() == before.keys()  # nothing created or removed
    assert snapshot(tmp_path) == outside  # nothing written, through the link or otherwise
    assert not (tmp_path / "nowhere.txt").exists()


def test_a_finished_run_removes_only_its_own_lock(run, tmp_path):
    """The lock goes with its run; a file put in its place meanwhile is not ganzoo's to delete."""
    from ganzoo import run_folder

    lock = run / ".ganzoo-lock"
    with run_folder.held(run, create=False):
        lock.unlink()
        lock.write_text("someone else's")
    assert lock.read_text() == "someone else's"


# -- 2. checkpoint rotation and resume see only ganzoo's own checkpoint names -----------------------


def test_rotation_and_resume_leave_the_users_files_in_the_checkpoints_folder(run):
    checkpoints = run / "checkpoints"
    mine = checkpoints / "step-0000003.safetensors"
    users = {name: mine.read_bytes() for name in ("step-best.safetensors", "step-0.safetensors", "step-000003.safetensors")}
    users["notes.txt"] = b"lr 5e-5 looked best"
    for name, data in users.items():
        (checkpoints / name).write_bytes(data)
    assert ganzoo.train({"steps": 7, "checkpoint_every": 1, "keep_checkpoints": 2}, resume=run, quiet=True).step == 7
    assert {p.name: p.read_bytes() for p in checkpoints.iterdir() if p.name in users} == users
    assert sorted(p.name for p in checkpoints.iterdir() if p.name not in users) == [
        "step-0000006.safetensors", "step-0000007.safetensors"
    ]  # fmt: skip


# -- 3. a config with thousands of unknown keys is still one short line ---------------------------


MANY_KEYS = {
    "settings": lambda keys: f'loss = "wgan"\n{keys}\n',
    "plugin-options": lambda keys: f'[loss]\nname = "wgan"\n[loss.options]\n{keys}\n',
    "plugin-spec": lambda keys: f'[loss]\nname = "wgan"\n{keys}\n',
}


@pytest.mark.parametrize("suffix", [".toml", ".json"])
@pytest.mark.parametrize("where", MANY_KEYS)
def test_thousands_of_unknown_keys_give_a_short_line_soon(tmp_path, capsys, where, suffix):
    text = MANY_KEYS[where]("\n".join(f"unknown_{i} = 1" for i in range(50_000)))
    config = tmp_path / f"many{suffix}"
    config.write_text(json.dumps(ganzoo.config.tomllib.loads(text)) if suffix == ".json" else text)
    with time_limit(60):  # the line, and the check for keys given twice, once took minutes
        assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    line = one_error_line(capsys)
    assert len(line) < 2000, f"{len(line):,} characters"
    assert "unknown_0" in line and "and 49,99" in line and "more" in line, line
    assert not (tmp_path / "run").exists()


# -- 4. GANZOO_DOWNLOAD_TIMEOUT covers the connection and the wait for headers --------------------


class _SlowHeaders(BaseHTTPRequestHandler):
    """/silent waits (up to server.wait_s, or until the test ends) before it sends its headers;
    /trickle sends a header a byte every 0.1 s meanwhile, so no read waits long."""

    def do_GET(self) -> None:
        with contextlib.suppress(OSError):  # the client gave up, as it should
            if self.path == "/trickle":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                for _ in range(int(self.server.wait_s * 10)):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    if self.server.done.wait(0.1):
                        return
                self.wfile.write(b"\r\n")
            else:
                self.server.done.wait(self.server.wait_s)
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"late")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def silent_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHeaders)  # port 0: a free one, chosen by the OS
    httpd.daemon_threads, httpd.done, httpd.wait_s = True, threading.Event(), 20
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.done.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


@pytest.mark.parametrize("path", ["/silent", "/trickle"])
def test_the_download_timeout_covers_the_wait_for_headers(tmp_path, silent_server, monkeypatch, path):
    monkeypatch.delenv("GANZOO_OFFLINE", raising=False)
    monkeypatch.setenv("GANZOO_DOWNLOAD_TIMEOUT", "1")
    url = f"http://127.0.0.1:{silent_server.server_port}{path}"
    started = time.monotonic()
    with time_limit(15), pytest.raises(zoo.DownloadError, match=r"not finished after 1 s.*GANZOO_DOWNLOAD_TIMEOUT"):
        zoo.download(url, tmp_path / "w.safetensors", sha256="0" * 64, quiet=True)
    assert time.monotonic() - started < 5
    assert not list(tmp_path.iterdir())


# -- 5. plot: nothing to draw is one line; one record is drawn as points --------------------------


def test_plot_of_records_without_numbers_says_there_is_nothing_to_draw(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}\n')
    assert main(["plot", str(tmp_path / "run"), "--out", str(tmp_path / "curves.png")]) == 2
    assert "nothing to draw" in one_error_line(capsys)
    assert not (tmp_path / "curves.png").exists()


def test_plot_of_a_one_record_run_draws_its_points(tmp_path, monkeypatch, recwarn):
    (tmp_path / "run").mkdir()
    record = {"step": 1, "critic_loss": 1.3, "generator_loss": 0.7, "grad_norm_critic": 0.2, "grad_norm_generator": 0.1}
    (tmp_path / "run" / "metrics.jsonl").write_text(json.dumps(record) + "\n")
    drawn = []
    save_figure = pictures.save_figure
    monkeypatch.setattr(pictures, "save_figure", lambda fig, path: (drawn.extend(fig.axes), save_figure(fig, path))[1])
    assert main(["plot", str(tmp_path / "run"), "--out", str(tmp_path / "curves.png")]) == 0
    lines = [line for ax in drawn for line in ax.lines]
    assert len(lines) == 4
    assert all(line.get_marker() not in (None, "", "None") for line in lines)  # one point: a marker, not a line
    assert not [w for w in recwarn if "artists" in str(w.message)]


# -- 6. labels given to a generator are class indices, or one clear error ------------------------


@pytest.fixture(scope="module")
def conditional():
    return ganzoo.create_generator("mlp", sample_shape=[2], latent_dim=4, classes=3, width=8, depth=1)


@pytest.mark.parametrize(
    ("labels", "needle"),
    [
        ([True, False], "got a bool"),
        (torch.tensor([True, False]), "got a tensor of torch.bool"),
        (["a", "b"], "got a str"),
        ("ab", "got a str"),
        ([1.0, 2.0], "got a float"),
        ([None, 1], "got a NoneType"),
        ([5, 0], "got 5"),
        ([2**70, 0], "got 1180591620717411303424"),
        (torch.tensor([0, 2**40]), "got 1099511627776"),
        ((i for i in range(2)), "got a generator"),
        ([[1], [2]], "got a list"),
        ([1], "got 1 labels"),
    ],
    ids=["bools", "bool-tensor", "strings", "a-string", "floats", "none", "beyond-classes", "beyond-int64",
         "beyond-classes-tensor", "generator-expression", "nested", "too-few"],
)  # fmt: skip
@pytest.mark.parametrize("use", ["sample", "interpolate"])
def test_bad_labels_are_one_clear_error(conditional, labels, needle, use):
    with pytest.raises(UsageError) as caught:
        if use == "sample":
            conditional.sample(2, labels=labels)
        else:  # two paths, one class each
            ganzoo.interpolate(conditional, steps=3, rows=2, labels=labels)
    message = str(caught.value)
    assert needle in message and "labels must be 2 class indices in 0..2" in message, message
    assert "\n" not in message and len(message) < 300


@pytest.mark.parametrize("n", [-1, 2.5, True, "2"])
def test_a_bad_number_of_samples_is_one_clear_error(conditional, n):
    with pytest.raises(UsageError, match=r"the number of samples must be a whole number from 0; got"):
        conditional.sample(n)


def test_zero_samples_are_an_empty_batch_of_the_right_shape(conditional):
    assert conditional.sample(0, labels=[]).shape == (0, 2)
    assert conditional.sample(0, labels=torch.empty(0, dtype=torch.long)).shape == (0, 2)
    assert conditional.sample(0).shape == (0, 2)
    assert conditional.sample(2, labels=range(2)).shape == (2, 2)  # any sequence of whole numbers


# -- 7. a launcher killed under its workers: one line, and a checkpoint at the step they stopped --


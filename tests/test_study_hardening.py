"""Round 5 of hardening, studies: a space is checked whole before anything is queued, no trial is
lost or run twice, and a study writes inside its folder only. Each test reproduces a case found by
trying `ganzoo study` as a hostile user would."""

import contextlib
import json
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from ganzoo import study
from ganzoo.cli import main
from test_study import report_trials, space_file

optuna = pytest.importorskip("optuna")


@contextlib.contextmanager
def running(processes):
    """The processes started, and on the way out joined (killed after 60 s): none is left behind."""
    for process in processes:
        process.start()
    try:
        yield
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
                process.join()


def one_line(capsys) -> str:
    (line,) = capsys.readouterr().err.strip().splitlines()
    return line


def create_fails(tmp_path: Path, capsys, text: str) -> str:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["study", "create", str(tmp_path / "s"), "--space", str(path)]) == 2
    assert not (tmp_path / "s").exists()  # nothing written
    return one_line(capsys)


def replaced(tmp_path: Path, old: str, new: str, **options) -> str:
    text = space_file(tmp_path, **options).read_text()
    assert old in text
    return text.replace(old, new)


LR = "space.lr = {low = 1e-4, high = 3e-3, log = true}"


# -- 1. the metric ----------------------------------------------------------------------------------


def test_a_metric_the_data_does_not_have_is_refused_at_create(tmp_path, capsys):
    line = create_fails(tmp_path, capsys, replaced(tmp_path, 'metric = "high_quality"', 'metric = "bogus"'))
    assert "metric 'bogus' is not among ring8's figures: modes, modes_total, high_quality, kl, w1" in line
    line = create_fails(tmp_path, capsys, replaced(tmp_path, 'metric = "high_quality"', f'metric = "{"x" * 10_000_000}"'))
    assert "metric" in line and len(line) < 400
    line = create_fails(tmp_path, capsys, replaced(tmp_path, 'metric = "high_quality"', 'metric = "fid"'))
    assert "metric 'fid' is an image metric, and ring8 is not image data" in line


# -- 2. ranges, checked as Optuna takes them, and queued all or nothing -----------------------------


@pytest.mark.parametrize("dimension, said", [
    ("{low = 1e-5, high = 3e-3, step = 0}", "step"),
    ("{low = 1e-5, high = 3e-3, step = -1e-4}", "step"),
    ("{low = 1e-5, high = 3e-3, log = true, step = 1e-4}", "step"),
    ("{low = 1e-5, high = 3e-3, step = 7e-4}", "range"),  # Optuna would cut high short, with a warning
    ("{low = 3e-3, high = 1e-5}", "below high"),
    ("{low = 1e-5, high = inf}", "finite"),
    ('{low = "1e-5", high = 3e-3}', "low"),  # a string is not a number
    ("{low = 1e-5, high = 3e-3, log = 1}", "log"),
    ("{choices = []}", "choices"),
    ("{choices = [{a = 1}]}", "choices"),
])  # fmt: skip
def test_a_bad_range_is_refused_at_create(tmp_path, capsys, dimension, said):
    line = create_fails(tmp_path, capsys, replaced(tmp_path, LR, f"space.lr = {dimension}"))
    assert "space" in line and "lr" in line and said in line


def test_an_empty_choice_is_not_blamed_on_a_missing_low(tmp_path, capsys):
    line = create_fails(tmp_path, capsys, replaced(tmp_path, LR, "space.lr = {choices = []}"))
    assert "choices" in line and "low" not in line


def test_queuing_is_all_or_nothing(tmp_path):
    """A space whose second objective cannot be sampled queues nothing, not the first objective alone."""
    folder = tmp_path / "study"
    study.create(folder, space_file(tmp_path, objectives=("least-squares", "nonsaturating"), trials=2))
    text = (folder / "space.toml").read_text()
    (folder / "space.toml").write_text(text.replace(LR, "space.lr = {low = 1e-5, high = 3e-3, step = 0}", 1))
    with pytest.raises(study.UsageError, match="step"):
        study.run(folder)
    storage = study.open_storage(study.storage_url(folder, None), study.load(folder)[0])
    assert optuna.get_all_study_summaries(storage) == []


# -- 3. whole numbers ---------------------------------------------------------------------------------


def test_integer_settings_are_searched_as_integers(tmp_path):
    text = space_file(tmp_path, trials=3, steps=2).read_text().replace(
        LR, "space.n_critic = {low = 1, high = 3}\nspace.batch_size = {low = 8, high = 32, log = true}\n"
            'space."critic.width" = {low = 8, high = 16}\nspace."loss.sigma" = {low = 0, high = 1}',
    ).replace('loss = "nonsaturating"', 'loss = "instance-noise"')  # fmt: skip
    (tmp_path / "int.toml").write_text(text.replace("log_every = 20", "log_every = 1"))
    folder = tmp_path / "study"
    study.create(folder, tmp_path / "int.toml")
    study.run(folder, quiet=True)
    searches = report_trials(folder)[1]["nonsaturating"]
    assert [t.state.name for t in searches] == ["COMPLETE"] * 3
    for t in searches:
        assert all(isinstance(t.params[k], int) for k in ("n_critic", "batch_size", "critic.width"))
        assert isinstance(t.params["loss.sigma"], float)  # a float setting with whole bounds stays a float range
    line_text = text.replace("{low = 1, high = 3}", "{low = 1, high = 2.5}")
    (tmp_path / "half.toml").write_text(line_text)
    with pytest.raises(study.UsageError, match="n_critic.*whole numbers; 2.5 is not one"):
        study.create(tmp_path / "half", tmp_path / "half.toml")


def test_a_searched_option_joins_options_written_as_text(tmp_path):
    """constraints = ["r1:every=2"] with its gamma searched: the text's options keep their meaning."""
    text = replaced(tmp_path, LR, 'constraints = ["r1:every=2"]\nspace."constraints.0.gamma" = {low = 0.5, high = 2}',
                    trials=1, steps=2)  # fmt: skip
    (tmp_path / "r1.toml").write_text(text)
    folder = tmp_path / "study"
    study.create(folder, tmp_path / "r1.toml")
    study.run(folder, quiet=True)
    (trial,) = report_trials(folder)[1]["nonsaturating"]
    assert trial.state.name == "COMPLETE"
    (config,) = (folder / "trials").glob("*/config.json")
    (constraint,) = json.loads(config.read_text())["constraints"]
    assert constraint["name"] == "r1" and constraint["options"]["every"] == 2
    assert constraint["options"]["gamma"] == pytest.approx(trial.params["constraints.0.gamma"])


# -- 4. settings the study owns -----------------------------------------------------------------------


@pytest.mark.parametrize("line", [
    'space.out = {choices = ["/tmp/elsewhere"]}', "space.seed = {choices = [7]}", "space.steps = {low = 10, high = 20}",
    'space.resume = {choices = ["x"]}', "space.threads = {choices = [2]}", "settings = {seed = 7}",
])  # fmt: skip
def test_settings_the_study_owns_are_refused(tmp_path, capsys, line):
    text = replaced(tmp_path, LR, LR + "\n" + line)
    assert "is the study's" in create_fails(tmp_path, capsys, text)


def test_the_shared_settings_cannot_set_what_the_study_owns(tmp_path, capsys):
    text = replaced(tmp_path, "settings = {batch_size = 32,", "settings = {out = '/tmp/x', batch_size = 32,")
    assert "setting 'out' is the study's" in create_fails(tmp_path, capsys, text)


# -- 5 and 6. the storage --------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://", "sqlite:///file:x?mode=memory&uri=true"])
def test_an_in_memory_storage_is_refused(tmp_path, capsys, url):
    folder = tmp_path / "study"
    study.create(folder, space_file(tmp_path, trials=1, steps=20))
    assert main(["study", "run", str(folder), "--storage", url]) == 2
    assert "in-memory database" in one_line(capsys)
    assert not (folder / "trials").exists()


def test_the_folder_remembers_its_storage_and_a_report_never_goes_empty(tmp_path, capsys):
    folder = tmp_path / "study"
    study.create(folder, space_file(tmp_path, trials=1, steps=20, seeds="[0]"))
    elsewhere = tmp_path / "elsewhere.db"
    assert main(["study", "run", str(folder), "--storage", f"sqlite:///{elsewhere}", "--quiet"]) == 0
    assert main(["study", "report", str(folder)]) == 0  # no --storage: the folder knows
    table = (folder / "report" / "report.md").read_text()
    assert "| 1 / 0 / 0 |" in table and not (folder / "study.db").exists()
    capsys.readouterr()
    # a folder that forgot (an older one, or its note removed): the report refuses, the real one stays
    (folder / study.STORAGE).unlink()
    assert main(["study", "report", str(folder)]) == 2
    assert "holds no trial of this study" in one_line(capsys)
    assert (folder / "report" / "report.md").read_text() == table and not (folder / "study.db").exists()


def test_a_remembered_url_with_a_password_is_asked_for_again(tmp_path, capsys):
    folder = tmp_path / "study"
    study.create(folder, space_file(tmp_path, trials=1, steps=20))
    (folder / study.STORAGE).write_text("postgresql+psycopg://ganzoo:***@127.0.0.1:1/studies\n")
    assert main(["study", "report", str(folder)]) == 2
    assert "pass --storage with its password" in one_line(capsys)


# -- 7. size --------------------------------------------------------------------------------------


def test_a_huge_space_file_is_refused_at_once(tmp_path, capsys):
    path = space_file(tmp_path)
    many = "".join(f'[objectives.o{i}]\nloss = "nonsaturating"\n{LR}\n' for i in range(330_000))
    path.write_text(path.read_text() + many)
    assert path.stat().st_size > study.MAX_SPACE_BYTES
    started = time.monotonic()
    line = create_fails(tmp_path, capsys, path.read_text())
    assert f"holds more than {study.MAX_SPACE_BYTES:,} bytes" in line and time.monotonic() - started < 5
    line = create_fails(tmp_path, capsys, space_file(tmp_path).read_text() + many[: many.index("[objectives.o10000]")])
    assert f"at most {study.MAX_OBJECTIVES}" in line


@pytest.mark.parametrize("name", ["/dev/zero", "fifo", "latin1"])
def test_a_space_file_that_is_no_text_file_is_one_line(tmp_path, capsys, name):
    path = tmp_path / name
    if name == "fifo":
        os.mkfifo(path)
    elif name == "latin1":
        path.write_bytes(space_file(tmp_path).read_bytes().replace(b"ring8", b"ring8\xe9"))
    else:
        path = Path(name)
    assert main(["study", "create", str(tmp_path / "s"), "--space", str(path)]) == 2
    assert ("not a regular file" if name != "latin1" else "not UTF-8 text (byte") in one_line(capsys)


def test_seeds_and_objective_names_fail_at_create_not_at_run_time(tmp_path, capsys):
    assert "seeds" in create_fails(tmp_path, capsys, replaced(tmp_path, "seeds = [0, 1]", f"seeds = [{2**32}]"))
    assert "seeds" in create_fails(tmp_path, capsys, replaced(tmp_path, "seeds = [0, 1]", "seeds = [1, 1]"))
    long = "o" * 300
    line = create_fails(tmp_path, capsys, replaced(tmp_path, "[objectives.nonsaturating]", f"[objectives.{long}]"))
    assert "1 to 64 letters" in line and len(line) < 300


def test_an_empty_space_with_several_trials_is_refused(tmp_path, capsys):
    line = create_fails(tmp_path, capsys, replaced(tmp_path, LR, "", trials=3))
    assert "has no space, so its 3 trials would be the same run" in line


# -- 8. no trial lost or run twice ----------------------------------------------------------------


def claim(url: str, space_path: str, barrier, claims) -> None:
    space = study.read_space(Path(space_path))
    search = optuna.load_study(study_name="nonsaturating", storage=study.open_storage(url, space))
    barrier.wait()
    claims.put([search.ask().number for _ in range(8)])


def test_workers_asking_at_the_same_moment_never_claim_one_trial_twice(tmp_path):
    """Four processes ask for queued trials at once: with pysqlite's late BEGIN two of them read one
    queued trial and both claimed it (reproduced: 36 distinct of 40); each claim is now one step."""
    path = space_file(tmp_path, trials=32, steps=20)
    url = f"sqlite:///{tmp_path / 'claims.db'}"
    space = study.read_space(path)
    study.ensure_studies(space, study.space_digest(path), study.open_storage(url, space))
    context = multiprocessing.get_context("spawn")
    barrier, claims = context.Barrier(4), context.Queue()
    workers = [context.Process(target=claim, args=(url, str(path), barrier, claims)) for _ in range(4)]
    with running(workers):
        numbers = [n for _ in workers for n in claims.get(timeout=120)]
    assert sorted(numbers) == list(range(32))


def test_a_folder_held_by_a_live_worker_is_not_a_failure(tmp_path):
    """The trial's folder is locked by another live process: the worker waits for it, then resumes it,
    instead of failing the trial (which dropped the other worker's finished result)."""
    from ganzoo.run_folder import held

    folder = tmp_path / "study"
    study.create(folder, space_file(tmp_path, trials=1, steps=20, seeds="[0]"))
    release, holding = threading.Event(), threading.Event()

    def hold() -> None:
        with held(folder / "trials" / "nonsaturating-000", create=True):
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(30)
    threading.Timer(3, release.set).start()
    try:
        study.run(folder, quiet=True)
    finally:
        release.set()
        holder.join()
    searches = report_trials(folder)[1]["nonsaturating"]
    assert [t.state.name for t in searches] == ["COMPLETE"]


def open_at_once(url: str, space_path: str, barrier, errors) -> None:
    barrier.wait()
    try:
        study.open_storage(url, study.read_space(Path(space_path)))
        errors.put("")
    except study.UsageError as exc:
        errors.put(str(exc))


def test_two_runs_starting_at_once_both_open_a_new_storage(tmp_path):
    """Optuna makes a new database's tables as it opens it: two workers at once raced to 'table
    studies already exists'."""
    path = space_file(tmp_path, trials=1, steps=20)
    context = multiprocessing.get_context("spawn")
    for attempt in range(3):
        url = f"sqlite:///{tmp_path / f'new{attempt}.db'}"
        barrier, errors = context.Barrier(3), context.Queue()
        workers = [context.Process(target=open_at_once, args=(url, str(path), barrier, errors)) for _ in range(3)]
        with running(workers):
            assert [errors.get(timeout=120) for _ in workers] == [""] * 3


# -- weak: raw library text -------------------------------------------------------------------------


def test_a_report_folder_that_is_a_file_is_one_line(tmp_path, capsys):
    folder = tmp_path / "study"
    study.create(folder, space_file(tmp_path, trials=1, steps=20))
    (folder / "report").write_text("mine")
    assert main(["study", "report", str(folder)]) == 2
    assert "report is not a folder" in one_line(capsys) and (folder / "report").read_text() == "mine"


def test_a_storage_of_another_optuna_schema_is_one_line(tmp_path, capsys):
    import sqlite3

    folder = tmp_path / "study"
    study.create(folder, space_file(tmp_path, trials=1, steps=20))
    study.open_storage(study.storage_url(folder, None), study.load(folder)[0])
    with sqlite3.connect(folder / "study.db") as db:
        db.execute("UPDATE alembic_version SET version_num = 'v0.9.0.a'")
    assert main(["study", "run", str(folder)]) == 2
    assert "cannot open the study storage" in one_line(capsys)


# -- weak: limits ---------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_to_a_study_run_stops_its_workers_too(tmp_path):
    """SIGTERM to `study run --workers 2` alone left its two workers training as orphans."""
    import signal
    import subprocess
    import sys

    from test_study import LIMIT_S, environment

    folder = tmp_path / "study"
    study.create(folder, space_file(tmp_path, steps=2000, trials=2, seeds="[0]"))
    parent = subprocess.Popen([sys.executable, "-m", "ganzoo", "study", "run", str(folder), "--workers", "2"],
                              env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + LIMIT_S
        while len(list((folder / "trials").glob("*/checkpoints/step-*.safetensors"))) < 2 or len(children(parent.pid)) < 2:
            assert parent.poll() is None and time.monotonic() < deadline, "the workers never reached a checkpoint"
            time.sleep(0.2)
        workers = children(parent.pid)
        os.kill(parent.pid, signal.SIGTERM)  # the parent alone, as a scheduler or `kill PID` does
        _, err = parent.communicate(timeout=LIMIT_S)
        deadline = time.monotonic() + 60
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(alive(pid) for pid in workers)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
    assert parent.returncode == 130 and "stopped by SIGTERM" in err
    searches = report_trials(folder)[1]["nonsaturating"]
    assert "RUNNING" not in [t.state.name for t in searches]  # each queued again, to be resumed

"""Studies through Optuna, for real: SQLite with two workers at once, a worker killed with SIGKILL
mid-trial, pruning, the report recomputed from the trials, and PostgreSQL on a server this test
starts on 127.0.0.1 (skipped where no server can be started)."""

import contextlib
import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import ganzoo
from ganzoo import study
from ganzoo.cli import main

optuna = pytest.importorskip("optuna")
LIMIT_S = 240

SPACE = """
data = "ring8"
generator = "mlp:width=16,depth=1"
critic = "mlp:width=16"
steps = {steps}
trials = {trials}
seeds = {seeds}
metric = "{metric}"
direction = "{direction}"
heartbeat = 1
grace = 15
{extra}
settings = {{batch_size = 32, log_every = 20, sample_every = 100000}}
"""
OBJECTIVES = {
    "nonsaturating": '[objectives.nonsaturating]\nloss = "nonsaturating"\nspace.lr = {low = 1e-4, high = 3e-3, log = true}\n',
    "least-squares": '[objectives.least-squares]\nloss = "least-squares"\nspace.lr = {low = 1e-4, high = 3e-3, log = true}\n'
                     'space.betas = {choices = [[0.5, 0.999], [0.0, 0.9]]}\n',
}


def space_file(tmp_path: Path, steps: int = 40, trials: int = 2, extra: str = "", objectives=("nonsaturating",),
               seeds="[0, 1]", metric="high_quality", direction="maximize") -> Path:  # fmt: skip
    path = tmp_path / "space.toml"
    text = SPACE.format(steps=steps, trials=trials, extra=extra, seeds=seeds, metric=metric, direction=direction)
    path.write_text(text + "\n".join(OBJECTIVES[o] for o in objectives))
    return path


def environment() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("GANZOO_DEBUG", None)
    return env


def report_trials(folder: Path, url: str | None = None):
    from ganzoo.study_report import trials_by_objective

    return trials_by_objective(folder, url)


def states(found: list) -> list[str]:
    return sorted(t.state.name for t in found)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A study of two objectives, two trials each, run by two workers at once."""
    root = tmp_path_factory.mktemp("study")
    folder = root / "study"
    assert main(["study", "create", str(folder), "--space", str(space_file(root, objectives=tuple(OBJECTIVES)))]) == 0
    assert main(["study", "run", str(folder), "--workers", "2"]) == 0
    return root, folder


def test_two_workers_run_every_trial_once_then_the_final_reruns(finished):
    root, folder = finished
    space, searches, finals = report_trials(folder)
    for name in space.objectives:
        assert states(searches[name]) == ["COMPLETE"] * 2
        assert sorted(t.user_attrs["ganzoo_seed"] for t in finals[name]) == [0, 1] and states(finals[name]) == ["COMPLETE"] * 2
    runs = sorted(p.name for p in (folder / "trials").iterdir())
    assert runs == [f"{o}-{i:03d}" for o in ("least-squares", "nonsaturating") for i in range(2)]
    assert all((folder / "trials" / r / "generator.safetensors").is_file() for r in runs)  # ordinary runs
    assert sorted(p.name for p in (folder / "finals").iterdir()) == [f"{o}-seed{s}" for o in ("least-squares", "nonsaturating") for s in (0, 1)]
    # random search was sampled from the space's seed when the storage met the space: any workers, one study
    params = sorted(t.params["lr"] for t in searches["nonsaturating"])
    again = root / "again"
    study.create(again, folder / "space.toml")
    study.ensure_studies(*study.load(again), study.open_storage(study.storage_url(again, None), study.load(again)[0]))
    queued = report_trials(again)[1]["nonsaturating"]  # waiting, with the parameters they were queued with
    assert sorted(t.system_attrs["fixed_params"]["lr"] for t in queued) == params


def test_the_report_is_recomputed_from_the_trials(finished):
    _, folder = finished
    assert main(["study", "report", str(folder)]) == 0
    with (folder / "report" / "trials.csv").open() as file:
        records = list(csv.DictReader(file))
    assert len(records) == 2 * (2 + 2)  # two objectives: two trials and two final re-runs each
    table = (folder / "report" / "report.md").read_text()
    for name in ("nonsaturating", "least-squares"):
        mine = [r for r in records if r["objective"] == name and r["kind"] == "search"]
        scored = [ganzoo.evaluate(ganzoo.load_generator(folder / r["run"] / "generator.safetensors"), "ring8")["high_quality"]
                  for r in mine]  # fmt: skip
        assert sorted(float(r["value"]) for r in mine) == pytest.approx(sorted(scored))
        row = next(line for line in table.splitlines() if line.startswith(f"| `{name}` |"))
        assert row.startswith(f"| `{name}` | {max(scored):.4g} |") and "| 2 / 0 / 0 |" in row
        finals = [float(r["value"]) for r in records if r["objective"] == name and r["kind"] == "final"]
        assert f"{sum(finals) / 2:.4g}" in row
    assert (folder / "report" / "best-vs-trials.png").stat().st_size > 5000


def test_a_worker_killed_mid_trial_loses_nothing(tmp_path):
    """SIGKILL: its trial stops sending heartbeats; the next worker fails it after the grace period,
    Optuna queues it again, and the worker resumes its run folder from the newest checkpoint."""
    folder = tmp_path / "study"
    study.create(folder, space_file(tmp_path, steps=400, trials=2, seeds="[0]"))
    worker = subprocess.Popen([sys.executable, "-m", "ganzoo", "study", "run", str(folder)], env=environment(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + LIMIT_S
        while not list((folder / "trials").glob("*/checkpoints/step-*.safetensors")):
            assert worker.poll() is None and time.monotonic() < deadline, "the worker never reached a checkpoint"
            time.sleep(0.2)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        (killed,) = [p.parent.parent for p in (folder / "trials").glob("*/checkpoints/step-*.safetensors")][:1]
        study.run(folder, quiet=True)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    space, searches, finals = report_trials(folder)
    done = [t for t in searches["nonsaturating"] if t.state.name == "COMPLETE"]
    assert len(done) == 2 and len({t.user_attrs["run"] for t in done}) == 2  # each trial once
    failed = [t for t in searches["nonsaturating"] if t.state.name == "FAIL"]
    assert len(failed) == 1 and failed[0].user_attrs["run"] == f"trials/{killed.name}"
    records = [line for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 400 // 20  # resumed: one record per logged step, none twice


def test_a_worker_declared_dead_while_alive_goes_on_and_its_run_is_reused(tmp_path, capsys, monkeypatch):
    """Heartbeats late past the grace period (a loaded machine): another worker fails the trial and
    queues it again while its worker still trains; that worker says so and goes on, and the retry
    finds the finished run folder."""
    folder = tmp_path / "study"
    study.create(folder, space_file(tmp_path, steps=40, trials=1, seeds="[0]"))
    measure = study.measure
    taken_over = []

    def measure_after_a_takeover(space, generator_path):
        if not taken_over:  # as the other worker's fail_stale_trials and its retry callback would
            search = optuna.load_study(study_name="nonsaturating", storage=study.storage_url(folder, None))
            (trial,) = search.get_trials(deepcopy=False)
            search.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)(search, search.get_trials(deepcopy=False)[0])
            taken_over.append(trial.number)
        return measure(space, generator_path)

    monkeypatch.setattr(study, "measure", measure_after_a_takeover)
    study.run(folder, quiet=True)
    assert "nonsaturating-000 was taken over after missed heartbeats" in capsys.readouterr().err
    searches = report_trials(folder)[1]["nonsaturating"]
    assert [t.state.name for t in searches] == ["FAIL", "COMPLETE"]
    assert searches[1].user_attrs["run"] == "trials/nonsaturating-000"  # the retry reused the run folder
    assert len((folder / "trials" / "nonsaturating-000" / "metrics.jsonl").read_text().splitlines()) == 40 // 20


def test_ctrl_c_stops_a_worker_with_its_trial_resumable(tmp_path):
    folder = tmp_path / "study"
    study.create(folder, space_file(tmp_path, steps=400, trials=1, seeds="[0]"))
    worker = subprocess.Popen([sys.executable, "-m", "ganzoo", "study", "run", str(folder)], env=environment(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + LIMIT_S
        while not list((folder / "trials").glob("*/checkpoints/step-*.safetensors")):
            assert worker.poll() is None and time.monotonic() < deadline, "the worker never reached a checkpoint"
            time.sleep(0.2)
        os.killpg(worker.pid, signal.SIGINT)
        _, err = worker.communicate(timeout=LIMIT_S)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
    assert worker.returncode == ganzoo.Interrupted.exit_code and "interrupted at step" in err
    (trial,) = report_trials(folder)[1]["nonsaturating"][:1]
    assert trial.state.name == "FAIL"
    stopped = study.trial_steps(folder / "trials" / "nonsaturating-000")
    study.run(folder, quiet=True)  # the queued retry resumes the run folder from its checkpoint
    searches = report_trials(folder)[1]["nonsaturating"]
    assert [t.state.name for t in searches] == ["FAIL", "COMPLETE"] and 0 < stopped < 400
    assert len((folder / "trials" / "nonsaturating-000" / "metrics.jsonl").read_text().splitlines()) == 400 // 20


def test_pruning_stops_bad_trials_early_and_counts_them_apart(tmp_path):
    """One Gaussian at (3, 0): a generator that learns nears it at every evaluation, one at a learning
    rate of 1e-9 stays put, and the median pruner stops it once a learning trial is in."""
    extra = 'eval_every = 20\npruner = "median"\npruner_startup = 1'
    path = space_file(tmp_path, steps=60, trials=4, extra=extra, seeds="[0]", metric="w1", direction="minimize")
    text = path.read_text().replace("space.lr = {low = 1e-4, high = 3e-3, log = true}", "space.lr = {choices = [3e-3, 1e-9]}")
    path.write_text(text.replace('data = "ring8"', 'data = "ring8:modes=1,radius=3,std=0.1"'))
    folder = tmp_path / "study"
    study.create(folder, path)
    study.run(folder, quiet=True)
    space, searches, finals = report_trials(folder)
    pruned = [t for t in searches["nonsaturating"] if t.state.name == "PRUNED"]
    assert pruned and all(t.params["lr"] == 1e-9 for t in pruned)
    assert all(study.trial_steps(folder / t.user_attrs["run"]) < 60 and t.intermediate_values for t in pruned)
    from ganzoo.study_report import rows

    (row,) = rows(space, searches, finals)
    assert row.pruned == len(pruned) and row.done + row.pruned == 4


def test_a_space_file_that_does_not_match_its_storage_is_one_line(tmp_path, capsys):
    folder = tmp_path / "study"
    study.create(folder, space_file(tmp_path, trials=1, steps=20))
    storage = f"sqlite:///{tmp_path / 'shared.db'}"  # the storage meets the first space
    study.ensure_studies(*study.load(folder), study.open_storage(storage, study.load(folder)[0]))
    other = tmp_path / "other"
    study.create(other, space_file(tmp_path, trials=2, steps=20))
    assert main(["study", "run", str(other), "--storage", storage]) == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert "holds study 'nonsaturating' of another space file than this folder's space.toml" in err


def test_bad_space_files_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(space_file(tmp_path).read_text().replace('direction = "maximize"', 'direction = "up"'))
    assert main(["study", "create", str(tmp_path / "s"), "--space", str(bad)]) == 2
    assert "direction" in capsys.readouterr().err and not (tmp_path / "s").exists()
    bad.write_text(space_file(tmp_path).read_text().replace("space.lr =", 'space."constraints.3.weight" ='))
    assert main(["study", "create", str(tmp_path / "s"), "--space", str(bad)]) == 2
    assert "constraints.N.OPTION names the Nth constraint" in capsys.readouterr().err


def test_an_unreachable_database_is_one_line_without_its_password(tmp_path, capsys):
    folder = tmp_path / "study"
    study.create(folder, space_file(tmp_path, trials=1, steps=20))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there
    pytest.importorskip("psycopg")
    assert main(["study", "run", str(folder), "--storage", f"postgresql+psycopg://ganzoo:s3cret@127.0.0.1:{port}/nope"]) == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert f"cannot open the study storage postgresql+psycopg://ganzoo:***@127.0.0.1:{port}/nope" in err
    assert "s3cret" not in err


# -- PostgreSQL, on a server of the test's own ---------------------------------------------------


def postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture
def postgres():
    """A PostgreSQL server in a temporary folder on 127.0.0.1, stopped and removed after the test."""
    pytest.importorskip("psycopg")
    binaries = postgres_bin()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries (Debian's postgresql package); .ci/run installs them")
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root: run it as its own user
        if shutil.which("runuser") is None or subprocess.run(["id", "postgres"], capture_output=True).returncode:
            pytest.skip("running as root without a postgres user to start the server as")
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="ganzoo-pg-"))  # outside pytest's folders, which only root may enter
    root.chmod(0o755)
    data = root / "data"
    data.mkdir()
    if as_user:
        shutil.chown(data, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*as_user, str(binaries / "initdb"), "-D", str(data), "-U", "ganzoo", "--auth=trust"],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    log = data / "server.log"
    subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
                    f"-h 127.0.0.1 -p {port} -k {data}", "start"], check=True, capture_output=True, timeout=120)  # fmt: skip
    try:
        subprocess.run([*as_user, str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "ganzoo", "studies"],
                       check=True, capture_output=True, timeout=60)  # fmt: skip
        yield f"postgresql+psycopg://ganzoo@127.0.0.1:{port}/studies"
    finally:
        subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def test_a_study_through_a_real_postgresql_server(tmp_path, postgres):
    folder = tmp_path / "study"
    study.create(folder, space_file(tmp_path, trials=2, seeds="[0]"))
    assert main(["study", "run", str(folder), "--storage", postgres, "--workers", "2", "--quiet"]) == 0
    space, searches, finals = report_trials(folder, postgres)
    assert states(searches["nonsaturating"]) == ["COMPLETE"] * 2 and states(finals["nonsaturating"]) == ["COMPLETE"]
    assert not (folder / "study.db").exists()  # the database held it
    assert main(["study", "report", str(folder), "--storage", postgres]) == 0

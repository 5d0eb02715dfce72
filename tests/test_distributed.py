"""Several processes share one run (gloo on the CPU): results, files, resume, faults, launchers.

Every launch runs in its own process session with one thread per process and a time limit,
and the session is killed on the way out, so no worker outlives its test.
"""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import ganzoo
from ganzoo.distributed import _device_for
from ganzoo.launch import worker_args
from ganzoo.testing import temporary_distribution

HERE = Path(__file__).resolve().parent
LIMIT_S = 300  # the shared runs train 19 specs in two processes: minutes on a busy 2-core machine
TINY = {"generator": "mlp:width=16,depth=1", "critic": "mlp:width=16,depth=1", "batch_size": 16}
TINY_FLAGS = ["--generator", "mlp:width=16,depth=1", "--critic", "mlp:width=16,depth=1", "--batch-size", "16"]
QUIET = ["--quiet", "--log-every", "2"]

# A third party's gradient penalty (WGAN-GP style): it differentiates the critic twice.
PENALTY = """
import torch
import ganzoo

class Penalty(ganzoo.Constraint):
    '''Gradient penalty on random interpolates, from a third party.'''
    class Config(ganzoo.Config):
        weight: float = 10.0
    def penalty(self, critic, real, fake):
        t = torch.rand(len(real), *[1] * (real.dim() - 1), device=real.device)
        x = (t * real + (1 - t) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
        return self.config.weight * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
"""

#: runs whose two-process result must equal the one-process result, up to float rounding (float32:
#: `--precision auto` would run dcgan in bf16 on a CPU with native bf16, whose rounding is 1e-2)
EXACT = {
    "minimax": {"loss": "minimax"},
    "nonsaturating": {"loss": "nonsaturating"},
    "wgan": {"loss": "wgan"},
    "minimax+clip": {"loss": "minimax", "constraints": ["clip"]},
    "nonsaturating+clip": {"loss": "nonsaturating", "constraints": ["clip"]},
    "wgan+clip": {"loss": "wgan", "constraints": ["clip"]},
    "wgan+clip+ema": {"loss": "wgan", "constraints": ["clip"], "ema": 0.9},
    "grid25": {"loss": "nonsaturating", "data": "grid25"},
    "folder": {"loss": "nonsaturating", "data": "folder:path=FOLDER,size=8,channels=1"},
    "digits+dcgan+sync-batchnorm": {
        "loss": "nonsaturating", "data": "digits", "generator": "dcgan:width=4", "critic": "dcgan:width=4", "precision": "fp32",
    },
    "digits+resnet+conditional": {
        "loss": "hinge", "data": "digits", "generator": "resnet:width=4", "critic": "resnet:width=4", "conditional": True,
    },
    "digits+dcgan+image-metrics": {
        "loss": "nonsaturating", "data": "digits", "generator": "dcgan:width=4", "critic": "dcgan:width=4",
        "eval_every": 2, "eval_metrics": ["fid", "kid"], "eval_n": 16, "precision": "fp32",
    },
    # labels are part of the global batch: real ones sliced by the data, fake ones drawn from the shared stream
    "conditional+uniform-labels": {"loss": "nonsaturating", "conditional": True, "fake_labels": "uniform"},
    # relativistic: the generator step draws the next real batch from the stream, sharded as the critic step's
    "rpgan+r1+r2+schedules": {
        "loss": "rpgan", "constraints": ["r1:gamma=cosine:1:0.1:run", "r2:gamma=0.5,every=2"], "lr": "cosine:2e-4:5e-5:run",
    },
    "digits+dcgan+conditional+ac": {
        "loss": "nonsaturating", "data": "digits", "generator": "dcgan:width=4", "critic": "dcgan:width=4,head=ac",
        "constraints": ["ac"], "conditional": True, "precision": "fp32",
    },
}  # fmt: skip
#: a relativistic loss is blind to a constant added to every score, so the critic's last bias gets a
#: gradient of rounding noise alone, which Adam turns into steps of their own: no other weight sees it
BLIND = {"rpgan+r1+r2+schedules": {"critic.net.2.bias"}}
#: runs that draw random numbers per sample: the same in distribution, not bitwise
RANDOM = {
    "instance-noise": {"loss": "instance-noise:sigma=0.5"},
    "third-party-gradient-penalty": {"loss": "wgan", "constraints": ["penalty"], "optimizer": "adam", "lr": 1e-4},
    "digits+dcgan+local-batchnorm": {**EXACT["digits+dcgan+sync-batchnorm"], "sync_batchnorm": False},
    "conditional+pac+gradient-penalty": {
        "loss": "wgan", "constraints": ["gradient-penalty"], "critic": "pac:m=2,base=mlp:width=16", "conditional": True,
    },
    "digits+dcgan+diffaugment": {**EXACT["digits+dcgan+sync-batchnorm"], "augment": "diffaugment"},
    # relativistic average: each score against the mean of the other side's, over each process's share
    "conditional+ragan": {"loss": "ragan", "conditional": True},
}  # fmt: skip
STEPS = 4


def free_port() -> int:
    """A port nothing listens on now; the launcher binds it right after (good enough on loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(**extra: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}
    env.pop("GANZOO_DEBUG", None)
    return env


def children() -> dict[int, list[int]]:
    """parent pid -> the pids of its children, from /proc."""
    tree: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            if proc.name.isdigit():
                parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                tree.setdefault(parent, []).append(int(proc.name))
    return tree


def descendants(pid: int) -> list[int]:
    tree, found, todo = children(), [], [pid]
    while todo:
        below = tree.get(todo.pop(), [])
        found += below
        todo += below
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL `pid` and every process below it (torchrun's workers run in sessions of their own)."""
    for each in [pid, *descendants(pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(each, signal.SIGKILL)


@contextlib.contextmanager
def started(args: list[str], cwd: Path, **extra: str):
    """A process in a session of its own, killed with everything it started on the way out."""
    process = subprocess.Popen(
        args, cwd=cwd, env=environment(**extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        kill_tree(process.pid)
        process.communicate(timeout=LIMIT_S)


def finished(args: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess:
    with started(args, cwd, **extra) as process:
        out, err = process.communicate(timeout=LIMIT_S)
        return subprocess.CompletedProcess(args, process.returncode, out, err)


def torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *args]


def ganzoo_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ganzoo", *args]


def final_state(run: Path) -> dict[str, torch.Tensor]:
    (last,) = sorted((run / "checkpoints").glob("step-*.safetensors"))[-1:]
    return {k: v for k, v in load_file(last).items() if not k.startswith("rng.")}


def wait_for(predicate, process, what: str) -> None:
    deadline = time.monotonic() + LIMIT_S
    while not predicate():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {process.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- one launch of two processes, many runs inside the caller's own process group ----------------


@pytest.fixture(scope="module")
def penalty_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    points = {"ganzoo.constraints": {"penalty": "third_party_penalty:Penalty"}}
    with temporary_distribution(root, "third-party-penalty", points, modules={"third_party_penalty": PENALTY}):
        yield root


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """40 of the digits as PNG files."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    images, _ = ganzoo.create_dataset("digits").tensors()
    for i, image in enumerate(images[:40]):
        Image.fromarray(((image[0] + 1) * 127.5).round().byte().numpy()).save(folder / f"{i:02d}.png")
    return folder


def run_spec(spec: dict, folder: Path) -> dict:
    data = spec.get("data", "ring8").replace("FOLDER", str(folder))
    return {**TINY, "steps": STEPS, "n_critic": 2, "log_every": 1, **spec, "data": data}


@pytest.fixture(scope="module")
def shared_runs(tmp_path_factory, penalty_site, image_folder):
    """Every run of EXACT and RANDOM, each trained by two processes; the worker checks after every
    step that both hold the same state."""
    out = tmp_path_factory.mktemp("two")
    runs = [run_spec(spec, image_folder) for spec in [*EXACT.values(), *RANDOM.values()]]
    result = finished(
        torchrun("--standalone", "--nproc-per-node", "2", str(HERE / "dist_worker.py"), str(out), json.dumps(runs)),
        out, PYTHONPATH=str(penalty_site), GANZOO_CACHE=str(out / "cache"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return {name: out / str(i) for i, name in enumerate([*EXACT, *RANDOM])}


@pytest.mark.parametrize("name", EXACT)
def test_two_processes_end_with_the_weights_of_one(tmp_path, shared_runs, image_folder, name, monkeypatch):
    import ganzoo.image_metrics
    from ganzoo.testing import channel_statistics_extractor

    monkeypatch.setattr(ganzoo.image_metrics, "inception", lambda device, quiet=False: channel_statistics_extractor())
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    spec = run_spec(EXACT[name], image_folder)
    one = ganzoo.train({**spec, "out": str(tmp_path / "one")}, quiet=True).run_dir
    mine, theirs = final_state(one), final_state(shared_runs[name])
    assert mine.keys() == theirs.keys()
    for key in mine.keys() - BLIND.get(name, set()):  # the same sums in another order: rounding on the tensor's scale
        scale = mine[key].abs().max().item() if mine[key].numel() else 0
        torch.testing.assert_close(theirs[key], mine[key], rtol=1e-4, atol=1e-4 * scale, msg=lambda m: f"{key}: {m}")
    assert json.loads((shared_runs[name] / "config.json").read_text())["world_size"] == 2
    # image metrics during training: each process generated its share, the gathered features score alike
    scores = [[r[k] for r in records(run) for k in ("fid", "kid") if k in r] for run in (one, shared_runs[name])]
    assert scores[0] == pytest.approx(scores[1], rel=1e-5)
    assert bool(scores[0]) == ("eval_every" in EXACT[name])


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name", RANDOM)
def test_per_sample_randomness_trains_under_two_processes(shared_runs, name):
    rows = [json.loads(line) for line in (shared_runs[name] / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert all(torch.isfinite(torch.tensor(r["critic_loss"])) for r in rows)
    assert ganzoo.load_generator(shared_runs[name] / "generator.safetensors").sample(3).isfinite().all()


def test_only_rank_0_writes_and_nothing_is_torn(shared_runs):
    for run in shared_runs.values():
        files = sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())
        assert not [f for f in files if f.rsplit("/", 1)[-1].startswith(".")], files  # no temp file left
        assert files.count("generator.safetensors") == 1 and "config.json" in files


# -- the launchers: torchrun -m, torchrun --no-python, ganzoo train --nproc-per-node ------------


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """A 2-process run of 8 steps; the same run as 4 steps resumed to 8, each through another launcher."""
    root = tmp_path_factory.mktemp("launchers")
    flags = ["--loss", "instance-noise:sigma=0.3,anneal=false", *TINY_FLAGS, *QUIET, "--checkpoint-every", "4"]
    whole = finished(ganzoo_cli("train", *flags, "--steps", "8", "--out", "whole", "--nproc-per-node", "2"), root)
    half = finished(torchrun("--standalone", "--nproc-per-node", "2", "-m", "ganzoo", "train", *flags, "--steps", "4",
                             "--out", "halves"), root)  # fmt: skip
    resumed = finished(torchrun("--standalone", "--nproc-per-node", "2", "--no-python", "ganzoo", "train",
                                "--resume", "halves", "--steps", "8", "--quiet"), root, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])  # fmt: skip
    return root, whole, half, resumed


def test_every_launcher_trains_and_rank_0_alone_reports(launched):
    root, *results = launched
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.count("trained ") == 1, result.stdout
        assert "Traceback" not in result.stderr
    assert "trained 8 steps in whole" in results[0].stdout


def test_resuming_with_the_same_processes_is_bitwise_exact(launched):
    root = launched[0]
    whole, halves = load_file(root / "whole/checkpoints/step-0000008.safetensors"), load_file(
        root / "halves/checkpoints/step-0000008.safetensors"
    )
    assert whole.keys() == halves.keys() and {"rng.rank0.cpu", "rng.rank1.cpu"} <= whole.keys()
    for key in whole:
        assert torch.equal(whole[key], halves[key]), key
    steps = [json.loads(line)["step"] for line in (root / "halves/metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8]


def test_resuming_with_another_number_of_processes_says_it_is_not_bitwise(launched, capsys):
    root = launched[0]
    result = ganzoo.train({"steps": 10}, resume=root / "whole", quiet=True)
    assert result.step == 10
    assert "written by 2 processes and this run has 1" in capsys.readouterr().err
    assert json.loads((root / "whole/config.json").read_text())["world_size"] == 1


# -- failures -------------------------------------------------------------------------------------


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_a_batch_that_does_not_split_is_one_line(tmp_path):
    result = finished(ganzoo_cli("train", "--loss", "wgan", *TINY_FLAGS[:4], "--batch-size", "15", "--nproc-per-node",
                                 "2", "--out", "run"), tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert error_lines(result.stderr) == [
        "ganzoo: error: --batch-size 15 is the global batch and does not split evenly over 2 processes; "
        "use a multiple of 2"
    ]
    assert not (tmp_path / "run").exists()


FAILING_DATA = """
import ganzoo

class Failing(ganzoo.GaussianMixture):
    '''Ring data that process 1 cannot read.'''
    class Config(ganzoo.Config):
        std: float = 0.01
    def centres(self):
        return ganzoo.create_dataset("ring8").centres()
    def local_batches(self, batch_size, device, shard):
        if shard.rank == 1:
            raise ganzoo.UsageError("process 1 cannot read its share")
        return super().local_batches(batch_size, device, shard)
"""


def test_a_rank_that_fails_is_the_one_line_of_the_run(tmp_path):
    points = {"ganzoo.datasets": {"failing": "failing_data:Failing"}}
    with temporary_distribution(tmp_path / "site", "failing-data", points, modules={"failing_data": FAILING_DATA}):
        result = finished(ganzoo_cli("train", "--loss", "wgan", "--data", "failing", *TINY_FLAGS, "--quiet", "--nproc-per-node",
                                     "2", "--out", "run"), tmp_path, PYTHONPATH=str(tmp_path / "site"))  # fmt: skip
    assert result.returncode == 2
    assert error_lines(result.stderr) == ["ganzoo: error: process 1 cannot read its share"]


def worker_pids(launcher: int) -> dict[int, int]:
    """LOCAL_RANK -> pid of each worker below the launcher."""
    workers = {}
    for pid in descendants(launcher):
        with contextlib.suppress(OSError):
            env = dict(v.split("=", 1) for v in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in v)
            if "LOCAL_RANK" in env:
                workers[int(env["LOCAL_RANK"])] = pid
    return workers


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers through /proc")
def test_a_killed_worker_is_restarted_and_the_run_finishes(tmp_path):
    run = tmp_path / "run"
    args = torchrun("--standalone", "--nproc-per-node", "2", "--max-restarts", "1", "-m", "ganzoo", "train",
                    "--loss", "minimax", *TINY_FLAGS, *QUIET, "--steps", "1500", "--checkpoint-every", "100",
                    "--out", str(run))  # fmt: skip
    with started(args, tmp_path) as launcher:
        wait_for(lambda: list((run / "checkpoints").glob("step-*.safetensors")), launcher, "the first checkpoint")
        wait_for(lambda: len(worker_pids(launcher.pid)) == 2, launcher, "both workers")
        os.kill(worker_pids(launcher.pid)[0], signal.SIGKILL)  # rank 0: the one that writes
        out, err = launcher.communicate(timeout=LIMIT_S)
    assert launcher.returncode == 0, err[-3000:]
    assert len(re.findall(r"trained \d+ more steps \(to step 1500\)", out)) == 1  # the restart resumed
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(2, 1501, 2))  # records after the restart's checkpoint were replaced, once each
    assert ganzoo.load_generator(run / "generator.safetensors").sample(2).isfinite().all()


@contextlib.contextmanager
def two_workers_training(tmp_path: Path):
    """`ganzoo train --nproc-per-node 2` of a long run, yielded (launcher, run folder) once it
    wrote its first checkpoint and both workers are up."""
    run = tmp_path / "run"
    args = ganzoo_cli("train", "--loss", "minimax", *TINY_FLAGS, *QUIET, "--steps", "100000", "--checkpoint-every",
                      "200", "--out", str(run), "--nproc-per-node", "2")  # fmt: skip
    with started(args, tmp_path) as launcher:
        wait_for(lambda: list((run / "checkpoints").glob("step-*.safetensors")), launcher, "the first checkpoint")
        if Path("/proc/self/stat").exists():
            wait_for(lambda: len(worker_pids(launcher.pid)) == 2, launcher, "both workers")
        yield launcher, run


def test_ctrl_c_stops_every_process_with_a_whole_checkpoint(tmp_path):
    with two_workers_training(tmp_path) as (launcher, run):
        os.killpg(launcher.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        _, err = launcher.communicate(timeout=LIMIT_S)
    assert launcher.returncode == 130, err[-3000:]
    lines = error_lines(err)
    assert len(lines) == 1 and lines[0].startswith("ganzoo: error: interrupted at step"), lines
    last = sorted((run / "checkpoints").glob("step-*.safetensors"))[-1]
    assert f"interrupted at step {int(last.stem.split('-')[1])};" in lines[0]
    result = ganzoo.train({"steps": int(last.stem.split("-")[1]) + 2}, resume=run, quiet=True)
    assert result.step == int(last.stem.split("-")[1]) + 2


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers through /proc")
def test_workers_stop_with_a_whole_checkpoint_when_their_launcher_is_killed(tmp_path):
    """The launcher's store goes with it: the workers stop at one step and say so in one line, no c10d dumps."""
    with two_workers_training(tmp_path) as (launcher, run):
        workers = list(worker_pids(launcher.pid).values())
        try:
            os.kill(launcher.pid, signal.SIGKILL)  # the launcher alone: its workers are orphans now
            _, err = launcher.communicate(timeout=LIMIT_S)  # the workers hold its stderr until they end
        finally:  # orphans are no longer below the launcher, where the fixture looks for them
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    last = int(sorted((run / "checkpoints").glob("step-*.safetensors"))[-1].stem.split("-")[1])
    assert error_lines(err) == [f"ganzoo: error: interrupted at step {last}; resume with --resume {run}"]
    assert ganzoo.train({"steps": last + 2}, resume=run, quiet=True).step == last + 2  # the checkpoint is whole


#: a launcher whose thread that started the worker ends first, then its other threads one by one
THREADED_LAUNCHER = """
import subprocess, sys, threading, time
def start():
    worker = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=subprocess.PIPE, text=True)
    worker.stdout.readline()  # its watch is set up
threading.Thread(target=start).start()
time.sleep(0.3)
for i in range(3):
    threading.Thread(target=time.sleep, args=(0.3 * (i + 1),)).start()
time.sleep(0.1)
"""
#: counts every SIGTERM delivered (a handler may run once for several) and says whether the
#: launcher had ended when the first came
COUNTING_WORKER = """
import os, select, signal, sys, time
from ganzoo.distributed import _stop_with_launcher
read, write = os.pipe()
os.set_blocking(write, False)
signal.set_wakeup_fd(write)
signal.signal(signal.SIGTERM, lambda *args: None)
launcher = os.getppid()
_stop_with_launcher()
print("ready", flush=True)
select.select([read], [], [], 60)
ended = os.getppid() != launcher
time.sleep(1.5)  # a late second signal would come in this time
print(os.getpid(), len(os.read(read, 100)), ended, file=sys.stderr, flush=True)
"""


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="the launcher watch needs Linux's pidfds")
def test_a_worker_is_told_once_when_its_whole_launcher_has_ended(tmp_path):
    """Linux's parent-death signal came once per exiting launcher thread (the first while the launcher
    still ran); under load a late one killed rank 0 silently after its loop gave SIGTERM back its
    default action. The launcher watch sends one SIGTERM, when the launcher's last thread is gone."""
    result = finished([sys.executable, "-c", THREADED_LAUNCHER, COUNTING_WORKER], tmp_path)
    pid, signals, ended = result.stderr.split()
    with contextlib.suppress(ProcessLookupError):  # it ended on its own; never leave it behind
        os.kill(int(pid), signal.SIGKILL)
    assert (int(signals), ended) == (1, "True"), result.stderr


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the workers through /proc")
def test_a_killed_rank_is_one_line_naming_the_cause(tmp_path):
    """The survivor's transport error (gloo's 'Connection closed by peer ...') is not the story."""
    with two_workers_training(tmp_path) as (launcher, _):
        os.kill(worker_pids(launcher.pid)[1], signal.SIGKILL)
        _, err = launcher.communicate(timeout=LIMIT_S)
    assert launcher.returncode == 1
    assert error_lines(err) == ["ganzoo: error: process 1 was killed by SIGKILL"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_an_error_every_process_meets_is_printed_once(tmp_path):
    result = finished(ganzoo_cli("train", "--loss", "wgan", *TINY_FLAGS, "--device", "cuda", "--nproc-per-node", "2",
                                 "--out", "run"), tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert error_lines(result.stderr) == [
        "ganzoo: error: --device cuda was asked for, but torch sees no CUDA device on this node (use --device cpu)"
    ]


def test_every_train_flag_passes_through_both_launchers():
    """torchrun's parser reads a worker option that abbreviates one of its own (--log: --log-dir ...)
    as its own; every ganzoo flag must pass through it, and through --nproc-per-node unchanged."""
    from torch.distributed.run import parse_args

    from ganzoo.cli import train
    from ganzoo.launch import worker_args

    flags = sorted({o for p in train.params for o in p.opts if o.startswith("--") and o != "--log"})
    assert "--logger" in flags
    for flag in flags:
        args = parse_args(["--standalone", "--nproc-per-node=2", "--module", "ganzoo", "train", flag, "x"])
        assert args.training_script_args == ["train", flag, "x"], flag
        if flag != "--nproc-per-node":
            assert worker_args(["train", flag, "x", "--nproc-per-node", "2"]) == ["train", flag, "x"]


def test_two_nodes_over_loopback(tmp_path):
    port = free_port()
    common = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint",
              f"127.0.0.1:{port}", "--rdzv-id", "two-nodes", "--local-addr", "127.0.0.1"]  # fmt: skip
    train = ["-m", "ganzoo", "train", "--loss", "wgan", "--constraint", "clip", *TINY_FLAGS, *QUIET, "--steps", "6",
             "--out", str(tmp_path / "run")]  # fmt: skip
    with started(torchrun(*common, "--node-rank", "0", *train), tmp_path) as node0:
        with started(torchrun(*common, "--node-rank", "1", *train), tmp_path) as node1:
            out1, err1 = node1.communicate(timeout=LIMIT_S)
        out0, err0 = node0.communicate(timeout=LIMIT_S)
    assert (node0.returncode, node1.returncode) == (0, 0), err0[-2000:] + err1[-2000:]
    assert (out0 + out1).count("trained 6 steps") == 1
    assert json.loads((tmp_path / "run" / "config.json").read_text())["world_size"] == 2


# -- the parts, without processes -------------------------------------------------------------------


def test_shards_see_each_sample_once_per_epoch_and_make_the_global_batch():
    n, batch, world = 50, 8, 2
    one = ganzoo.epoch_indices(n, batch, ganzoo.Shard(seed=5))
    shards = [ganzoo.epoch_indices(n, batch, ganzoo.Shard(rank, world, seed=5)) for rank in range(world)]
    seen = []
    for _ in range(n // batch):  # one epoch
        parts = [next(s) for s in shards]
        assert all(len(p) == batch // world for p in parts)
        assert torch.equal(torch.cat(parts), next(one))  # the global batch does not depend on the world size
        seen += torch.cat(parts).tolist()
    assert len(seen) == len(set(seen)) == (n // batch) * batch
    resumed = ganzoo.epoch_indices(n, batch, ganzoo.Shard(seed=5, start=7))
    fresh = ganzoo.epoch_indices(n, batch, ganzoo.Shard(seed=5))
    for _ in range(7):
        next(fresh)
    assert torch.equal(next(resumed), next(fresh))  # a resumed stream continues where it stopped


@pytest.mark.parametrize(
    ("device", "gpus", "needle"),
    [
        ("cuda", 1, "--device cuda with 2 processes on this node needs 2 GPUs, but torch sees 1"),
        ("cuda", 0, "torch sees no CUDA device"),
        ("cuda:1", 2, "names one GPU"),
    ],
)
def test_impossible_devices_are_one_line(monkeypatch, device, gpus, needle):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    with pytest.raises(ganzoo.ConfigError, match=needle):
        _device_for(device, local_rank=1, local_size=2)


def test_the_workers_command_line_drops_the_launcher_option():
    argv = ["train", "--loss", "wgan", "--nproc-per-node", "2", "--nproc-per-node=2", "--steps", "5"]
    assert worker_args(argv) == ["train", "--loss", "wgan", "--steps", "5"]

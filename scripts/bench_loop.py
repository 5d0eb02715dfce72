"""How much does the shared loop cost over a plain hand-written PyTorch loop?

Both train the same networks on the same data with the same losses and hyperparameters: WGAN with
weight clipping (RMSProp, lr 5e-5, c = 0.01, n_critic 5, no early boost so every step does the same
work) on ring8 and 32x32 digits, the -log D loss (Adam 2e-4, betas (0.5, 0.999), one critic step)
on Fashion-MNIST at its own 28x28 (the Debian files, or data/; the row is skipped without them).
Both loops run on the same number of CPU threads, the one the shared loop picks by default (one for
networks under a million parameters): the THREADS column says which. They alternate in one process,
and the script prints the median seconds per generator step of each and their ratio (loop / plain):

    python scripts/bench_loop.py                 # both cases, CPU and (when present) CUDA
    python scripts/bench_loop.py --case mlp-ring8 --device cpu --steps 300 --rounds 5

The shared loop's time is its own `sec_per_step` log, taken between log steps after a warm-up
interval; the plain loop is timed over the same number of steps after the same warm-up.

`--compile` times the shared loop with `--compile`; its warm-up interval holds the compilation.

`--folder` compares data sources instead: the shared loop on the digits (32x32, MLP nets,
batch 64) held in memory by the `digits` dataset, and the same images read as PNG files by
the `folder` dataset, alternating; it prints both times per step and their ratio.

`--processes 1 2` measures the distributed case instead: the same run (same global batch)
shared by 1 and by 2 processes (`ganzoo train --nproc-per-node N`; gloo on the CPU, where
the cores are split evenly among the processes, NCCL with one GPU each on CUDA), alternating,
and prints real samples per second and the scaling efficiency (speed-up / processes).

`--main-command SEEDS` runs the README's main command, `ganzoo train --loss wgan --constraint clip`,
with seeds 0..SEEDS-1 and prints per seed the wall time, the modes captured and the
high-quality share (`ganzoo evaluate`), then how many seeds reached 6/8; with `--processes 1 2`
each seed runs with 1 and with 2 processes, side by side.

`--busy` times the main command alone and beside a busy process (a second training of the
same command), with the default threads and with `--threads 2`, and prints the slowdowns.

`--penalties` measures what R1 + R2 cost (R3GAN's users report a step 6-7x slower): the shared loop
trains the `r3gan` generator and critic at 28x28 (a stand-in for Fashion-MNIST that needs no
download: the digits written as PNG files, read into memory by `folder` at size 28; batch 64, one
critic step) with `nonsaturating` (no penalty), `rpgan` alone, `rpgan` + `r1` + `r2`, and the two
penalties lazy (`every=4`, `every=16`: computed on every K-th critic step, times K), alternating in
rounds. It prints each row's wall and CPU seconds per step (the loop's `sec_per_step` and
`cpu_sec_per_step`), their ratios to `nonsaturating` and, for the lazy rows, to the eager one. A lazy
row's timed steps are rounded up to a multiple of its K, so they hold exactly one penalised step in K.

`--bf16` times float32 against `--precision bf16` (torch.autocast) on the same data: the 28x28
width-64 DCGAN pair and the r3gan pair with the -log D loss, through the shared loop and the plain
one, and the r3gan pair with rpgan + r1 + r2 through the shared loop (its penalties run outside
autocast, in float32, by design); it prints wall and CPU seconds per step and the bf16/fp32 ratios.
`--batch-size` shrinks these two modes' batch (the tests use it to run them in seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import ganzoo

CASES = {
    "mlp-ring8": {"data": "ring8", "generator": "mlp", "critic": "mlp", "batch_size": 64},
    "dcgan-digits32": {"data": "digits:size=32", "generator": "dcgan", "critic": "dcgan", "batch_size": 64},
    "dcgan-fashion28": {"data": "fashion-mnist", "generator": "dcgan", "critic": "dcgan", "batch_size": 64, "loss": "nonsaturating"},
}
C, LR, N_CRITIC = 0.01, 5e-5, 5
#: each case's objective, for both loops: WGAN with clipping unless the case names the -log D loss
OBJECTIVES = {
    "wgan": {"loss": "wgan", "constraints": ["clip"], "n_critic": N_CRITIC, "critic_boost": 0},
    "nonsaturating": {"loss": "nonsaturating", "n_critic": 1, "optimizer": "adam", "lr": 2e-4, "betas": [0.5, 0.999]},
    # R3GAN's objective with its own defaults (Adam, lr 2e-4, betas (0, 0.99)), one critic step like -log D's
    "rpgan": {"loss": "rpgan", "n_critic": 1},
    **{f"rpgan+r1+r2{f':every={k}' if k > 1 else ''}": {"loss": "rpgan", "n_critic": 1, "constraints": [f"r1:every={k}", f"r2:every={k}"]}
       for k in (1, 4, 16)},  # fmt: skip
}
#: --penalties' rows: each objective and the period of its penalties (K of every=K; 1: none, or eager)
PENALTY_ROWS = {"nonsaturating": 1, "rpgan": 1, "rpgan+r1+r2": 1, "rpgan+r1+r2:every=4": 4, "rpgan+r1+r2:every=16": 16}


def objective(case: dict) -> dict:
    return OBJECTIVES[case.get("loss", "wgan")]


def networks(case: dict) -> dict:
    """The case's loop settings: float32 unless it names a precision, as the plain loop computes."""
    return {"precision": "fp32", **{k: v for k, v in case.items() if k != "loss"}}


def default_threads(case: dict) -> int:
    """The CPU threads the shared loop picks for the case's networks: one under a million parameters."""
    from ganzoo.loop import SMALL_NETWORKS

    shape = tuple(dataset(case).sample_shape)
    size = sum(p.numel() for role in ("generator", "critic")
               for p in getattr(ganzoo, f"create_{role}")(case[role], sample_shape=shape).parameters())  # fmt: skip
    return 1 if size < SMALL_NETWORKS else torch.get_num_threads()


def dataset(case: dict):
    data_name, _, options = case["data"].partition(":")
    return ganzoo.create_dataset(data_name, **dict(o.split("=") for o in options.split(",") if o))


def loop_seconds(case: dict, device: str, steps: int, warmup: int, compile_: bool = False, threads: int | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds per generator step of the shared loop, from its own log, over the steps after the warm-up."""
    with tempfile.TemporaryDirectory() as out:
        result = ganzoo.train(
            {
                **networks(case),
                **objective(case),
                **({"threads": threads} if threads else {}),
                "steps": warmup + steps,
                "log_every": warmup,
                "sample_every": 10**9,
                "checkpoint_every": 10**9,
                "device": device,
                "compile": compile_,
                "out": out,
            },
            quiet=True,
        )
        records = (result.run_dir / "metrics.jsonl").read_text().splitlines()
    timed = [json.loads(r) for r in records[1:]]  # the first interval is the warm-up
    # each record's mean weighted by its interval's steps: the last interval may be shorter
    lengths = [r["step"] - before for r, before in zip(timed, [warmup, *(r["step"] for r in timed)])]
    return tuple(sum(r[key] * n for r, n in zip(timed, lengths)) / sum(lengths) for key in ("sec_per_step", "cpu_sec_per_step"))


def plain_seconds(case: dict, device: str, steps: int, warmup: int, threads: int | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds per generator step of the loop a researcher writes by hand: same
    networks, data and precision (bf16: the forwards under torch.autocast), no framework."""
    dev = torch.device(device)
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        return _plain(case, dev, steps, warmup)
    finally:
        torch.set_num_threads(before)


def _plain(case: dict, dev: torch.device, steps: int, warmup: int) -> tuple[float, float]:
    data = dataset(case)
    shape = data.sample_shape
    torch.manual_seed(0)
    G = ganzoo.create_generator(case["generator"], sample_shape=shape).to(dev)
    D = ganzoo.create_critic(case["critic"], sample_shape=shape).to(dev)
    if dev.type == "cuda" and len(shape) == 3:
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
    stream = data.batches(case["batch_size"], dev)
    batch = case["batch_size"]
    amp = torch.autocast(dev.type, dtype=torch.bfloat16) if case.get("precision") == "bf16" else contextlib.nullcontext()
    if case.get("loss") == "nonsaturating":
        step = nonsaturating_step(G, D, stream, batch, dev, amp)
    else:
        step = wgan_step(G, D, stream, batch, dev, amp)
    for _ in range(warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        last = step()
    last.item()  # one sync at the end, as the shared loop syncs at its log steps
    return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


def nonsaturating_step(G, D, stream, batch: int, dev: torch.device, amp):
    """One generator step of the -log D GAN, as written by hand: Adam, softplus losses; the
    forwards under `amp` (autocast or nothing), the losses in float32."""
    import torch.nn.functional as F

    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step() -> torch.Tensor:
        real = next(stream)
        with torch.no_grad(), amp:
            fake = G(torch.randn(batch, G.latent_dim, device=dev))
        with amp:
            real_scores, fake_scores = D(real).float(), D(fake).float()
        loss_d = F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        return generator_update(G, D, opt_g, batch, dev, lambda scores: F.softplus(-scores).mean(), amp)

    return step


def generator_update(G, D, opt_g, batch: int, dev: torch.device, loss_of, amp) -> torch.Tensor:
    """The generator's step of a hand-written loop: no critic weight gradients, `loss_of(scores)`."""
    D.requires_grad_(False)
    with amp:
        scores = D(G(torch.randn(batch, G.latent_dim, device=dev))).float()
    loss_g = loss_of(scores)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    D.requires_grad_(True)
    opt_g.step()
    return loss_g


def wgan_step(G, D, stream, batch: int, dev: torch.device, amp):
    """One generator step of WGAN with weight clipping, as written by hand."""
    opt_g = torch.optim.RMSprop(G.parameters(), lr=LR, foreach=True)
    opt_d = torch.optim.RMSprop(D.parameters(), lr=LR, foreach=True)
    d_params = list(D.parameters())

    def step() -> torch.Tensor:
        for _ in range(N_CRITIC):
            real = next(stream)
            with torch.no_grad(), amp:
                fake = G(torch.randn(batch, G.latent_dim, device=dev))
            with amp:
                loss_d = D(fake).float().mean() - D(real).float().mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            with torch.no_grad():
                torch._foreach_clamp_min_(d_params, -C)
                torch._foreach_clamp_max_(d_params, C)
        return generator_update(G, D, opt_g, batch, dev, lambda scores: -scores.mean(), amp)

    return step


def shared_samples_per_second(case: dict, device: str, processes: int, steps: int, warmup: int) -> float:
    """Real samples per second of one run shared by `processes` processes, from rank 0's own timing."""
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as out:
        config = Path(out) / "run.json"
        settings = {**networks(case), **objective(case)}
        settings.update(steps=warmup + steps, log_every=warmup, sample_every=10**9, checkpoint_every=10**9)
        config.write_text(json.dumps({**settings, "device": device, "out": str(Path(out) / "run")}))
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, cores // processes))}
        command = [sys.executable, "-m", "ganzoo", "train", "--config", str(config), "--quiet"]
        subprocess.run([*command, "--nproc-per-node", str(processes)], check=True, env=env, stdout=subprocess.DEVNULL)
        records = (Path(out) / "run" / "metrics.jsonl").read_text().splitlines()
    timed = [json.loads(r) for r in records[1:]]
    seconds = sum(r["sec_per_step"] for r in timed) / len(timed)
    return case["batch_size"] * N_CRITIC / seconds


def digits_as_pngs(folder: str) -> None:
    """The digits at 32x32, one grey PNG file each, into `folder`."""
    from PIL import Image

    images, _ = ganzoo.create_dataset("digits", size=32).tensors()
    for i, image in enumerate(images):
        Image.fromarray(((image[0] + 1) * 127.5).round().byte().numpy()).save(Path(folder) / f"{i:04d}.png")


def folder_vs_memory(args: argparse.Namespace, device: str) -> None:
    case = {"generator": "mlp", "critic": "mlp", "batch_size": 64}
    with tempfile.TemporaryDirectory() as folder:
        digits_as_pngs(folder)
        sources = {"memory": "digits:size=32", "folder": f"folder:path={folder},size=32,channels=1"}
        times: dict[str, list[float]] = {name: [] for name in sources}
        for _ in range(args.rounds):
            for name, data in sources.items():
                times[name].append(loop_seconds({**case, "data": data}, device, args.steps, args.warmup)[0])
    memory, folder_s = statistics.median(times["memory"]), statistics.median(times["folder"])
    print(f"{'case':<16}{'device':<8}{'folder s/step':>14}{'memory s/step':>14}{'folder/memory':>14}")
    print(f"{'mlp-digits32':<16}{device:<8}{folder_s:>14.5f}{memory:>14.5f}{folder_s / memory:>14.3f}", flush=True)


def bench_processes(args: argparse.Namespace, cases: list[str], devices: list[str]) -> None:
    print(f"{'case':<16}{'device':<8}" + "".join(f"{f'{n} proc samples/s':>20}" for n in args.processes)
          + f"{'efficiency':>12}")  # fmt: skip
    for device in devices:
        for name in cases:
            rates: dict[int, list[float]] = {n: [] for n in args.processes}
            for _ in range(args.rounds):
                for n in args.processes:
                    rates[n].append(shared_samples_per_second(CASES[name], device, n, args.steps, args.warmup))
            medians = {n: statistics.median(r) for n, r in rates.items()}
            first, last = args.processes[0], args.processes[-1]
            efficiency = medians[last] / medians[first] / (last / first)
            row = "".join(f"{medians[n]:>20.1f}" for n in args.processes)
            print(f"{name:<16}{device:<8}{row}{efficiency:>12.2f}", flush=True)


@contextlib.contextmanager
def side28(batch_size: int):
    """Case settings for the 28x28 networks on a stand-in for Fashion-MNIST that needs no download:
    the digits as PNG files, read into memory by `folder` at 28x28 (shapes, not pictures, set a step's cost)."""
    with tempfile.TemporaryDirectory() as folder:
        digits_as_pngs(folder)
        yield {"data": f"folder:path={folder},size=28,channels=1", "batch_size": batch_size}


def ratio_cells(times: list[tuple[float, float]], base: list[tuple[float, float]]) -> str:
    """Wall and CPU ratios of two rows' medians over the rounds."""
    return "".join(f"{statistics.median(t[i] for t in times) / statistics.median(b[i] for b in base):>10.3f}" for i in (0, 1))


def penalties_cost(args: argparse.Namespace, device: str) -> None:
    """--penalties: R1 + R2's cost, eager and lazy, on the r3gan networks at 28x28, through the shared loop."""
    with side28(args.batch_size or 64) as data:
        case = {**data, "generator": "r3gan", "critic": "r3gan"}
        threads = default_threads(case) if device == "cpu" else None
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in PENALTY_ROWS}
        for _ in range(args.rounds):  # alternate, so drifts in machine load hit every row
            for name, every in PENALTY_ROWS.items():
                steps = -(-args.steps // every) * every  # one penalised step in every K timed ones
                times[name].append(loop_seconds({**case, "loss": name}, device, steps, args.warmup, threads=threads))
    print(f"{'objective':<22}{'device':<8}{'threads':>8}{'s/step':>10}{'cpu s/step':>11}{'/nonsat':>10}{'cpu':>10}"
          f"{'/eager':>10}{'cpu':>10}  per-round cpu /nonsat")  # fmt: skip
    base, eager = times["nonsaturating"], times["rpgan+r1+r2"]
    for name, rows in times.items():
        wall, cpu = (statistics.median(t[i] for t in rows) for i in (0, 1))
        lazy = ratio_cells(rows, eager) if PENALTY_ROWS[name] > 1 else f"{'-':>10}{'-':>10}"
        rounds = " ".join(f"{t[1] / b[1]:.3f}" for t, b in zip(rows, base))
        print(f"{name:<22}{device:<8}{threads or '-':>8}{wall:>10.4f}{cpu:>11.4f}{ratio_cells(rows, base)}{lazy}  {rounds}", flush=True)


def bf16_against_fp32(args: argparse.Namespace, device: str) -> None:
    """--bf16: float32 against torch.autocast's bf16, the shared loop and the plain one, on the 28x28 image networks."""
    rows = [("dcgan-28", "dcgan", "nonsaturating", "loop"), ("dcgan-28", "dcgan", "nonsaturating", "plain"),
            ("r3gan-28", "r3gan", "nonsaturating", "loop"), ("r3gan-28", "r3gan", "nonsaturating", "plain"),
            ("r3gan-28", "r3gan", "rpgan+r1+r2", "loop")]  # fmt: skip
    timers = {"loop": loop_seconds, "plain": plain_seconds}
    with side28(args.batch_size or 64) as data:
        cases = {row: {**data, "generator": row[1], "critic": row[1], "loss": row[2]} for row in rows}
        threads = {row: default_threads(case) if device == "cpu" else None for row, case in cases.items()}
        times = {(row, precision): [] for row in rows for precision in ("fp32", "bf16")}
        for _ in range(args.rounds):  # alternate, so drifts in machine load hit every row
            for (row, precision), measured in times.items():
                case = {**cases[row], "precision": precision}
                measured.append(timers[row[3]](case, device, args.steps, args.warmup, threads=threads[row]))
    print(f"{'case':<10}{'objective':<15}{'loop':<7}{'device':<8}{'threads':>8}{'fp32 s':>9}{'bf16 s':>9}{'fp32 cpu':>9}"
          f"{'bf16 cpu':>9}{'bf16/fp32':>10}{'cpu':>10}  per-round cpu bf16/fp32")  # fmt: skip
    for row in rows:
        fp32, bf16 = times[row, "fp32"], times[row, "bf16"]
        medians = "".join(f"{statistics.median(t[i] for t in rows_):>9.4f}" for i in (0, 1) for rows_ in (fp32, bf16))
        rounds = " ".join(f"{b[1] / f[1]:.3f}" for b, f in zip(bf16, fp32))
        case, _, objective, loop = row
        print(f"{case:<10}{objective:<15}{loop:<7}{device:<8}{threads[row] or '-':>8}{medians}{ratio_cells(bf16, fp32)}  {rounds}", flush=True)


MAIN_COMMAND = [sys.executable, "-m", "ganzoo", "train", "--loss", "wgan", "--constraint", "clip", "--quiet"]


def timed_main_command(out: str, *flags: str) -> float:
    """Wall seconds of the main command, run as a user runs it (a fresh process)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    started = time.perf_counter()
    subprocess.run([*MAIN_COMMAND, "--out", out, *flags], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main_command_over_seeds(seeds: int, steps: int | None, processes: list[int], write: bool = False) -> None:
    """The main command's modes and high-quality share per seed, for each number of processes:
    what holds from 1 to N processes over a whole run is the same result in distribution. With
    `write`, the table fills the main-command blocks of the README and the getting-started page."""
    from ganzoo.evaluation import evaluate

    print(f"{'seed':<6}{'processes':>10}{'seconds':>9}{'modes':>7}{'high quality %':>16}")
    reached = {n: 0 for n in processes}
    measured: dict[int, list[tuple[int, float, float]]] = {}  # seed -> (modes, share, seconds) per process count
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            for n in processes:
                flags = ["--seed", str(seed), *(["--steps", str(steps)] if steps else [])]
                flags += ["--nproc-per-node", str(n)] if n > 1 else []
                seconds = timed_main_command(f"{tmp}/{seed}-{n}", *flags)
                metrics = evaluate(ganzoo.load_generator(f"{tmp}/{seed}-{n}/generator.safetensors"), "ring8", seed=0)
                reached[n] += metrics["modes"] >= 6
                measured.setdefault(seed, []).append((metrics["modes"], metrics["high_quality"], seconds))
                print(f"{seed:<6}{n:>10}{seconds:>9.1f}{metrics['modes']:>7}{metrics['high_quality']:>16.1f}", flush=True)
    for n, count in reached.items():
        print(f"{n} process{'es' if n > 1 else ''}: {count} of {seeds} seeds with >= 6/8 modes")
    if write:
        from shared import ROOT, replace_block  # scripts/ is on the path when the script runs as itself

        block = main_command_block(measured, processes, reached, seeds)
        for page in (ROOT / "README.md", ROOT / "docs" / "getting-started.md"):
            replace_block("main-command", block, page)


def main_command_block(measured: dict, processes: list[int], reached: dict[int, int], seeds: int) -> str:
    """The main command's table over seeds and what it says, for the docs."""
    from datetime import date

    header = ["seed"] + [f"{label} {n} process{'es' if n > 1 else ''}" for n in processes for label in ("modes,", "high quality,")]
    rows = []
    for seed, runs in measured.items():
        rows.append([str(seed), *(cell for modes, share, _ in runs for cell in (str(modes), f"{share:.1f}%"))])
    table = "\n".join("| " + " | ".join(row) + " |" for row in [header, ["---"] * len(header), *rows])
    seconds = statistics.median(s for runs in measured.values() for (_, _, s) in runs[:1])
    shares = [q for runs in measured.values() for (_, q, _) in runs]
    counts = ", ".join(f"{reached[n]} of {seeds} with {n} process{'es' if n > 1 else ''}" for n in processes)
    return (
        f"What to expect, over seeds (`python scripts/bench_loop.py --main-command {seeds} --processes "
        f"{' '.join(map(str, processes))} --write`, {date.today():%Y-%m-%d}; `ganzoo evaluate` of each generator: modes "
        f"captured of 8, % of samples within 3 std of a centre):\n\n{table}\n\nSeeds that found at least 6 of the 8 modes: "
        f"{counts}. The high-quality share ranged {min(shares):.1f}-{max(shares):.1f}%: 2,000 steps at the paper's "
        f"learning rate with a clipped critic draw the circle, not the modes' sharpness (the zoo's `wgan-ring8` card "
        f"trains longer). A run took {seconds:.0f} s (median, one process, wall time on this project's 2-core machine, "
        f"load average {os.getloadavg()[0]:.1f} at the end)."
    )


def beside_a_busy_process(steps: int) -> None:
    """The main command (`--steps`) alone and beside a second one, default threads and 2 threads."""
    print(f"{'threads':<10}{'alone s':>9}{'busy s':>9}{'busy/alone':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, flags in (("default", []), ("2", ["--threads", "2"])):
            common = ["--steps", str(steps), *flags]
            alone = timed_main_command(f"{tmp}/alone-{label}", *common)
            busy = subprocess.Popen([*MAIN_COMMAND, "--out", f"{tmp}/load-{label}", "--steps", str(10**6)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            try:
                beside = timed_main_command(f"{tmp}/busy-{label}", *common)
            finally:
                busy.kill()
                busy.wait()
            print(f"{label:<10}{alone:>9.1f}{beside:>9.1f}{beside / alone:>12.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--steps", type=int, default=200, help="timed generator steps per measurement")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the two loops")
    parser.add_argument("--processes", type=int, nargs="+", help="measure one run shared by this many processes")
    parser.add_argument("--folder", action="store_true", help="compare the folder dataset with in-memory data")
    parser.add_argument("--compile", action="store_true", help="the shared loop with --compile (after its warm-up)")
    parser.add_argument("--main-command", type=int, metavar="SEEDS", help="modes of the main command over seeds")
    parser.add_argument("--main-steps", type=int, help="with --main-command: its steps [default: the command's own]")
    parser.add_argument("--busy", type=int, metavar="STEPS", help="the main command alone and beside a busy process")
    parser.add_argument("--write", action="store_true", help="with --main-command: fill the docs' main-command blocks")
    parser.add_argument("--penalties", action="store_true", help="R1 + R2's cost, eager and lazy, on the r3gan networks")
    parser.add_argument("--bf16", action="store_true", help="bf16 against float32, shared and plain loop, 28x28 networks")
    parser.add_argument("--batch-size", type=int, help="with --penalties or --bf16: the batch [default: 64]")
    args = parser.parse_args()
    if args.main_command:
        main_command_over_seeds(args.main_command, args.main_steps, args.processes or [1], args.write)
        return
    if args.busy:
        beside_a_busy_process(args.busy)
        return
    cases = list(CASES) if args.case == "all" else [args.case]
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, devices: {', '.join(devices)}")
    if args.processes:
        bench_processes(args, cases, devices)
        return
    if args.folder:
        for device in devices:
            folder_vs_memory(args, device)
        return
    if args.penalties or args.bf16:
        for device in devices:
            for wanted, bench in ((args.penalties, penalties_cost), (args.bf16, bf16_against_fp32)):
                if wanted:
                    bench(args, device)
        return
    print(f"{'case':<17}{'device':<8}{'threads':>8}{'loop s/step':>14}{'plain s/step':>14}{'loop/plain':>12}  per-round ratios")
    for device in devices:
        for name in cases:
            try:
                threads = default_threads(CASES[name]) if device == "cpu" else None
            except ganzoo.GanzooError as exc:  # Fashion-MNIST's files are not on this machine
                print(f"{name:<17}{device:<8}skipped: {exc}", flush=True)
                continue
            loop_times, plain_times = [], []
            for _ in range(args.rounds):  # alternate, so drifts in machine load hit both
                loop_times.append(loop_seconds(CASES[name], device, args.steps, args.warmup, args.compile, threads)[0])
                plain_times.append(plain_seconds(CASES[name], device, args.steps, args.warmup, threads)[0])
            loop_s, plain_s = statistics.median(loop_times), statistics.median(plain_times)
            rounds = " ".join(f"{a / b:.3f}" for a, b in zip(loop_times, plain_times))  # the spread says how noisy
            shown = threads or "-"
            print(f"{name:<17}{device:<8}{shown:>8}{loop_s:>14.5f}{plain_s:>14.5f}{loop_s / plain_s:>12.3f}  {rounds}", flush=True)


if __name__ == "__main__":
    main()

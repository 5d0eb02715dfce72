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
"""

from __future__ import annotations

import argparse
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
}


def objective(case: dict) -> dict:
    return OBJECTIVES[case.get("loss", "wgan")]


def networks(case: dict) -> dict:
    return {k: v for k, v in case.items() if k != "loss"}


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


def loop_seconds_per_step(case: dict, device: str, steps: int, warmup: int, compile_: bool = False, threads: int | None = None) -> float:
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
    return sum(r["sec_per_step"] for r in timed) / len(timed)


def plain_seconds_per_step(case: dict, device: str, steps: int, warmup: int, threads: int | None = None) -> float:
    """The loop a researcher writes by hand: same networks and data, no framework."""
    dev = torch.device(device)
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        return _plain(case, dev, steps, warmup)
    finally:
        torch.set_num_threads(before)


def _plain(case: dict, dev: torch.device, steps: int, warmup: int) -> float:
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
    if case.get("loss") == "nonsaturating":
        step = nonsaturating_step(G, D, stream, batch, dev)
    else:
        step = wgan_step(G, D, stream, batch, dev)
    for _ in range(warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        last = step()
    last.item()  # one sync at the end, as the shared loop syncs at its log steps
    return (time.perf_counter() - start) / steps


def nonsaturating_step(G, D, stream, batch: int, dev: torch.device):
    """One generator step of the -log D GAN, as written by hand: Adam, softplus losses."""
    import torch.nn.functional as F

    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step() -> torch.Tensor:
        real = next(stream)
        with torch.no_grad():
            fake = G(torch.randn(batch, G.latent_dim, device=dev))
        loss_d = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        return generator_update(G, D, opt_g, batch, dev, lambda scores: F.softplus(-scores).mean())

    return step


def generator_update(G, D, opt_g, batch: int, dev: torch.device, loss_of) -> torch.Tensor:
    """The generator's step of a hand-written loop: no critic weight gradients, `loss_of(scores)`."""
    D.requires_grad_(False)
    loss_g = loss_of(D(G(torch.randn(batch, G.latent_dim, device=dev))))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    D.requires_grad_(True)
    opt_g.step()
    return loss_g


def wgan_step(G, D, stream, batch: int, dev: torch.device):
    """One generator step of WGAN with weight clipping, as written by hand."""
    opt_g = torch.optim.RMSprop(G.parameters(), lr=LR, foreach=True)
    opt_d = torch.optim.RMSprop(D.parameters(), lr=LR, foreach=True)
    d_params = list(D.parameters())

    def step() -> torch.Tensor:
        for _ in range(N_CRITIC):
            real = next(stream)
            with torch.no_grad():
                fake = G(torch.randn(batch, G.latent_dim, device=dev))
            loss_d = D(fake).mean() - D(real).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            with torch.no_grad():
                torch._foreach_clamp_min_(d_params, -C)
                torch._foreach_clamp_max_(d_params, C)
        return generator_update(G, D, opt_g, batch, dev, lambda scores: -scores.mean())

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


def folder_vs_memory(args: argparse.Namespace, device: str) -> None:
    from PIL import Image

    case = {"generator": "mlp", "critic": "mlp", "batch_size": 64}
    with tempfile.TemporaryDirectory() as folder:
        images, _ = ganzoo.create_dataset("digits", size=32).tensors()
        for i, image in enumerate(images):
            Image.fromarray(((image[0] + 1) * 127.5).round().byte().numpy()).save(Path(folder) / f"{i:04d}.png")
        sources = {"memory": "digits:size=32", "folder": f"folder:path={folder},size=32,channels=1"}
        times: dict[str, list[float]] = {name: [] for name in sources}
        for _ in range(args.rounds):
            for name, data in sources.items():
                times[name].append(loop_seconds_per_step({**case, "data": data}, device, args.steps, args.warmup))
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
        f"trains longer). A run took {seconds:.0f} s (median, one process, wall time on this project's 2-core machine)."
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
                loop_times.append(loop_seconds_per_step(CASES[name], device, args.steps, args.warmup, args.compile, threads))
                plain_times.append(plain_seconds_per_step(CASES[name], device, args.steps, args.warmup, threads))
            loop_s, plain_s = statistics.median(loop_times), statistics.median(plain_times)
            rounds = " ".join(f"{a / b:.3f}" for a, b in zip(loop_times, plain_times))  # the spread says how noisy
            shown = threads or "-"
            print(f"{name:<17}{device:<8}{shown:>8}{loop_s:>14.5f}{plain_s:>14.5f}{loop_s / plain_s:>12.3f}  {rounds}", flush=True)


if __name__ == "__main__":
    main()

"""Mode collapse on ring8 and grid25 with the PacGAN protocol, row for row beside PacGAN's Table 1.

    python scripts/exp_mode_collapse.py                  # about 50 minutes with --jobs 2 on 2 cores

The rows are those of PacGAN's Table 1 (Lin et al. 2018): the GAN (the nonsaturating -log D
loss), PacGAN2 and PacGAN4 (its critic judges packs of 2 and 4 samples, `--critic
pac:m=M,base=maxout`), and ganzoo's minimax loss beside them. Every run uses the protocol's
networks and optimizer (scripts/shared.py: a 4 x 400 BatchNorm generator, a 3 x 200 maxout
critic, batch 100, Adam 1e-4 with beta1 0.8) on ring8 and grid25 with seeds 0-2 (--seed,
--seeds), for 10,000 (ring8) and 20,000 (grid25) generator steps where the paper trains
400,000: the budget of a 2-core machine. Each generator is scored as `ganzoo evaluate` does:
modes captured, % high-quality samples and the reverse KL, KL(generated || uniform), on
2,500 samples. The table gives mean ± standard error over the seeds, as the paper does; the
published rows are quoted from the paper, not run here.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from shared import PACGAN_STEPS, PACGAN_TABLE1, arguments, markdown_table, pacgan_recipe, publish

NAME = "exp-mode-collapse"
#: row label -> (the loss's TrainConfig fields, samples per pack)
ROWS = {
    "GAN (nonsaturating)": ({"loss": "nonsaturating"}, 1),
    "PacGAN2": ({"loss": "nonsaturating"}, 2),
    "PacGAN4": ({"loss": "nonsaturating"}, 4),
    "minimax": ({"loss": "minimax"}, 1),
}
STEPS = {"ring8": 10_000, "grid25": 20_000}
DATASETS = tuple(STEPS)
METRICS = ("modes", "high_quality", "kl")

PUBLISHED = [(f"{row} (PacGAN, Table 1)", *PACGAN_TABLE1[row]["ring8"], *PACGAN_TABLE1[row]["grid25"]) for row in PACGAN_TABLE1]


def run_one(job: tuple[str, str, int, int, str]) -> tuple[str, str, int, dict]:
    """Train one (row, data, seed) in this process, or reuse its finished run, and score it."""
    import torch

    import ganzoo
    from ganzoo.evaluation import evaluate

    torch.set_num_threads(1)
    label, data, seed, steps, runs = job
    run = Path(runs) / f"{label.split()[0].lower()}-{data}-steps{steps}-seed{seed}"
    exported = run / "generator.safetensors"
    if not exported.is_file():
        if any((run / "checkpoints").glob("step-*.safetensors")):
            ganzoo.train({"steps": steps}, resume=run, quiet=True)
        else:
            loss, pack = ROWS[label]
            config = {**pacgan_recipe(loss, pack), "data": data, "steps": steps, "seed": seed, "device": "cpu"}
            ganzoo.train({**config, "out": str(run)}, quiet=True)
    metrics = evaluate(ganzoo.load_generator(exported), data, seed=0)
    print(f"{label} on {data}, seed {seed}: {metrics['modes']}/{metrics['modes_total']} modes, "
          f"{metrics['high_quality']:.1f}% high quality", flush=True)  # fmt: skip
    return label, data, seed, metrics


def mean_sem(values: list[float], digits: int) -> str:
    """"mean ± standard error" over the finite values (KL is infinite for a generator with no
    high-quality sample); one value is given alone."""
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return "undefined"
    text = f"{np.mean(finite):.{digits}f}"
    if len(finite) > 1:
        text += f" ± {np.std(finite, ddof=1) / np.sqrt(len(finite)):.{digits}f}"
    return text if len(finite) == len(values) else f"{text} ({len(values) - len(finite)} undefined)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3, help="trials per row and dataset")
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="trainings at once")
    args = arguments(__doc__, parser)
    steps = {data: 3 for data in DATASETS} if args.smoke else STEPS
    seeds = 2 if args.smoke else args.seeds
    seed_list = range(args.seed, args.seed + seeds)
    # Longest first, so parallel jobs finish together.
    jobs = [(label, data, seed, steps[data], str(args.runs)) for data in reversed(DATASETS) for label in ROWS for seed in seed_list]
    # Fresh processes (spawn): each sets its own thread count before torch does any work.
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(run_one, jobs))

    summary, rows = {}, []
    for label in ROWS:
        cells = [label]
        for data in DATASETS:
            found = [metrics for name, on, _, metrics in results if (name, on) == (label, data)]
            summary[f"{label} / {data}"] = {"per_seed": found}
            cells += [mean_sem([m[key] for m in found], 2 if key == "kl" else 1) for key in METRICS]
        rows.append(tuple(cells))
    header = ("", "ring8 modes (of 8)", "ring8 % high quality", "ring8 reverse KL",
              "grid25 modes (of 25)", "grid25 % high quality", "grid25 reverse KL")  # fmt: skip
    ours = markdown_table(("ganzoo (run here)", *header[1:]), rows)
    published = markdown_table(("published (not run here)", *header[1:]), PUBLISHED)
    budget = ", ".join(f"{steps[data]:,} on {data}" for data in DATASETS)
    table = (
        f"{ours}\n\nMean ± standard error over {seeds} seeds; generator steps: {budget} "
        f"(the paper: {PACGAN_STEPS:,} and 10 trials).\n\n{published}"
    )
    fig = plot(summary, seeds)
    data = {"steps": steps, "seeds": seeds, "results": summary}
    publish(args, NAME, fig, table, data, "modes captured and % high quality per seed, ring8 and grid25")


def plot(summary: dict, seeds: int):
    from ganzoo.pictures import new_figure

    fig, axes = new_figure(ncols=2, figsize=(11, 4))
    for ax, data, total in zip(axes, DATASETS, (8, 25)):
        for i, label in enumerate(ROWS):
            found = summary[f"{label} / {data}"]["per_seed"]
            ax.scatter([m["modes"] for m in found], [m["high_quality"] for m in found], label=label, marker="osd^"[i], s=40)
        ax.set_xlim(-0.5, total + 0.5)
        ax.set_ylim(-5, 105)
        ax.set_xlabel(f"modes captured (of {total})")
        ax.set_ylabel("% high-quality samples")
        ax.set_title(f"{data}: one point per seed ({seeds} seeds)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


if __name__ == "__main__":
    main()

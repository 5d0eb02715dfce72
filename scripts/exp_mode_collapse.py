"""Mode collapse of the four losses on ring8 and grid25, over 5 seeds, beside published rows.

    python scripts/exp_mode_collapse.py                  # about 10 minutes with --jobs 2 on 2 cores

Each of the 4 losses (wgan with clip) trains the default MLP generator and critic for
2,000 generator steps on ring8 and on grid25 with seeds 0-4 (--seed, --seeds), each loss
with its own default settings. Each generator is scored by the PacGAN / VEEGAN protocol
(`ganzoo evaluate`): modes captured, % high-quality samples and KL of the mode histogram to
uniform, on 2,500 samples. The table gives mean ± std over the seeds; the published rows
below it come from the papers and were not run here.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from shared import arguments, markdown_table, publish

NAME = "exp-mode-collapse"
LOSSES = {
    "minimax": {"loss": "minimax"},
    "nonsaturating": {"loss": "nonsaturating"},
    "instance-noise": {"loss": "instance-noise"},
    "wgan + clip": {"loss": "wgan", "constraints": ["clip"]},
}
DATASETS = ("ring8", "grid25")
METRICS = ("modes", "high_quality", "kl")

# Quoted from the papers' Table 1 (their own networks, budgets and trial counts), for context only.
PUBLISHED = [
    ("GAN (VEEGAN, Table 1)", "1", "99.3", "-", "3.3", "0.5", "-"),
    ("ALI (VEEGAN, Table 1)", "2.8", "0.13", "-", "15.8", "1.6", "-"),
    ("Unrolled GAN (VEEGAN, Table 1)", "7.6", "35.6", "-", "23.6", "16", "-"),
    ("VEEGAN (VEEGAN, Table 1)", "8", "52.9", "-", "24.6", "40", "-"),
    ("GAN (PacGAN, Table 1)", "6.3 ± 0.5", "98.2 ± 0.2", "0.45 ± 0.09", "17.3 ± 0.8", "94.8 ± 0.7", "0.70 ± 0.07"),
    ("PacGAN2 (PacGAN, Table 1)", "7.9 ± 0.1", "95.6 ± 2.0", "0.07 ± 0.03", "23.8 ± 0.7", "91.3 ± 0.8", "0.13 ± 0.04"),
]


def run_one(job: tuple[str, str, int, int, str]) -> tuple[str, str, int, dict]:
    """Train one (loss, data, seed) in this process, or reuse its finished run, and score it."""
    import torch

    import ganzoo
    from ganzoo.evaluation import evaluate

    torch.set_num_threads(1)
    label, data, seed, steps, runs = job
    run = Path(runs) / f"{label.split()[0]}-{data}-steps{steps}-seed{seed}"
    exported = run / "generator.safetensors"
    if not exported.is_file():
        config = {**LOSSES[label], "data": data, "steps": steps, "seed": seed, "device": "cpu", "out": str(run)}
        if any((run / "checkpoints").glob("step-*.safetensors")):
            ganzoo.train(config, resume=run, quiet=True)
        else:
            ganzoo.train(config, quiet=True)
    metrics = evaluate(ganzoo.load_generator(exported), data, seed=seed)
    print(f"{label} on {data}, seed {seed}: {metrics['modes']}/{metrics['modes_total']} modes", flush=True)
    return label, data, seed, metrics


def mean_std(values: list[float], digits: int) -> str:
    """"mean ± std" over the finite values; KL is infinite for a generator with no high-quality sample."""
    finite = [v for v in values if np.isfinite(v)]
    if not finite:
        return "undefined"
    text = f"{np.mean(finite):.{digits}f} ± {np.std(finite):.{digits}f}"
    return text if len(finite) == len(values) else f"{text} ({len(values) - len(finite)} undefined)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=2000, help="generator steps of each run")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per loss and dataset")
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="trainings at once")
    args = arguments(__doc__, parser)
    steps, seeds = (3, 2) if args.smoke else (args.steps, args.seeds)
    seed_list = range(args.seed, args.seed + seeds)
    jobs = [(label, data, seed, steps, str(args.runs)) for label in LOSSES for data in DATASETS for seed in seed_list]
    # Fresh processes (spawn): each sets its own thread count before torch does any work.
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(run_one, jobs))

    summary, rows = {}, []
    for label in LOSSES:
        cells = [label]
        for data in DATASETS:
            found = [metrics for name, on, _, metrics in results if (name, on) == (label, data)]
            summary[f"{label} / {data}"] = {"per_seed": found}
            cells += [mean_std([m[key] for m in found], 2 if key == "kl" else 1) for key in METRICS]
        rows.append(tuple(cells))
    header = ("loss", "ring8 modes (of 8)", "ring8 % high quality", "ring8 KL", "grid25 modes (of 25)", "grid25 % high quality", "grid25 KL")
    ours = markdown_table(header, rows)
    published = markdown_table(("published (not run here)", *header[1:]), PUBLISHED)
    table = f"{ours}\n\nMean ± std over {seeds} seeds, {steps:,} generator steps each.\n\n{published}"

    fig = plot(summary, seeds)
    data = {"steps": steps, "seeds": seeds, "results": summary}
    publish(args, NAME, fig, table, data, "modes captured and % high quality per loss, ring8 and grid25")


def plot(summary: dict, seeds: int):
    from ganzoo.pictures import new_figure

    fig, axes = new_figure(ncols=2, figsize=(11, 4))
    for ax, data, total in zip(axes, DATASETS, (8, 25)):
        for i, label in enumerate(LOSSES):
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

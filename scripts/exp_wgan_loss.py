"""WGAN's loss tracks sample quality; a minimax discriminator's does not (Arjovsky, Chintala & Bottou 2017, Section 4).

    python scripts/exp_wgan_loss.py                      # about 3 minutes on one CPU thread
    python scripts/exp_wgan_loss.py --data digits:size=16 --steps 1500

Two runs on the same data with the same MLP networks and seed: WGAN with weight clipping
(the paper's settings) and the minimax GAN. At 20 checkpoints along each run, the run's own
critic is read on 32 batches of 512 (the same at every checkpoint): minus the WGAN critic
loss is its Wasserstein estimate; the minimax critic loss is the discriminator's binary
cross-entropy. Beside it, an independent measure of quality: the exact Wasserstein-1
distance between 2,000 generated and 2,000 real points on toy data, the Frechet distance of
the digits classifier's features on digits. The Spearman rank correlation of the two, over
the whole run and over its second half, says whether the loss tracks quality.
"""

from __future__ import annotations

import argparse

import torch

import ganzoo
from ganzoo.diagnostics import load_run_checkpoint, mean_critic_loss, spearman
from ganzoo.evaluation import evaluate, parse_data
from ganzoo.pictures import new_figure
from shared import arguments, markdown_table, publish

NAME = "exp-wgan-loss"
RUNS = {  # loss label -> TrainConfig fields
    "wgan": {"loss": "wgan", "constraints": ["clip"]},
    "minimax": {"loss": "minimax"},
}
CHECKPOINTS = 20


def train_run(args: argparse.Namespace, label: str) -> list:
    """The run's checkpoints, oldest first, training (or resuming) what is missing."""
    steps = 6 if args.smoke else args.steps
    every = max(1, steps // CHECKPOINTS)
    slug = parse_data(args.data).name.replace("/", "-")
    run = args.runs / f"{label}-{slug}-steps{steps}-seed{args.seed}"
    last = run / "checkpoints" / f"step-{steps:07d}.safetensors"
    if not last.is_file():
        config = {
            **RUNS[label], "data": args.data, "steps": steps, "seed": args.seed, "device": "cpu",
            "checkpoint_every": every, "keep_checkpoints": CHECKPOINTS + 1, "out": str(run),
        }  # fmt: skip
        if any((run / "checkpoints").glob("step-*.safetensors")):
            ganzoo.train(config, resume=run, quiet=args.smoke)
        else:
            ganzoo.train(config, quiet=args.smoke)
    return sorted((run / "checkpoints").glob("step-*.safetensors"))


def measure(args: argparse.Namespace, label: str) -> dict[str, list[float]]:
    """Step, the critic's reading and the quality of the generator at every checkpoint of one run."""
    found = {"steps": [], "critic": [], "quality": []}
    for path in train_run(args, label):
        checkpoint = load_run_checkpoint(path)
        checkpoint.generator.eval()  # as exported generators are scored
        torch.manual_seed(args.seed)  # the same latents and real batches at every checkpoint
        value = mean_critic_loss(
            checkpoint.generator, checkpoint.critic, checkpoint.loss, checkpoint.data.batches(512, "cpu"), batches=32
        )
        metrics = evaluate(checkpoint.generator, args.data, seed=args.seed)
        found["steps"].append(checkpoint.step)
        found["critic"].append(-value if label == "wgan" else value)
        found["quality"].append(metrics["w1"] if "w1" in metrics else metrics["frechet"])
        print(f"{label} step {found['steps'][-1]}: critic {found['critic'][-1]:.4g}, quality {found['quality'][-1]:.4g}", flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="ring8", help="dataset spec: a 2-D mixture or digits:size=16")
    parser.add_argument("--steps", type=int, default=4000, help="generator steps of each run")
    args = arguments(__doc__, parser)
    quality = "Frechet distance" if parse_data(args.data).name.endswith("digits") else "exact W1"
    readings = {"wgan": "Wasserstein estimate, -(critic loss)", "minimax": "discriminator loss (BCE)"}
    runs = {label: measure(args, label) for label in RUNS}

    fig, axes = new_figure(ncols=2, figsize=(11, 4))
    rows = []
    for ax, (label, found) in zip(axes, runs.items()):
        rho = spearman(found["critic"], found["quality"])
        half = len(found["steps"]) // 2  # the second half: once the critic has had time to catch up
        rho_late = spearman(found["critic"][half:], found["quality"][half:])
        ax.plot(found["steps"], found["critic"], "o-", color="tab:blue", label=readings[label])
        ax.set_xlabel("generator steps")
        ax.set_ylabel(readings[label], color="tab:blue")
        twin = ax.twinx()
        twin.plot(found["steps"], found["quality"], "s--", color="tab:red", label=quality)
        twin.set_ylabel(f"{quality} to the data (lower is better)", color="tab:red")
        ax.set_title(f"{label} on {args.data}: Spearman {rho:+.2f} (second half {rho_late:+.2f})", fontsize=10)
        rows.append((label, readings[label], quality, f"{rho:+.2f}", f"{rho_late:+.2f}", len(found["steps"])))
    header = ("run", "the loss read", "quality measure", "Spearman, whole run", "Spearman, second half", "checkpoints")
    table = markdown_table(header, rows)
    data = {"data": args.data, "quality": quality, "runs": runs}
    publish(args, NAME, fig, table, data, "critic readings and sample quality along a WGAN and a minimax run")


if __name__ == "__main__":
    main()

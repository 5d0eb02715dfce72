"""WGAN's loss tracks sample quality; a minimax discriminator's does not (Arjovsky, Chintala & Bottou 2017, Section 4).

    python scripts/exp_wgan_loss.py                      # about 4 minutes on one CPU thread
    python scripts/exp_wgan_loss.py --data digits:size=16 --steps 1500

Two runs on the same data with the same MLP networks and seed: WGAN with weight clipping
(the paper's settings) and the minimax GAN. At 20 checkpoints along each run, the run's own
critic is read on 32 batches of 512 (the same at every checkpoint): minus the WGAN critic
loss is its Wasserstein estimate; the minimax critic loss is the discriminator's binary
cross-entropy. Beside it, an independent measure of quality: the exact Wasserstein-1
distance between 2,000 generated and 2,000 real points on toy data, the Frechet distance of
the digits classifier's features on digits. The Spearman rank correlation of the two, over
the whole run and over its second half, says whether the loss tracks quality.

The paper's argument assumes an optimal critic, and the run's own critic is not one (it takes
a few steps per generator step). So at every checkpoint a copy of the critic is also trained
on against the frozen generator (--optimal-steps, Adam at 1e-4, batch 256, the run's
constraints) until its reading levels off, and read the same way: the near-optimal critic's
reading and its own Spearman figures sit beside the training critic's.
"""

from __future__ import annotations

import argparse
import copy
import statistics

import torch

import ganzoo
from ganzoo.diagnostics import RunCheckpoint, load_run_checkpoint, mean_critic_loss, spearman, train_critic
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


def reading(checkpoint: RunCheckpoint, critic: torch.nn.Module, seed: int, label: str) -> float:
    """The critic's reading on 32 batches of 512, the same at every checkpoint: the Wasserstein
    estimate -(critic loss) for WGAN, the discriminator's loss otherwise."""
    torch.manual_seed(seed)
    value = mean_critic_loss(checkpoint.generator, critic, checkpoint.loss, checkpoint.data.batches(512, "cpu"), batches=32)
    return -value if label == "wgan" else value


def near_optimal_readings(checkpoint: RunCheckpoint, steps: int, seed: int, label: str) -> tuple[float, float]:
    """Readings of a copy of the run's critic trained on against the frozen generator, after
    half of `steps` extra critic steps and after all of them: the second is the near-optimal
    reading, and the gap between the two says how close to levelling off it was."""
    critic = copy.deepcopy(checkpoint.critic)
    optimizer = torch.optim.Adam(critic.parameters(), lr=1e-4, betas=(0.5, 0.999))
    torch.manual_seed(seed + 1)  # batches of its own, not those it is read on
    batches = checkpoint.data.batches(256, "cpu")
    found = []
    for leg in (steps // 2, steps - steps // 2):
        train_critic(checkpoint.generator, critic, checkpoint.loss, batches, optimizer, leg, checkpoint.constraints)
        found.append(reading(checkpoint, critic, seed, label))
    return found[0], found[1]


def measure(args: argparse.Namespace, label: str, extra: int) -> dict[str, list[float]]:
    """Step, the critics' readings and the quality of the generator at every checkpoint of one run
    ("optimal_half": the near-optimal critic halfway through its extra training)."""
    found = {"steps": [], "critic": [], "optimal_half": [], "optimal": [], "quality": []}
    for path in train_run(args, label):
        checkpoint = load_run_checkpoint(path)
        checkpoint.generator.eval()  # as exported generators are scored
        found["critic"].append(reading(checkpoint, checkpoint.critic, args.seed, label))
        half, optimal = near_optimal_readings(checkpoint, extra, args.seed, label)
        found["optimal_half"].append(half)
        found["optimal"].append(optimal)
        metrics = evaluate(checkpoint.generator, args.data, seed=args.seed)
        found["steps"].append(checkpoint.step)
        found["quality"].append(metrics["w1"] if "w1" in metrics else metrics["frechet"])
        print(f"{label} step {found['steps'][-1]}: critic {found['critic'][-1]:.4g}, near-optimal critic "
              f"{optimal:.4g}, quality {found['quality'][-1]:.4g}", flush=True)  # fmt: skip
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="ring8", help="dataset spec: a 2-D mixture or digits:size=16")
    parser.add_argument("--steps", type=int, default=4000, help="generator steps of each run")
    parser.add_argument("--optimal-steps", type=int, default=2000, help="extra critic steps of the near-optimal critic")
    args = arguments(__doc__, parser)
    quality = "Frechet distance" if parse_data(args.data).name.endswith("digits") else "exact W1"
    readings = {"wgan": "Wasserstein estimate, -(critic loss)", "minimax": "discriminator loss (BCE)"}
    extra = 4 if args.smoke else args.optimal_steps
    critics = {"critic": "training critic", "optimal": f"near-optimal critic (+{extra:,} steps)"}
    runs = {label: measure(args, label, extra) for label in RUNS}

    fig, axes = new_figure(nrows=2, ncols=2, figsize=(11, 7.5))
    rows = []
    for column, (label, found) in enumerate(runs.items()):
        half = len(found["steps"]) // 2  # the second half: once the training critic has had time to catch up
        for row, (key, critic) in enumerate(critics.items()):
            rho = spearman(found[key], found["quality"])
            rho_late = spearman(found[key][half:], found["quality"][half:])
            ax = axes[row][column]
            ax.plot(found["steps"], found[key], "o-", color="tab:blue")
            ax.set_xlabel("generator steps")
            ax.set_ylabel(f"{critic}:\n{readings[label]}", color="tab:blue", fontsize=9)
            twin = ax.twinx()
            twin.plot(found["steps"], found["quality"], "s--", color="tab:red")
            twin.set_ylabel(f"{quality} to the data (lower is better)", color="tab:red", fontsize=9)
            ax.set_title(f"{label} on {args.data}, {critic}:\nSpearman {rho:+.2f} (second half {rho_late:+.2f})", fontsize=9)
            rows.append((label, critic, readings[label], quality, f"{rho:+.2f}", f"{rho_late:+.2f}", len(found["steps"])))
    header = ("run", "critic read", "the loss read", "quality measure", "Spearman, whole run", "Spearman, second half", "checkpoints")
    table = markdown_table(header, rows) + "\n\n" + levelling(runs, extra)
    data = {"data": args.data, "quality": quality, "optimal_steps": extra, "runs": runs}
    publish(args, NAME, fig, table, data, "critic readings and sample quality along a WGAN and a minimax run")


def levelling(runs: dict[str, dict[str, list[float]]], steps: int) -> str:
    """How far the near-optimal readings still moved in the second half of their extra training."""
    parts = []
    for label, found in runs.items():
        moves = [abs(b - a) / max(abs(b), 1e-12) for a, b in zip(found["optimal_half"], found["optimal"])]
        parts.append(f"{label}: median {100 * statistics.median(moves):.1f}%, largest {100 * max(moves):.1f}%")
    return (
        f"Near-optimal readings moved between {steps // 2:,} and {steps:,} extra critic steps by "
        + "; ".join(parts) + "."
    )


if __name__ == "__main__":
    main()

"""What the scripts in scripts/ share: their command line, their outputs, and the blocks they fill in the docs.

The experiments (exp_*.py) each write NAME.png, NAME.json (every number measured) and
NAME.md (the table) under --out, and fill the block of docs/experiments.md between
`<!-- NAME:start -->` and `<!-- NAME:end -->`. With --smoke they run a few steps of
everything into a temporary folder and leave the docs alone: the test suite runs them so.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch

import ganzoo
from ganzoo.checkpoint import atomic_write
from ganzoo.diagnostics import RunCheckpoint, critic_training_trace, load_run_checkpoint
from ganzoo.evaluation import to_json
from ganzoo.pictures import new_figure, save_figure

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXPERIMENTS = ROOT / "docs" / "experiments.md"
FIGURES = ROOT / "docs" / "experiments"


def arguments(doc: str, parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """Parse the options every experiment has (and those already added to `parser`)."""
    parser = parser or argparse.ArgumentParser()
    parser.description = doc.split("\n\n")[0]
    parser.add_argument("--smoke", action="store_true", help="a few steps of everything, docs untouched (for tests)")
    parser.add_argument("--out", type=Path, help=f"folder for the figure and tables [default: {FIGURES.relative_to(ROOT)}]")
    parser.add_argument("--runs", type=Path, help="folder of the training runs, reused when present [default: runs/experiments]")
    parser.add_argument("--seed", type=int, default=0, help="seed of everything random (the first seed, where several)")
    args = parser.parse_args()
    if args.smoke and not (args.out and args.runs):
        scratch = Path(tempfile.mkdtemp(prefix="ganzoo-smoke-"))
        args.out, args.runs = args.out or scratch, args.runs or scratch / "runs"
    args.out = args.out or FIGURES
    args.runs = args.runs or ROOT / "runs" / "experiments"
    torch.set_num_threads(1)  # one thread: the same seed gives bit-identical numbers on a machine
    return args


def trace_arguments() -> argparse.ArgumentParser:
    """A parser with the options of the experiments that train a critic against a frozen generator."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--critic-steps", type=int, default=4000, help="critic iterations per trace (the paper: 4,000)")
    parser.add_argument("--every", type=int, default=25, help="critic iterations between measurements")
    return parser


def replace_block(name: str, body: str, path: Path = README) -> None:
    """Put `body` between the markers `<!-- name:start -->` and `<!-- name:end -->` of `path`."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text()
    before, found_start, rest = text.partition(start)
    _, found_end, after = rest.partition(end)
    if not (found_start and found_end):
        raise SystemExit(f"{path} lacks the markers {start} ... {end}")
    atomic_write(path, lambda tmp: tmp.write_text(f"{before}{start}\n{body}\n{end}{after}"))


def markdown_table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    lines = [header, tuple("---" for _ in header), *rows]
    return "\n".join("| " + " | ".join(str(cell) for cell in row) + " |" for row in lines)


def publish(args: argparse.Namespace, name: str, fig, table: str, data: dict[str, Any], caption: str) -> None:
    """Write the figure, the numbers and the table; outside --smoke, the block in docs/experiments.md too."""
    picture = save_figure(fig, args.out / f"{name}.png")
    atomic_write(args.out / f"{name}.json", lambda tmp: tmp.write_text(to_json(data, indent=1)))
    atomic_write(args.out / f"{name}.md", lambda tmp: tmp.write_text(table + "\n"))
    if not args.smoke:
        where = Path(os.path.relpath(picture.resolve(), EXPERIMENTS.parent))
        replace_block(name, f"![{caption}]({where.as_posix()})\n\n{table}", EXPERIMENTS)
    print(f"wrote {picture}, {name}.json and {name}.md in {args.out}")


#: The PacGAN protocol for the 2-D datasets (Lin et al. 2018, after VEEGAN): a 4 x 400 ReLU +
#: BatchNorm generator with z in 2-D, a 3 x 200 maxout critic of 5 pieces (the maxout
#: plugin's defaults), batch 100, and for the JS-family losses Adam at 1e-4 with beta1 0.8.
PACGAN_NETWORKS = {"generator": "mlp:latent_dim=2,width=400,depth=4,batchnorm=true", "critic": "maxout", "batch_size": 100}
PACGAN_OPTIMIZER = {"optimizer": "adam", "lr": 1e-4, "betas": [0.8, 0.999]}
PACGAN_STEPS = 400_000  # 400 epochs of 100,000 samples at batch 100
#: PacGAN's Table 1, quoted, not run here (mean ± standard error over 10 trials; the paper
#: gives no error for some PacGAN4 cells): row -> data -> (modes, % high quality, reverse KL)
PACGAN_TABLE1 = {
    "GAN": {"ring8": ("6.3 ± 0.5", "98.2 ± 0.2", "0.45 ± 0.09"), "grid25": ("17.3 ± 0.8", "94.8 ± 0.7", "0.70 ± 0.07")},
    "PacGAN2": {"ring8": ("7.9 ± 0.1", "95.6 ± 2.0", "0.07 ± 0.03"), "grid25": ("23.8 ± 0.7", "91.3 ± 0.8", "0.13 ± 0.04")},
    "PacGAN4": {"ring8": ("7.8", "95.9", "-"), "grid25": ("24.8 ± 0.2", "93.6", "-")},
}


def pacgan_recipe(loss: dict[str, Any], pack: int = 1) -> dict[str, Any]:
    """TrainConfig fields of the protocol for a loss's fields; WGAN keeps its paper's optimizer.
    pack > 1 wraps the critic in PacGAN packing of that many samples."""
    fields = {**loss, **PACGAN_NETWORKS}
    if loss["loss"].split(":")[0] != "wgan":
        fields.update(PACGAN_OPTIMIZER)
    if pack > 1:
        fields["critic"] = f"pac:m={pack},base={fields['critic']}"
    return fields


def command_line(config: dict[str, Any]) -> str:
    """The `ganzoo train` command of TrainConfig fields; one thread makes it bit-identical."""
    flags = []
    for key, value in config.items():
        if value is None:  # unset (a recipe that turns off the data's EMA): no flag
            continue
        flag = "--constraint" if key == "constraints" else "--" + key.replace("_", "-")
        if key == "betas":
            flags.append(f"{flag} {' '.join(map(str, value))}")
        elif value is True:  # a flag
            flags.append(flag)
        else:
            flags += [f"{flag} {v}" for v in (value if isinstance(value, list) else [value])]
    return "OMP_NUM_THREADS=1 ganzoo train " + " ".join(flags)


#: One -log D DCGAN run on digits 16x16, frozen at three stages of training (generator steps).
STAGE_RUN = {
    "loss": "nonsaturating",
    "data": "digits:size=16",
    "generator": "dcgan:width=32",
    "critic": "dcgan:width=32",
    "device": "cpu",
    "precision": "fp32",  # as its figures in docs/experiments.md were measured (auto may pick bf16)
    "checkpoint_every": 10**9,  # each leg below ends with its own checkpoint
    "keep_checkpoints": 100,  # the stages' checkpoints, and any a Ctrl-C adds, all stay
}
STAGES = {"early": 100, "middle": 500, "late": 2000}
SMOKE_STAGES = {"early": 1, "middle": 2, "late": 3}


def staged_generators(args: argparse.Namespace) -> dict[str, RunCheckpoint]:
    """The stage run's generator (and the rest of its checkpoint) at each stage, training what is missing.

    The run trains in legs that each end at a stage, resuming the previous leg; a resumed
    run is exactly the run trained in one go, so the stages are those of one run.
    """
    stages = SMOKE_STAGES if args.smoke else STAGES
    run = args.runs / f"digits-stages-seed{args.seed}"
    path = lambda steps: run / "checkpoints" / f"step-{steps:07d}.safetensors"  # noqa: E731
    for steps in stages.values():
        if path(steps).is_file():
            continue
        print(f"training the stage generators: {steps} steps in {run}", flush=True)
        if any((run / "checkpoints").glob("step-*.safetensors")):
            ganzoo.train({"steps": steps}, resume=run, quiet=args.smoke)
        else:
            ganzoo.train({**STAGE_RUN, "seed": args.seed, "steps": steps, "out": str(run)}, quiet=args.smoke)
    return {stage: load_run_checkpoint(path(steps)) for stage, steps in stages.items()}


def fresh_critic(run: RunCheckpoint, seed: int) -> torch.nn.Module:
    """A newly initialised critic of the run's kind: the one the experiments train from scratch."""
    spec = run.config["critic"]
    torch.manual_seed(seed)
    return ganzoo.create_critic(spec["name"], **spec["options"], sample_shape=tuple(run.data.sample_shape))


def trace(args: argparse.Namespace, run: RunCheckpoint, loss: ganzoo.Loss, label: str) -> dict[str, Any]:
    """A fresh critic trained against the run's frozen generator, with the gradient norm of
    `loss`'s generator cost every --every steps (Adam, lr 2e-4, betas (0.5, 0.999), batch 64)."""
    steps, every = (4, 2) if args.smoke else (args.critic_steps, args.every)
    description = None if args.smoke else f"{label}, generator of step {run.step}"
    found = critic_training_trace(run.generator, fresh_critic(run, args.seed), loss, run.data, steps, every, description=description)
    return {"generator_step": run.step, **vars(found)}


def plot_traces(traces: dict[str, dict[str, Any]], title: str):
    """Gradient norms against critic iterations, log-scale, one line per trace."""
    fig, ax = new_figure(figsize=(6, 4))
    for label, found in traces.items():
        ax.plot(found["critic_steps"], found["grad_norms"], label=label)
    ax.set_yscale("log")
    ax.set_xlabel("critic iterations")
    ax.set_ylabel("norm of the generator's gradient")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return fig


def stage_traces(args: argparse.Namespace, loss: ganzoo.Loss) -> dict[str, dict[str, Any]]:
    """`trace` against each stage generator, labelled by stage and step."""
    return {
        f"{stage} generator (step {run.step:,})": trace(args, run, loss, stage)
        for stage, run in staged_generators(args).items()
    }


def decay_table(traces: dict[str, dict[str, Any]], first_column: str) -> str:
    """Per trace: the gradient norm against the fresh critic and at the end (the median of the
    last 10 measurements: single ones are noisy), the orders of magnitude between them, and
    the critic's final loss."""
    rows = []
    for label, found in traces.items():
        first, last = found["grad_norms"][0], statistics.median(found["grad_norms"][-10:])
        lost = f"{math.log10(first / last):.1f}" if last > 0 else "all"
        rows.append((label, f"{first:.3g}", f"{last:.3g}", lost, f"{found['critic_losses'][-1]:.3g}"))
    steps = next(iter(traces.values()))["critic_steps"][-1]
    header = (first_column, "gradient norm, fresh critic", f"after {steps:,} critic steps (median of the last 10)",
              "orders of magnitude lost", "final critic loss")  # fmt: skip
    return markdown_table(header, rows)

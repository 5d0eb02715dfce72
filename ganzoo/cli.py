"""The `ganzoo` command. Heavy modules (torch) are imported inside commands, so `--help` is fast."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import GanzooError, Interrupted

#: the kinds `ganzoo plugin new` scaffolds
KINDS = ["loss", "constraint", "generator", "critic", "dataset"]
#: every kind `ganzoo list` and `ganzoo show` know
LISTED_KINDS = [*KINDS, "logger", "augment"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ganzoo")
@click.option("--debug", is_flag=True, help="Show full tracebacks (also accepted after any command).")
def cli(debug: bool) -> None:
    """ganzoo: train, compare and load GANs. Every loss, constraint, network and dataset is a plugin."""


@cli.command("list", short_help="List installed plugins, their distributions and status.")
@click.argument("kind", required=False, type=click.Choice(LISTED_KINDS))
@click.option("--verbose", "-v", is_flag=True, help="Also list each plugin's options.")
def list_command(kind: str | None, verbose: bool) -> None:
    """List installed plugins (of one KIND, or all) with their distribution and status."""
    from .registry import list_plugins

    plugins = list_plugins(kind)
    rows = [
        (p.kind, p.name, p.distribution, p.version, p.status, p.reason if p.status != "ok" else p.summary)
        for p in plugins
    ]
    if not rows:
        click.echo("no plugins installed" + (f" of kind {kind}" if kind else ""))
        return
    header, *lines = aligned([("KIND", "NAME", "DISTRIBUTION", "VERSION", "STATUS", "SUMMARY"), *rows])
    click.echo(header)
    for plugin, line in zip(plugins, lines):
        click.echo(line)
        for option in option_lines(plugin.options) if verbose else []:
            click.echo("    " + option)


def aligned(rows: list[tuple[Any, ...]]) -> list[str]:
    """Left-aligned columns, two spaces apart; the last column is not padded."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)] if rows else []
    return [("  ".join(str(v).ljust(w) for v, w in zip(row, widths)) + "  " + str(row[-1])).rstrip() for row in rows]


def option_lines(options) -> list[str]:
    """One aligned line per option: name, type and bounds, default, description."""
    return aligned([
        (o.name, f"{o.type} {o.bounds}".strip(), "required" if o.required else f"default {o.default!r}", o.description)
        for o in options
    ])  # fmt: skip


@cli.command(
    short_help="Show one plugin: summary, origin and options.",
    help=f"Show one plugin: summary, origin, options. KIND ({', '.join(LISTED_KINDS)}) may be left out where "
    "no other kind has a plugin of that NAME (e.g. ganzoo show diffaugment; but ganzoo show critic dcgan).",
)  # fmt: skip
@click.argument("words", nargs=-1, required=True, metavar="[KIND] NAME")
def show(words: tuple[str, ...]) -> None:
    from .errors import UsageError
    from .registry import plugin_info

    if len(words) > 2:
        raise UsageError(f"show takes [KIND] NAME, got {len(words)} words: {' '.join(words)}")
    kind, name = words if len(words) == 2 else (plugin_kind(words[0]), words[0])
    info = plugin_info(kind, name)
    click.echo(f"{info.kind} {info.name}: {info.summary}")
    click.echo(f"distribution: {info.distribution} {info.version}")
    click.echo("options:" if info.options else "options: none")
    for line in option_lines(info.options):
        click.echo("  " + line)
    if info.kind == "loss":
        from .registry import get_class

        click.echo(f"training defaults: {get_class('loss', name).defaults.describe()} (train flags override them)")
    if info.kind in ("generator", "critic"):
        counts = parameter_counts(info.kind, name)
        click.echo(f"parameters with the default options: {'; '.join(counts) if counts else 'builds at none of ' + str(SHOWN_SHAPES)}")


#: the sample shapes `ganzoo show` builds a network at to count its parameters: 2-D toy data, MNIST, CIFAR-10
SHOWN_SHAPES = ((2,), (1, 28, 28), (3, 32, 32))


def parameter_counts(kind: str, name: str) -> list[str]:
    """'64,016 at (1, 28, 28)' for each of SHOWN_SHAPES the network builds at with its default options."""
    import torch

    from .registry import get_class

    cls, counts = get_class(kind, name), []
    for shape in SHOWN_SHAPES:
        try:
            with torch.device("meta"):  # shapes only: no memory and no time spent on the weights
                network = cls(cls.Config(sample_shape=shape))
        except Exception:  # a shape it does not take, or an option it needs: it has no count there
            continue
        counts.append(f"{sum(p.numel() for p in network.parameters()):,} at {shape}")
    return counts


def plugin_kind(name: str) -> str:
    """The kind of the plugins called NAME (or DIST/NAME), where that is one kind; else one line that says why."""
    import difflib

    from .errors import PluginNotFound, UsageError
    from .registry import entries

    bare = name.rpartition("/")[2]
    offered = {kind: {e.name for e in entries(kind)} for kind in LISTED_KINDS}
    kinds = [kind for kind, names in offered.items() if bare in names]
    if len(kinds) > 1:
        raise UsageError(f"'{bare}' is a plugin of several kinds ({', '.join(kinds)}); say which, e.g. ganzoo show {kinds[0]} {name}")
    if not kinds and name in LISTED_KINDS:
        raise UsageError(f"'{name}' is a kind; name one of its plugins too: ganzoo show {name} NAME (ganzoo list {name} lists them)")
    if not kinds:
        hint = difflib.get_close_matches(bare, sorted(set().union(*offered.values())), n=1)
        also = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise PluginNotFound(f"no plugin of any kind is named '{bare}'{also}; ganzoo list shows them all")
    return kinds[0]


class TrainCommand(click.Command):
    """`train --help` ends with the training defaults of every installed loss, read when asked for."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from .registry import get_class, list_plugins

        rows = []
        for info in list_plugins("loss"):
            if info.status == "ok":
                rows.append((info.name, get_class("loss", info.qualified_name).defaults.describe()))
        if rows:
            with formatter.section("Each loss's defaults (the flags above override them)"):
                formatter.write_dl(rows)


@cli.group()
def plugin() -> None:
    """Write your own plugins (see docs/plugins.md)."""


@plugin.command("new")
@click.argument("name")
@click.option("--kind", required=True, type=click.Choice(KINDS), help="What the plugin is.")
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="Folder to create [default: ./ganzoo-NAME].")
def plugin_new(name: str, kind: str, directory: str | None) -> None:
    """Write a pip-installable plugin distribution: a working plugin of KIND and its test."""
    from .registry import entries
    from .scaffold import new_plugin

    if directory is not None:
        holds_files(directory, "--dir", folder=True)
    target = new_plugin(name, kind, directory)
    for taken in [e for e in entries(kind) if e.name == name]:
        click.echo(
            f"warning: {taken.distribution} already offers a {kind} named '{name}'; once yours is installed, "
            f"the bare name is offered twice and must be written DIST/NAME (e.g. {taken.distribution}/{name}); "
            "pick another name to avoid that",
            err=True,
        )
    click.echo(f"wrote {target}: the {kind} '{name}' and its test; try it with")
    click.echo(f"  pip install -e {target} && pytest -q {target}")


class NumberOrSchedule(click.ParamType):
    """A number, or a schedule such as cosine:2e-4:5e-5:20M (checked with the rest of the config)."""

    name = "number|schedule"

    def convert(self, value: Any, param: Any, ctx: Any) -> float | str:
        try:
            return float(value)
        except ValueError:
            return value


SCHEDULABLE = NumberOrSchedule()


#: a seed as train's config takes it (torch's generators take no more than 64 bits, and not every user negatives)
SEED = click.IntRange(0, 2**63 - 1)


class Device(click.ParamType):
    """cpu, cuda or cuda:N, checked against what torch sees before any weights are read."""

    name = "device"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        import torch

        found = re.fullmatch(r"cpu|cuda(?::(\d+))?", value)
        if found is None:
            self.fail(f"'{value}' is not a device; use cpu, cuda or cuda:N", param, ctx)
        gpus = torch.cuda.device_count() if value != "cpu" and torch.cuda.is_available() else 0
        if value != "cpu" and int(found.group(1) or 0) >= gpus:
            self.fail(f"'{value}' was asked for, but torch sees {gpus or 'no'} CUDA device{'s' * (gpus != 1)}; "
                      "use cpu" + (f" or cuda:0..{gpus - 1}" if gpus else ""), param, ctx)  # fmt: skip
        return value


DEVICE = Device()


def holds_files(path: str, flag: str, folder: bool = False) -> None:
    """Refuse, before any work, a `flag` path whose nearest existing folder cannot hold files (/proc,
    /sys, a read-only mount): one line instead of a raw error naming a temporary file after the work."""
    import tempfile

    from .errors import UsageError

    where = Path(path).absolute() if folder else Path(path).absolute().parent
    while not where.exists():
        where = where.parent
    try:
        with tempfile.TemporaryFile(dir=where):  # removed on close: the probe leaves nothing
            pass
    except OSError as exc:
        raise UsageError(f"{flag} {path}: {where} cannot hold files (creating one there fails: {exc.strerror}); "
                         "choose a folder you can write to") from None  # fmt: skip


def _spec_option(name: str, help_: str, *aliases: str, **kw: Any):
    return click.option(name, *aliases, metavar="NAME[:k=v,...]", help=help_, **kw)


@cli.command(cls=TrainCommand, short_help="Train a GAN, e.g. --loss wgan --constraint clip.")
@_spec_option("--loss", "Loss plugin, e.g. wgan or instance-noise:base=nonsaturating,sigma=0.5.")
@_spec_option("--constraint", "Constraint plugin, e.g. clip:c=0.02; repeat to combine.", multiple=True)
@_spec_option("--data", "Dataset plugin [default: ring8].")
@_spec_option("--generator", "Generator plugin [default: mlp].")
@_spec_option("--critic", "Critic plugin [default: mlp].")
@_spec_option(
    "--logger", "Logger plugin besides metrics.jsonl, e.g. tensorboard; repeat for several (--log is short for it, "
    "but torchrun's own parser refuses it).", "--log", "log", multiple=True,
)  # fmt: skip
@_spec_option("--augment", "Differentiable augmentation of every batch the critic sees, e.g. diffaugment or "
              "diffaugment:policy=translation+cutout [default: none].")  # fmt: skip
@click.option("--steps", type=int, help="Generator steps [default: 2000].")
@click.option("--batch-size", type=int, help="Batch size [default: the loss's].")
@click.option("--n-critic", type=int, help="Critic steps per generator step [default: the loss's].")
@click.option("--critic-boost", type=int, help="Critic steps in the first and every so often generator steps "
              "(the WGAN schedule's 100), 0 for none [default: the loss's].")  # fmt: skip
@click.option("--optimizer", type=click.Choice(["adam", "rmsprop"]), help="Optimizer of both networks [default: the loss's].")
@click.option("--lr", type=SCHEDULABLE, help="Learning rate of both networks, a number or a schedule such as "
              "cosine:2e-4:5e-5:20M (docs/guides/schedules.md) [default: the loss's].")  # fmt: skip
@click.option("--lr-generator", type=SCHEDULABLE, help="Generator learning rate (or schedule).")
@click.option("--lr-critic", type=SCHEDULABLE, help="Critic learning rate (or schedule).")
@click.option("--betas", type=(SCHEDULABLE, SCHEDULABLE), metavar="B1 B2",
              help="Adam's betas, each a number or a schedule, e.g. --betas 0 cosine:0.9:0.99:20M [default: the loss's].")  # fmt: skip
@click.option("--lr-decay", type=click.Choice(["none", "linear"]),
              help="Decay the learning rates linearly to 0: the schedule linear:LR:0:run [default: none].")  # fmt: skip
@click.option("--device", help="auto, cpu, cuda or cuda:N [default: auto].")
@click.option(
    "--precision", type=click.Choice(["auto", "fp32", "bf16"]),
    help="bf16: the networks run under bf16 autocast, on CUDA and on the CPU; auto: bf16 on a CPU with "
    "native bf16 (avx512_bf16, amx_bf16) for networks faster so (dcgan), else fp32 [default: auto].",
)  # fmt: skip
@click.option("--ema", type=SCHEDULABLE, help="Keep an EMA of the generator with this decay, e.g. 0.999.")
@click.option("--ema-half-life", type=SCHEDULABLE, metavar="IMAGES",
              help="Keep an EMA of the generator with this half-life in images (or a schedule of it), e.g. 10000.")  # fmt: skip
@click.option("--conditional", is_flag=True, default=None,
              help="Condition the generator and the critic on the data's labels (class-conditional GAN).")  # fmt: skip
@click.option(
    "--fake-labels", type=click.Choice(["real", "uniform"]),
    help="Conditional: labels of the critic step's fakes, the real batch's or uniform draws [default: real].",
)  # fmt: skip
@click.option("--compile", "compile_", is_flag=True, default=None, help="torch.compile both networks.")
@click.option(
    "--sync-batchnorm/--local-batchnorm", default=None,
    help="With several processes: BatchNorm statistics over the global batch, or each process's rows [default: sync].",
)  # fmt: skip
@click.option("--seed", type=int, help="Random seed [default: 0].")
@click.option("--log-every", type=int, help="Steps between metric records [default: 50].")
@click.option("--eval-every", type=int, help="Steps between image metrics (FID...) in metrics.jsonl [default: none].")
@click.option("--eval-metrics", metavar="data|fid,kid,is,pr", callback=lambda ctx, param, v: comma_list(param, v),
              help="What --eval-every measures: data (the dataset's own evaluation) or image metrics "
              "[default: data where the dataset has one, else fid].")  # fmt: skip
@click.option("--eval-n", type=int, help="Images per evaluation during training [default: 5000].")
@click.option("--sample-every", type=int, help="Steps between sample pictures [default: 500].")
@click.option("--checkpoint-every", type=int, help="Steps between checkpoints [default: 1000].")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder [default: runs/LOSS-DATA-TIME].")
@click.option("--config", "config_file", metavar="FILE|RECIPE",
              help="JSON or TOML config, or a recipe by name (ganzoo recipes); flags override it.")  # fmt: skip
@click.option("--resume", type=click.Path(file_okay=False), help="Continue the run in this folder from its newest checkpoint.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--debug", "_debug", is_flag=True, expose_value=False, help="Show the full traceback of an error.")
@click.option(
    "--threads", type=click.IntRange(1, 1024), metavar="N",
    help="CPU threads [default: OMP_NUM_THREADS if set, else 1 for networks under 1M parameters, which gain "
    "little from more and ran 2.7x slower beside another busy process (bench_loop.py --busy), else torch's choice].",
)  # fmt: skip
@click.option(
    "--nproc-per-node", type=click.IntRange(1), metavar="N",
    help="Share the run among N processes on this machine, started by torchrun's launcher (one per GPU, or CPU).",
)  # fmt: skip
def train(
    config_file: str | None,
    resume: str | None,
    quiet: bool,
    threads: int | None,
    nproc_per_node: int | None,
    constraint: tuple[str, ...],
    log: tuple[str, ...],
    **flags: Any,
) -> None:
    """Train a GAN with one shared loop: `ganzoo train --loss wgan --constraint clip`.

    Under torchrun (`torchrun --nproc-per-node 2 -m ganzoo train ...`) or with --nproc-per-node,
    several processes share one run; --batch-size is then the global batch.
    """
    from . import recipes
    from .errors import ConfigError
    from .loop import check_eval_flags
    from .loop import train as run_training

    if nproc_per_node is not None:
        from .launch import launch

        root = click.get_current_context().find_root().obj
        raise click.exceptions.Exit(launch(nproc_per_node, root["argv"], root["debug"]))

    settings: dict[str, Any] = recipes.read(config_file)[0] if config_file is not None else {}
    if config_file is not None and recipes.shadowed(config_file):
        click.echo(f"ganzoo: notice: {recipes.shadowed(config_file)}", err=True)
    names = {"compile_": "compile"}
    settings.update({names.get(k, k): v for k, v in {**flags, "threads": threads}.items() if v is not None})
    if constraint:
        settings["constraints"] = list(constraint)
    if log:
        settings["loggers"] = list(log)
    if isinstance(settings.get("out"), str):
        holds_files(settings["out"], "--out", folder=True)
    if resume:
        if "out" in settings:
            raise ConfigError("--out cannot be combined with --resume: a resumed run stays in its folder")
        result = run_training(settings, resume=resume, quiet=quiet)
    else:
        if "loss" not in settings:
            raise ConfigError("--loss is required (e.g. --loss wgan); see `ganzoo list loss`")
        check_eval_flags(flags, settings.get("eval_every"))  # the flags alone: a run's config.json holds eval_n
        result = run_training(settings, quiet=quiet)
    if os.environ.get("RANK", "0") != "0":  # one of several processes: rank 0 reports
        return
    done = result.step - result.first_step
    more = f"{done} more steps (to step {result.step})" if result.first_step else f"{done} steps"
    click.echo(f"trained {more} in {result.run_dir}")
    if result.samples_path:
        click.echo(f"samples:   {result.samples_path}")
    click.echo(f"generator: {result.generator_path}")


def comma_list(param: click.Parameter, value: str | None) -> list[str] | None:
    """'fid,kid' -> ['fid', 'kid']; an empty list or item is a usage error, not the default."""
    if value is None:
        return None
    items = [item.strip() for item in value.split(",")]
    if not all(items):
        raise click.BadParameter(f"'{value}' is not a comma-separated list of names, e.g. fid,kid", param=param)
    return items


#: the most classes --classes lists: sample draws at most this many samples
MAX_CLASSES = 4096


def class_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    """--classes 0,3,7 -> [0, 3, 7]."""
    if value is None:
        return None
    from .errors import shortened

    if value.count(",") >= MAX_CLASSES:  # counted before a megabyte of text is parsed
        raise click.BadParameter(f"gives {value.count(',') + 1:,} classes; at most {MAX_CLASSES:,} (one per sample)")
    try:
        classes = [int(part) for part in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"'{shortened(value)}' is not a comma-separated list of class numbers, e.g. 0,3,7") from None
    if any(k < 0 for k in classes):
        raise click.BadParameter(f"'{shortened(value)}': class numbers start at 0")
    return classes


#: --data of the commands that read a checkpoint
CHECKPOINT_DATA = ("A checkpoint's data, where its run read files of its own (the generator takes its sample shape "
                   "and classes from the data) [default: the run's].")  # fmt: skip


@cli.command(short_help="Draw samples of a pretrained generator, file or checkpoint.")
@click.argument("name_or_file")
@click.option("--n", "count", type=click.IntRange(1, 4096),
              help="Number of samples [default: 64; conditional: 8 images of each class, or 1,000 points].")  # fmt: skip
@click.option("--classes", "classes", metavar="K,K,...", callback=class_list,
              help="Classes to draw from a conditional generator, spread evenly [default: all].")  # fmt: skip
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option(
    "--out", type=click.Path(dir_okay=False), default="samples.png", show_default=True,
    help="Picture to write (.png or .jpg); missing folders are created.",
)  # fmt: skip
@click.option("--truncation", type=click.FloatRange(0, min_open=True), metavar="PSI",
              help="Draw z from a normal truncated at +-PSI, each coordinate beyond it drawn again (BigGAN's "
              "truncation trick): less variety, more fidelity as PSI shrinks [default: none].")  # fmt: skip
@click.option("--device", type=DEVICE, default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@_spec_option("--data", CHECKPOINT_DATA)
def sample(
    name_or_file: str, count: int | None, classes: list[int] | None, seed: int, out: str, truncation: float | None,
    device: str, data: str | None,
) -> None:
    """Draw samples from a pretrained generator (by name), an exported .safetensors file or a
    training checkpoint (runs/NAME/checkpoints/step-N.safetensors: its EMA generator where the run
    kept one); from a conditional one, of the asked-for classes, one row (or colour) per class."""
    import torch

    from .errors import UsageError
    from .pictures import PER_CLASS, save_samples

    holds_files(out, "--out")
    generator = load_any_generator(name_or_file, device, data)
    if classes is not None and not generator.classes:
        raise UsageError(f"{name_or_file} is an unconditional generator: it takes no --classes")
    labels = None
    if generator.classes:
        chosen = torch.tensor(classes if classes is not None else range(generator.classes))
        count = count or (1000 if generator.sample_shape == (2,) else PER_CLASS * len(chosen))
        labels = chosen[torch.arange(count) * len(chosen) // count]
    count = count or 64
    rng = torch.Generator(device=generator.device).manual_seed(seed)
    fake = generator.sample(count, generator=rng, truncation=truncation, **({} if labels is None else {"labels": labels}))
    if not torch.isfinite(fake).all():
        raise UsageError(f"{name_or_file} made NaN or infinite samples (a diverged generator?); nothing was drawn")
    reference = real_points(name_or_file, seed) if tuple(fake.shape[1:]) == (2,) else None
    title = f"{source_title(name_or_file)}: {count} samples, seed {seed}" + (f", truncation {truncation:g}" if truncation else "")
    written = save_samples(Path(out), fake, reference, title=title, labels=labels)
    if written is None:
        raise UsageError(f"cannot draw samples of shape {tuple(fake.shape[1:])}: pictures are for 2-D points and images")
    click.echo(f"wrote {written}")


@cli.command(short_help="Draw samples along paths through a generator's latent space.")
@click.argument("name_or_file")
@click.option("--steps", type=click.IntRange(2, 64), default=8, show_default=True, help="Samples along each path.")
@click.option("--rows", type=click.IntRange(1, 32), default=4, show_default=True, help="Paths, each between two random latents.")
@click.option("--classes", "classes", metavar="K,K,...", callback=class_list,
              help="Conditional: the class of each path, one per row [default: classes in turn].")  # fmt: skip
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default="interpolation.png", show_default=True,
              help="Picture to write (.png or .jpg); missing folders are created.")  # fmt: skip
@click.option("--device", type=DEVICE, default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
def interpolate(name_or_file: str, steps: int, rows: int, classes: list[int] | None, seed: int, out: str, device: str) -> None:
    """Draw a strip of samples along each of ROWS paths between two latents, spherically (z is
    Gaussian, and the straight line's middle has too small a norm): one row of images per path, or
    for 2-D data each path's points over the real ones."""
    import torch

    from .errors import UsageError
    from .pictures import save_interpolation
    from .sampling import interpolate as along_paths

    holds_files(out, "--out")
    generator = load_any_generator(name_or_file, device)
    if classes is not None and len(classes) != rows:
        raise UsageError(f"--classes gives {len(classes)} classes for {rows} rows; give one per row (or --rows {len(classes)})")
    samples, _ = along_paths(generator, steps=steps, rows=rows, seed=seed, labels=classes)
    if not torch.isfinite(samples).all():
        raise UsageError(f"{name_or_file} made NaN or infinite samples (a diverged generator?); nothing was drawn")
    reference = real_points(name_or_file, seed) if tuple(samples.shape[1:]) == (2,) else None
    title = f"{source_title(name_or_file)}: {rows} spherical paths of {steps} steps, seed {seed}"
    written = save_interpolation(Path(out), samples, steps, reference, title)
    if written is None:
        raise UsageError(f"cannot draw samples of shape {tuple(samples.shape[1:])}: pictures are for 2-D points and images")
    click.echo(f"wrote {written}")


def source_title(name_or_file: str) -> str:
    """What made the samples: a zoo name or card folder as it is; for a file, what trained it."""
    from .checkpoint import GENERATOR, checkpoint_config, checkpoint_weights, is_checkpoint, read_metadata

    path = Path(name_or_file)
    if not path.is_file():
        return path.name
    if is_checkpoint(path):
        cfg, metadata = checkpoint_config(path)
        ema = ", EMA generator" if checkpoint_weights(path) == "ema" else ""
        return f"{path.parent.parent.name}/{path.name} ({cfg.loss} on {cfg.data.name}, step {int(metadata['step']):,}{ema})"
    try:
        trained = json.loads(read_metadata(path, GENERATOR).get("trained", "{}"))
    except (ValueError, RecursionError):  # its metadata is damaged: the samples still are what they are
        return path.name
    if isinstance(trained, dict) and isinstance(trained.get("steps"), int):
        made = trained.get("objective") or f"{trained.get('loss')} on {trained.get('data')}"
        return f"{path.parent.name}/{path.name} ({made}, {trained['steps']:,} steps)"
    return path.name


def real_points(name_or_file: str, seed: int):
    """1000 points of the data a 2-D generator was trained on, to draw beside its samples; None if unknown."""
    import torch

    from .evaluation import parse_data
    from .registry import create_dataset

    try:
        spec = parse_data(trained_data(name_or_file))
        dataset = create_dataset(spec.name, **spec.options)
    except GanzooError:  # no recorded data (or data from files): the samples alone
        return None
    torch.manual_seed(seed)
    return next(dataset.batches(1000, torch.device("cpu")))


def trained_data(name_or_file: str) -> str:
    """The data a generator (by name, card folder, exported file or checkpoint) was trained on."""
    from .checkpoint import checkpoint_data, is_checkpoint
    from .evaluation import recorded_data

    return checkpoint_data(name_or_file) if is_checkpoint(name_or_file) else recorded_data(name_or_file)


def load_any_generator(name_or_file: str, device: str = "cpu", data: str | None = None, err: bool = False):
    """A generator from an exported file (an existing file or a .safetensors path), a training
    checkpoint (saying which of its weights, on stderr where `err`), else from the zoo by NAME or DIST/NAME."""
    from .checkpoint import is_checkpoint, load_checkpoint_generator, load_generator
    from .errors import UsageError

    from .zoo import card_folder

    if Path(name_or_file).is_dir() and card_folder(name_or_file) is None:
        raise UsageError(f"{name_or_file} is a folder without a model card; give an exported .safetensors file, "
                         "a card folder or a zoo name")  # fmt: skip
    if is_checkpoint(name_or_file):
        generator, which = load_checkpoint_generator(name_or_file, device, data)
        click.echo(f"drew from {which}", err=err)
        return generator
    if name_or_file.endswith(".safetensors") or Path(name_or_file).is_file():
        return load_generator(name_or_file, device=device)
    from .zoo import load_pretrained

    return load_pretrained(name_or_file, device=device)


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    for line in aligned([header, *rows]):
        click.echo(line)


@cli.command(short_help="Score a pretrained generator, a file or a checkpoint.")
@click.argument("name_or_file")
@_spec_option("--data", "Dataset to score against, e.g. digits:size=16 [default: the one it was trained on].")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the generated and real samples.")
@click.option("--device", type=DEVICE, default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option(
    "--metrics", "wanted", metavar="fid,kid,is,pr", callback=lambda ctx, param, v: comma_list(param, v),
    help="Image metrics through torch-fidelity's Inception (weights fetched once, sha256-checked) "
    "instead of the data's own scores.",
)  # fmt: skip
@click.option("--n", "count", type=click.IntRange(2, 10**6),
              help="Generated and real images for --metrics (papers use 50,000) [default: 10000].")  # fmt: skip
@click.option("--reference", metavar="SPLIT", help="The real images --metrics compares with: the train split "
              "(as StudioGAN and Mimicry) or test (older papers: --reference test --n 10000) [default: train].")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(
    name_or_file: str, data: str | None, seed: int, device: str, wanted: list[str] | None, count: int | None,
    reference: str | None, as_json: bool,
) -> None:
    """Score a pretrained generator (by name), a card folder, an exported .safetensors file or a
    training checkpoint (runs/NAME/checkpoints/step-N.safetensors: its EMA generator where the run kept one).

    By default the dataset's own evaluation: on 2-D mixtures the modes captured, % high quality
    and reverse KL of the mode histogram on 2,500 samples (the PacGAN/VEEGAN protocol) and exact
    W1 on 2,000; on digits and Fashion-MNIST their classifiers' classes covered, KL, confidence and
    Frechet distance of classifier features (not FID); a third party's dataset, its own. Images,
    with --metrics: FID, KID, Inception Score and precision/recall computed by torch-fidelity,
    printed with their protocol; the real data's features are computed once and reused.
    """
    from .errors import UsageError
    from .evaluation import class_rows, metric_rows, to_json
    from .evaluation import evaluate as score

    for given, flag in ((count, "--n"), (reference, "--reference")):
        if given is not None and not wanted:
            raise UsageError(f"{flag} applies to --metrics only (the data's own evaluation draws its own samples); add --metrics fid or drop {flag}")
    generator = load_any_generator(name_or_file, device, data, err=as_json)
    data = data or trained_data(name_or_file)
    metrics = score(generator, data, seed=seed, metrics=wanted, n=count or 10_000, quiet=as_json, reference=reference)
    if as_json:
        click.echo(to_json({"model": name_or_file, "data": data, "seed": seed, "metrics": metrics}))
        return
    click.echo(f"{name_or_file} on {data}, seed {seed}")
    print_table(("METRIC", "VALUE"), metric_rows(metrics))
    if "protocol" in metrics:
        from .image_metrics import protocol_line

        click.echo(protocol_line(metrics["protocol"]))
    header, rows = class_rows(metrics)
    if rows:
        click.echo("\nper class (the samples drawn for it):")
        print_table(tuple(h.upper() for h in header), rows)


@cli.command(short_help="Draw the curves of runs in one picture.")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option(
    "--out", type=click.Path(dir_okay=False), default="curves.png", show_default=True,
    help="Picture to write (.png or .jpg); missing folders are created.",
)  # fmt: skip
def plot(runs: tuple[str, ...], out: str) -> None:
    """Draw the curves of one or several runs in one picture, to compare them (e.g. minimax and WGAN)."""
    from .errors import UsageError
    from .pictures import save_curves

    holds_files(out, "--out")
    curves = {}
    for run in runs:
        path = Path(run) / "metrics.jsonl"
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}; give run folders") from None
        records = [r for r in map(metrics_record, lines) if r is not None]
        if not records:
            raise UsageError(f"{path} holds no metrics records (JSON objects with a step)")
        if len(records) < len(lines):
            click.echo(f"ganzoo: notice: {path}: skipped {len(lines) - len(records)} of {len(lines)} lines "
                       "(empty, torn, not a record, or not finite)", err=True)  # fmt: skip
        curves[Path(run).name] = records
    if len(curves) < len(runs):
        raise UsageError("two runs have the same folder name; their curves would share one label")
    click.echo(f"wrote {save_curves(Path(out), curves)}")


def metrics_record(line: str) -> dict[str, float] | None:
    """One line of metrics.jsonl as a record: an object with a whole step and finite numbers; else None."""
    import json
    import math

    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or type(record.get("step")) is not int:
        return None
    numbers = [v for v in record.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return record if len(numbers) == len(record) and all(math.isfinite(v) for v in numbers) else None


@cli.command("recipes", short_help="List the published recipes that --config reads by name.")
@click.argument("name", required=False)
def recipes_command(name: str | None) -> None:
    """List the shipped recipes with their source and published scores, or show one recipe's settings.
    Train one with `ganzoo train --config NAME` (flags override its settings, e.g. --steps)."""
    from . import recipes

    if name is not None:
        recipe = recipes.describe(name)
        click.echo(f"{name}: {recipe.get('source', '')}")
        for key, value in recipe["settings"].items():
            click.echo(f"  {key} = {value}")
        for score in recipe.get("published", []):
            click.echo("  published: " + published_line(score))
        return
    rows = []
    for each in recipes.recipe_names():
        recipe = recipes.describe(each)
        scores = "; ".join(published_line(s) for s in recipe.get("published", [])[-1:]) or "none published"
        rows.append((each, recipe["settings"].get("data", ""), scores))
    print_table(("NAME", "DATA", "PUBLISHED (the last listed; ganzoo recipes NAME shows all)"), rows)


def published_line(score: dict[str, Any]) -> str:
    figures = ", ".join(f"{label} {score[key]}" for key, label in (("fid", "FID"), ("inception_score", "IS")) if key in score)
    return f"{figures} ({score.get('by', '')}; {score.get('protocol', '')})"


STUDY_EXAMPLE = """
\b
Example (grid25, two objectives, 20 trials each):
    ganzoo study create runs/which --space examples/study-grid25.toml
    ganzoo study run runs/which --workers 2
    ganzoo study report runs/which
\b
The space file (TOML) names the data and networks, each objective (a loss and its constraints)
with its space of settings, the budget and the metric:
    data = "grid25"
    steps = 3000        # generator steps per trial
    trials = 20         # per objective
    seeds = [0, 1, 2]   # the search's seed, and the final re-runs of each objective's best
    metric = "high_quality"
    direction = "maximize"
    sampler = "random"  # or tpe
    eval_every = 1000   # a pruner (median, hyperband or none) sees each evaluation
    [objectives.wgan-gp]
    loss = "wgan"
    constraints = ["gradient-penalty"]
    settings = {optimizer = "adam", n_critic = 5, critic_boost = 0}
    space.lr = {low = 1e-5, high = 1e-3, log = true}
    space."constraints.0.weight" = {low = 1, high = 100, log = true}
"""


@cli.group(epilog=STUDY_EXAMPLE, short_help="Compare objectives fairly: one search each, run by Optuna.")
def study() -> None:
    """Compare objectives fairly: the same hyperparameter search for each (Lucic et al. 2018), run by
    Optuna on one machine or many. Each trial is an ordinary run folder in DIR/trials/."""


@study.command("create")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--space", "space_file", required=True, type=click.Path(dir_okay=False), help="The space file (TOML).")
def study_create(folder: str, space_file: str) -> None:
    """Make a study folder from a space file (every objective's settings are checked now)."""
    from .study import create

    written = create(Path(folder), Path(space_file))
    click.echo(f"wrote {written}; run it with ganzoo study run {written} [--workers N] [--storage URL]")


@study.command("run")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--storage", metavar="URL", help="An Optuna storage shared by many machines, e.g. "
              "postgresql://user:password@host/db [default: DIR/study.db, SQLite].")  # fmt: skip
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True, help="Trials at once on this machine.")
@click.option("--quiet", is_flag=True, help="Print nothing per trial.")
def study_run(folder: str, storage: str | None, workers: int, quiet: bool) -> None:
    """Work through the study's trials, then the final re-runs; run it on several machines at once
    with one --storage and FOLDER on a shared file system. A stopped or killed worker's trial is
    taken up again, from its newest checkpoint."""
    from .study import run

    run(Path(folder), storage, workers, quiet)
    click.echo(f"study done; ganzoo study report {folder} writes its table and picture")


@study.command("report")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--storage", metavar="URL", help="The study's storage, if not DIR/study.db.")
def study_report(folder: str, storage: str | None) -> None:
    """Write DIR/report/: the table (Markdown), best value against trials (PNG), every trial (CSV)."""
    from .study_report import report

    written = report(Path(folder), storage)
    click.echo(written["table"].read_text(), nl=False)
    click.echo(f"wrote {', '.join(str(p) for p in written.values())}")


@cli.group()
def zoo() -> None:
    """Pretrained generators: list them and read their model cards."""


@zoo.command("list")
@click.argument("pattern", default="*")
def zoo_list(pattern: str) -> None:
    """List pretrained generators (names matching PATTERN, e.g. 'wgan-*') with their headline metric."""
    from .errors import BrokenPlugin
    from .evaluation import headline
    from .zoo import broken_card_packages, list_pretrained, model_card

    rows = []
    for name in list_pretrained(pattern):
        try:
            card = model_card(name)
        except BrokenPlugin as exc:  # one bad card does not hide the others
            rows.append((name, "-", "-", f"broken: {exc}"))
            continue
        rows.append((name, card.dataset, card.objective, headline(card.metrics)))
    for reason in broken_card_packages():
        click.echo(reason, err=True)
    if not rows:
        click.echo("no pretrained generators" + (f" match '{pattern}'" if pattern != "*" else " installed"))
        return
    print_table(("NAME", "DATASET", "LOSS", "METRIC"), rows)


@zoo.command("export")
@click.argument("run", type=click.Path(file_okay=False))
@click.argument("folder", type=click.Path(file_okay=False))
@_spec_option("--data", "Dataset to score against [default: the run's].")
@click.option("--license", "license_", default="mit", show_default=True, help="The card's licence identifier.")
@click.option("--onnx", "onnx", is_flag=True, help="Also write the generator as generator.onnx (needs ganzoo[onnx]).")
def zoo_export(run: str, folder: str, data: str | None, license_: str, onnx: bool) -> None:
    """Write a model card folder (README with measured metrics, weights, picture, config) from a finished RUN.

    FOLDER's name is the model's name; put the folder in a card package (see docs/plugins.md) to ship it.
    With --onnx the folder also holds generator.onnx: inputs z (and labels), output samples.
    """
    from .export import export_card

    holds_files(folder, "FOLDER", folder=True)  # before the evaluation, not after it
    written = export_card(run, folder, license_, data, onnx=onnx)
    click.echo(f"wrote {written}; it works as it is: ganzoo zoo show {written} | ganzoo evaluate {written} | "
               f"ganzoo sample {written}")
    click.echo("to publish it, either put the folder in a card package (an entry point in the ganzoo.zoo group; "
               "docs/plugins.md, 'Zoo') and pip install it, or upload the folder to the Hugging Face "
               f"Hub (huggingface-cli upload OWNER/{written.name} {written}) and ship the card with weights: "
               f"hf://OWNER/{written.name}/generator.safetensors@REVISION")


@zoo.command("show")
@click.argument("name")
def zoo_show(name: str) -> None:
    """Print the model card of a pretrained generator."""
    from .zoo import model_card

    click.echo(model_card(name).text, nl=False)


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 on success, 2 on bad usage or config, 1 on a failure while running."""
    code = _main(argv)
    together = code in (0, Interrupted.exit_code)  # every process ends here: finished, or stopped at one step
    if together and "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Such a torchrun worker ends without the interpreter's teardown, where
        # destroying torch's distributed objects aborts a process now and then ("terminate called
        # without an active exception", SIGABRT). A failed run keeps the teardown: its first failure
        # must reach the launcher before its peers' (ganzoo.launch reports that one).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(argv: list[str] | None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or bool(os.environ.get("GANZOO_DEBUG"))
    args = [a for a in args if a != "--debug"]
    try:
        code = cli.main(args=args, prog_name="ganzoo", standalone_mode=False, obj={"argv": args, "debug": debug})
        if isinstance(code, int):  # click returns the code of an Exit raised in a command
            return code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:  # click's own usage errors, made one line like ours
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        click.echo(f"ganzoo: error: {exc.format_message()}{hint}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except GanzooError as exc:
        if debug:
            raise
        if not getattr(exc, "quiet", False):  # quiet: another process of the same run reported first
            click.echo(f"ganzoo: error: {exc}", err=True)
        return exc.exit_code
    except Exception as exc:  # an unexpected failure: still one line unless --debug
        if debug:
            raise
        if not getattr(exc, "quiet", False):
            click.echo(f"ganzoo: error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

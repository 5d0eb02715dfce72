"""Pictures a person looks at: image grids and 2-D scatter plots, written atomically as PNG."""

from __future__ import annotations

import itertools
import math
import textwrap
from pathlib import Path

import torch
from PIL import Image

from .checkpoint import atomic_write
from .errors import UsageError


def image_grid(images: torch.Tensor, columns: int = 8, min_cell: int = 48) -> Image.Image:
    """(N, C, H, W) in [-1, 1] -> one RGB or greyscale picture, small images upscaled (nearest)."""
    images = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    n, channels, height, width = images.shape
    columns = min(columns, n)
    rows = math.ceil(n / columns)
    pad = 2
    grid = torch.full((channels, rows * (height + pad) + pad, columns * (width + pad) + pad), 255, dtype=torch.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        top, left = pad + r * (height + pad), pad + c * (width + pad)
        grid[:, top : top + height, left : left + width] = image
    array = grid.permute(1, 2, 0).squeeze(-1).numpy()
    picture = Image.fromarray(array, mode="L" if channels == 1 else "RGB")
    scale = max(1, math.ceil(min_cell / height))
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)


def captioned(picture: Image.Image, caption: str) -> Image.Image:
    """`picture` under a white strip that carries `caption` (run, step, which generator) in Pillow's
    scalable font (its bitmap font runs words together), at a readable size, wrapped to the width."""
    from PIL import ImageDraw, ImageFont

    size = 13
    font = ImageFont.load_default(size=size)
    lines = fitted_lines(caption, lambda line: font.getlength(line) <= picture.width - 8)
    step = size + 4
    strip = len(lines) * step + 6
    framed = Image.new(picture.mode, (picture.width, picture.height + strip), 255 if picture.mode == "L" else (255,) * 3)
    framed.paste(picture, (0, strip))
    draw = ImageDraw.Draw(framed)
    for row, line in enumerate(lines):
        draw.text((4, 3 + row * step), line, fill=0 if picture.mode == "L" else (0, 0, 0), font=font)
    return framed


def fitted_lines(text: str, fits) -> list[str]:
    """`text` wrapped at the most characters a line may hold for `fits(line)` to hold for every
    line; a word longer than a line is broken (textwrap's way), so nothing is cut off."""
    for width in range(len(text), 1, -1):
        lines = textwrap.wrap(text, width)
        if all(fits(line) for line in lines):
            return lines
    return textwrap.wrap(text, 1)


def wrapped(title: str, inches: float, points: float = 9) -> str:
    """A matplotlib title wrapped to a panel `inches` wide at `points` (a character is about 0.6
    of the font size wide): a long run name stays inside its panel instead of running into the next."""
    return "\n".join(textwrap.wrap(title, max(8, int(inches * 72 / (0.6 * points)))))


#: a conditional generator's picture: this many images of each class, for the first CLASS_ROWS classes
PER_CLASS, CLASS_ROWS = 8, 16


def picture_labels(classes: int, points: bool) -> torch.Tensor:
    """The labels a conditional generator's picture shows: 1,000 points spread evenly over the
    classes, or PER_CLASS images of each class (of the first CLASS_ROWS), in class order."""
    if points:
        return torch.arange(1000) * classes // 1000
    return torch.arange(min(classes, CLASS_ROWS)).repeat_interleave(PER_CLASS)


def class_rows(images: torch.Tensor, labels: torch.Tensor) -> Image.Image:
    """An image grid with one row per class (its samples in their order), the class on the left."""
    from PIL import ImageDraw, ImageFont

    classes = sorted(set(labels.tolist()))
    per_row = max(int((labels == k).sum()) for k in classes)
    cells = []
    for k in classes:  # each row padded with blank (white) cells to the longest
        row = images[labels == k]
        cells += [row, torch.ones(per_row - len(row), *images.shape[1:], device=images.device)]
    grid = image_grid(torch.cat(cells), columns=per_row)
    font = ImageFont.load_default(size=14)
    margin = int(max(font.getlength(str(k)) for k in classes)) + 10
    framed = Image.new(grid.mode, (grid.width + margin, grid.height), 255 if grid.mode == "L" else (255,) * 3)
    framed.paste(grid, (margin, 0))
    draw, height = ImageDraw.Draw(framed), grid.height / len(classes)
    for row, k in enumerate(classes):
        draw.text((4, row * height + height / 2 - 8), str(k), fill=0 if grid.mode == "L" else (0, 0, 0), font=font)
    return framed


def save_scatter(
    path: Path, fake: torch.Tensor, reference: torch.Tensor | None, title: str, labels: torch.Tensor | None = None
) -> Path:
    fig, ax = new_figure(figsize=(5, 5))
    if reference is not None:
        ref = reference.detach().float().cpu().numpy()
        ax.scatter(ref[:, 0], ref[:, 1], s=4, c="0.6", label="real")
    points = fake.detach().float().cpu().numpy()
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=4, c="tab:orange", alpha=0.7, label="generated")
    else:  # coloured by the class each point was asked for
        ax.scatter(points[:, 0], points[:, 1], s=4, c=labels.cpu().numpy() % 20, cmap="tab20", vmin=0, vmax=19,
                   alpha=0.8, label="generated, coloured by class")  # fmt: skip
    ax.set_aspect("equal")
    ax.set_title("\n".join(textwrap.wrap(title, 64)), fontsize=9)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    # below the axes: inside, it hides the corner modes of grid25
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=8, markerscale=3, frameon=False)
    return save_figure(fig, path)


#: panels every run shares a y axis in: (title, y label, metrics drawn, log scale); losses get a panel
#: per run, since losses of different objectives live on scales 100x apart
SHARED_PANELS = [
    ("Wasserstein estimate", "-(critic loss)", ("wasserstein",), False),
    ("gradient norms", "norm", ("grad_norm_critic", "grad_norm_generator"), True),
    ("FID during training", "FID", ("fid",), False),
    ("KID during training", "KID", ("kid",), False),
]
LOSSES = ("critic_loss", "generator_loss")
#: loss panels side by side in a comparison
LOSS_COLUMNS = 4


def short_labels(names: list[str]) -> list[str]:
    """Run folder names without the parts all of them share ('minimax-ring8-20261201-1012' and
    'wgan-ring8-20261201-1013' -> 'minimax-...-1012', 'wgan-...-1013'), so a legend stays short."""
    if len(names) < 2:
        return names
    split = [name.split("-") for name in names]
    shared = set.intersection(*(set(parts) for parts in split))
    labels = ["-".join(p if p not in shared else "" for p in parts) for parts in split]
    labels = ["-".join(filter(None, label.split("-"))) or name for label, name in zip(labels, names)]
    return labels if len(set(labels)) == len(labels) else names


def save_curves(path: Path, runs: dict[str, list[dict[str, float]]]) -> Path:
    """The curves of one run's metrics.jsonl, or of several to compare: each run's losses in a panel
    of its own, then the Wasserstein estimate (where a run has one) and gradient norms of every run
    on shared axes, one colour per run, the legend below the panels."""
    drawn = [*LOSSES, *(m for panel in SHARED_PANELS for m in panel[2])]
    empty = [name for name, records in runs.items() if not any(m in r for r in records for m in drawn)]
    if empty:
        raise UsageError(f"nothing to draw for {', '.join(map(repr, empty))}: no record holds any of {', '.join(drawn)}")
    labels = dict(zip(runs, short_labels(list(runs))))
    shared = [p for p in SHARED_PANELS if any(m in r for records in runs.values() for r in records for m in p[2])]
    scheduled = sorted({m for records in runs.values() for r in records for m in r if m.startswith(SCHEDULED)})
    if scheduled:  # settings of different scales on one axis: each over its largest value
        shared.append(("scheduled settings", "value / its largest", tuple(scheduled), False))
        runs = {name: scaled(records, scheduled) for name, records in runs.items()}
    columns = min(LOSS_COLUMNS, len(runs))
    loss_rows = math.ceil(len(runs) / columns)
    panel = 7 if columns == 1 else 3.2  # inches
    fig, _ = new_figure(figsize=(panel * columns, 2.4 * (loss_rows + len(shared)) + 0.3 * len(runs)))
    width = panel * 0.8  # a panel's axes, its tick labels aside
    fig.delaxes(fig.axes[0])
    grid = fig.add_gridspec(loss_rows + len(shared), columns)
    colours = {name: f"C{i % 10}" for i, name in enumerate(runs)}
    for i, (name, records) in enumerate(runs.items()):
        ax = fig.add_subplot(grid[i // columns, i % columns])
        for metric, style in zip(LOSSES, ("-", "--")):
            _curve(ax, records, metric, style, color=colours[name], label=metric.replace("_", " "))
        ax.set_title(wrapped(f"losses: {labels[name]}" if len(runs) > 1 else "losses", width), fontsize=9)
        ax.set_xlabel("generator step", fontsize=8)
        if ax.lines:  # a run with only FID records has no losses
            ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=2 if columns == 1 else 1, frameon=False)
        ax.grid(alpha=0.3)
    for row, (title, ylabel, metrics, log_scale) in enumerate(shared, start=loss_rows):
        ax = fig.add_subplot(grid[row, :])
        for name, records in runs.items():
            for metric, style in zip(metrics, itertools.cycle(("-", "--", ":", "-."))):
                shown = metric.removeprefix(SCHEDULED).replace("_", " ")
                label = shown if len(runs) == 1 else f"{labels[name]}: {shown}"
                _curve(ax, records, metric, style, color=colours[name] if len(runs) > 1 else None, label=label)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("generator step", fontsize=8)
        ax.set_ylabel(ylabel)
        if log_scale:
            ax.set_yscale("log")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, ncol=1 + len(runs) // 12)
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


#: the prefix of a scheduled setting's value in a metrics record
SCHEDULED = "scheduled."


def scaled(records: list[dict[str, float]], names: list[str]) -> list[dict[str, float]]:
    """The records with each of `names` divided by its largest magnitude in them (a panel for all)."""
    top = {n: max((abs(r[n]) for r in records if n in r), default=0.0) or 1.0 for n in names}
    return [{**r, **{n: r[n] / top[n] for n in names if n in r}} for r in records]


def _curve(ax, records: list[dict[str, float]], metric: str, style: str, **options) -> None:
    """`metric` over the steps of the records that hold it; a lone point gets a marker, since a line
    through one point is not drawn."""
    points = [(r["step"], r[metric]) for r in records if metric in r]
    if points:
        ax.plot(*zip(*points), style, linewidth=1, marker="o" if len(points) == 1 else None, markersize=4, **options)


def new_figure(**subplots):
    """`plt.subplots(**subplots)` on the file-only Agg backend: no display needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(dpi=100, **subplots)


#: picture file suffixes and the format each one names
FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}


def picture_format(path: Path) -> str:
    """The format a picture's file name asks for; a UsageError for any other suffix."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise UsageError(f"{path}: pictures are written as {', '.join(FORMATS)}; give a file name ending in one")
    return fmt


def save_figure(fig, path: Path) -> Path:
    """Write a matplotlib figure in the format its suffix names, atomically, and free it."""
    import matplotlib.pyplot as plt

    try:
        fmt = picture_format(path)
        fig.tight_layout()
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt))
    finally:
        plt.close(fig)


def save_interpolation(
    path: Path, samples: torch.Tensor, steps: int, reference: torch.Tensor | None = None, title: str = ""
) -> Path | None:
    """Interpolation paths of `steps` samples each: one row of images per path, or for 2-D points
    each path drawn as a line of markers over the real points; None for other shapes."""
    if samples.ndim == 4 and samples.shape[1] in (1, 3):
        grid = image_grid(samples, columns=steps)
        grid = captioned(grid, title) if title else grid
        fmt = picture_format(path)
        return atomic_write(path, lambda tmp: grid.save(tmp, format=fmt.upper()))
    if samples.ndim != 2 or samples.shape[1] != 2:
        return None
    fig, ax = new_figure(figsize=(5, 5))
    if reference is not None:
        ref = reference.detach().float().cpu().numpy()
        ax.scatter(ref[:, 0], ref[:, 1], s=4, c="0.7", label="real")
    for i, row in enumerate(samples.detach().float().cpu().reshape(-1, steps, 2).numpy()):
        ax.plot(row[:, 0], row[:, 1], "o-", markersize=3, linewidth=1, label="paths" if i == 0 else None)
    ax.set_aspect("equal")
    ax.set_title("\n".join(textwrap.wrap(title, 64)), fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, fontsize=8, frameon=False)
    return save_figure(fig, path)


def save_samples(
    path: Path, fake: torch.Tensor, reference: torch.Tensor | None = None, title: str = "", labels: torch.Tensor | None = None
) -> Path | None:
    """A scatter plot for 2-D points, an image grid for (C, H, W) images; None for other shapes.
    With the samples' `labels`: points coloured by class, images in one labelled row per class."""
    if fake.ndim == 2 and fake.shape[1] == 2:
        return save_scatter(path, fake, reference, title, labels)
    if fake.ndim == 4 and fake.shape[1] in (1, 3):
        grid = image_grid(fake) if labels is None else class_rows(fake, labels)
        grid = captioned(grid, title) if title else grid
        fmt = picture_format(path)
        return atomic_write(path, lambda tmp: grid.save(tmp, format=fmt.upper()))
    return None

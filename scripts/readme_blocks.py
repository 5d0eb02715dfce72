"""Fill the README's (and the docs') generated blocks, so no figure there is typed by hand.

    python scripts/readme_blocks.py plugins              # the table of built-in plugins, from the registry
    python scripts/readme_blocks.py suite [LOG]          # runs the test suite (or reads its saved output), writes its count and time
    python scripts/readme_blocks.py study runs/studies/grid25 grid25   # a study's table and picture

Each writes between the markers `<!-- NAME:start -->` and `<!-- NAME:end -->`; the tests check
that the plugin table is the one this script writes now.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

from shared import README, ROOT, replace_block

STUDIES_PAGE = ROOT / "docs" / "guides" / "studies.md"


def plugin_table() -> str:
    """One row per built-in plugin (the `ganzoo` distribution), grouped by kind, from its summary."""
    import ganzoo

    rows = ["| plugin | kind | what it is |", "| --- | --- | --- |"]
    for kind in ("loss", "constraint", "generator", "critic", "dataset", "augment", "logger"):
        for info in ganzoo.list_plugins(kind):
            if info.distribution == "ganzoo":
                rows.append(f"| `{info.name}` | {kind} | {info.summary.replace('|', '/')} |")
    return "\n".join(rows)


SUITE = [sys.executable, "-m", "pytest", "-q", "-n", "auto", "--dist", "loadfile", "-p", "no:cacheprovider", "--durations=0"]


def suite(log: Path | None = None) -> str:
    """Run the suite as the README says (or read the output of such a run) and describe what it ran
    and how long it took."""
    output = log.read_text() if log else subprocess.run(SUITE, cwd=ROOT, capture_output=True, text=True).stdout
    summaries = [line.strip("= ") for line in output.splitlines() if re.search(r"\d+ passed.* in [\d.]+s", line)]
    if not summaries or re.search(r"\d+ (failed|errors?)\b", summaries[-1]):
        sys.exit(f"readme_blocks: no green pytest summary in the suite's output ({summaries[-1] if summaries else 'none'})")
    summary = summaries[-1]
    minutes = float(re.search(r" in ([\d.]+)s", summary).group(1)) / 60
    durations = re.findall(r"^([\d.]+)s (?:call|setup|teardown)\s+tests/(test_\w+)\.py", output, re.M)
    per_file: dict[str, float] = {}
    for seconds, module in durations:
        per_file[module] = per_file.get(module, 0.0) + float(seconds)
    slowest = ", ".join(f"`{m}` {s / 60:.1f} min" for m, s in sorted(per_file.items(), key=lambda x: -x[1])[:5])
    return (
        f"The suite, measured by `python scripts/readme_blocks.py suite` on {date.today():%Y-%m-%d} ({platform.machine()}, "
        f"2 cores, CPU only): {summary.split(' in ')[0]}, {minutes:.1f} minutes with one test file per core. It trains "
        f"many small runs, starts runs of two processes, an Optuna study with a PostgreSQL server, every command and "
        f"Python block of the docs (a few steps each) and every experiment script in a smoke mode. The slowest files "
        f"(`pytest --durations`, time summed over both cores): {slowest}."
    )


def study(folder: Path, name: str) -> tuple[str, Path]:
    """A study's report table and picture, the picture copied into docs/images."""
    table = (folder / "report" / "report.md").read_text().strip()
    picture = ROOT / "docs" / "images" / f"study-{name}.png"
    shutil.copyfile(folder / "report" / "best-vs-trials.png", picture)
    return table, picture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["plugins", "suite", "study"])
    parser.add_argument("folder", nargs="?", type=Path, help="study: the study folder; suite: the saved output of a run of SUITE to read instead")
    parser.add_argument("name", nargs="?", help="study: the name of its blocks (study-NAME)")
    args = parser.parse_args()
    if args.what == "plugins":
        replace_block("plugins", plugin_table())
    elif args.what == "suite":
        replace_block("suite", suite(args.folder))
    else:
        table, picture = study(args.folder, args.name)
        for page, block in ((README, f"study-{args.name}"), (STUDIES_PAGE, f"study-{args.name}-page")):
            where = Path(os.path.relpath(picture, page.parent)).as_posix()
            replace_block(block, f"{table}\n\n![best value found against the number of trials]({where})", page)


if __name__ == "__main__":
    main()

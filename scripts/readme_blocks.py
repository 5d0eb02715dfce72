"""Fill the README's (and the docs') generated blocks, so no figure there is typed by hand.

    python scripts/readme_blocks.py plugins              # the table of built-in plugins, from the registry
    python scripts/readme_blocks.py suite [LOG]          # runs the test suite (or reads its saved output), writes its count and time
    python scripts/readme_blocks.py study runs/studies/grid25 grid25   # a study's table and picture
    python scripts/readme_blocks.py times [PAGE ...]     # runs the pages' commands at full length, writes their times
    python scripts/readme_blocks.py tour                 # runs the tour's grid25 line, writes what its generator covers

The first three write between the markers `<!-- NAME:start -->` and `<!-- NAME:end -->`; the tests
check that the plugin table is the one this script writes now. `times` runs every block of each
page in order, as written, in a fresh folder (two pages at a time, one CPU thread per process),
records each command's wall time in docs/command-times.json and writes `~T` into the comment of
each command that took 10 s or more. Without PAGE it runs the pages with a command it has not
timed yet (a new or edited one): the tests fail until it has.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import date
from multiprocessing import get_context
from pathlib import Path

import torch

from docs_pages import PAGES, TIMES, blocks, commands, lines, relative, with_times
from shared import README, ROOT, atomic_write, replace_block

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
    if log:
        output = log.read_text()
    else:
        before = f" load average: {os.getloadavg()[0]:.2f}\n"
        output = before + subprocess.run(SUITE, cwd=ROOT, capture_output=True, text=True).stdout
        output += f" load average: {os.getloadavg()[0]:.2f}\n"
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
        f"2 cores, CPU only{load(output)}): {summary.split(' in ')[0]}, {minutes:.1f} minutes with one test file per core. It trains "
        f"many small runs, starts runs of two processes, an Optuna study with a PostgreSQL server, every command and "
        f"Python block of the docs (a few steps each) and every experiment script in a smoke mode. The slowest files "
        f"(`pytest --durations`, time summed over both cores): {slowest}."
    )


def load(output: str) -> str:
    """'; load average 3.1 when it started and 2.4 when it ended, ...' from the `uptime` lines
    around a suite's output (the machine's 1-minute load, 2 on 2 busy cores); '' where it has none."""
    found = re.findall(r"load average: ([\d.]+)", output)
    if len(found) < 2:
        return ""
    start, end = found[0], found[-1]
    return f"; load average {start} when it started and {end} when it ended, where 2.0 keeps both cores busy"


def study(folder: Path, name: str) -> tuple[str, Path]:
    """A study's report table and picture, the picture copied into docs/images."""
    table = (folder / "report" / "report.md").read_text().strip()
    picture = ROOT / "docs" / "images" / f"study-{name}.png"
    shutil.copyfile(folder / "report" / "best-vs-trials.png", picture)
    return table, picture


def time_page(page: Path) -> dict[str, float]:
    """Run the page's blocks in order, as written, in a fresh folder: each command line's wall time."""
    folder = Path(tempfile.mkdtemp(prefix="ganzoo-times-"))
    os.chdir(folder)
    tempfile.tempdir = str(folder)  # what a Python block writes with tempfile lands here too
    os.environ["OMP_NUM_THREADS"] = "1"  # the page's commands, and its Python blocks in this process
    torch.set_num_threads(1)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    namespace: dict = {"__name__": page.stem.replace("-", "_")}
    measured: dict[str, float] = {}
    for number, block in enumerate(blocks(page), 1):
        if block.skip:
            continue
        if block.language == "python":
            exec(compile(block.body, f"{page.name}, block {number}", "exec"), namespace)
        elif block.language == "bash":
            failing = [argv for argv, error in commands(block.body) if error]
            for line in lines(block.body):
                began = time.perf_counter()
                done = subprocess.run(["bash", "-c", line.command], env=env, capture_output=True, text=True)
                measured[line.command] = round(time.perf_counter() - began, 1)
                if (done.returncode != 0) != (shlex.split(line.command) in failing):
                    raise SystemExit(f"readme_blocks: {relative(page)}: `{line.command}` exited {done.returncode}: {done.stderr[-1000:]}")
                print(f"{relative(page)}: {measured[line.command]:7.1f} s  {line.command}", file=sys.stderr, flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    return measured


def untimed(record: dict) -> list[Path]:
    """The pages with a command line that the record has no time for."""
    return [page for page in PAGES for block in blocks(page) if block.language == "bash" and not block.skip
            if any(line.command not in record["pages"].get(relative(page), {}) for line in lines(block.body))]  # fmt: skip


def times(pages: list[Path]) -> None:
    """Time the pages' commands (two pages at a time), keep each page's times as soon as it is done,
    and write every long command's time into its comment."""
    record = json.loads(TIMES.read_text()) if TIMES.exists() else {"pages": {}}
    pages = list(dict.fromkeys(page.resolve() for page in pages or untimed(record)))
    record["measured"] = (f"{date.today():%Y-%m-%d}, {platform.machine()}, {os.cpu_count()} cores, CPU only, two pages at a "
                          f"time, one CPU thread per process, by python scripts/readme_blocks.py times")  # fmt: skip
    with ProcessPoolExecutor(2, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool:  # a fresh process per page
        running = {pool.submit(time_page, page): page for page in pages}
        for done in as_completed(running):
            record["pages"][relative(running[done])] = done.result()
            atomic_write(TIMES, lambda tmp: tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n"))
    for page in PAGES:
        text = page.read_text()
        new = with_times(text, record["pages"].get(relative(page), {}))
        if new != text:
            atomic_write(page, lambda tmp: tmp.write_text(new))


#: the tour's first training: the README line that writes this folder
TOUR_RUN = "runs/grid25"


def tour() -> str:
    """Runs the README tour's grid25 training as written (one CPU thread, a fresh folder), and the
    same with the -log D loss alone, and says what each generator covers (`ganzoo evaluate`)."""
    import ganzoo

    (argv,) = [argv for block in blocks(README) if block.language == "bash" for argv, _ in commands(block.body)
               if argv[:2] == ["ganzoo", "train"] and TOUR_RUN in argv and argv[argv.index(TOUR_RUN) - 1] == "--out"]  # fmt: skip
    objective = {"--loss", "--constraint"}
    plain = [a for i, a in enumerate(argv) if a not in objective and argv[i - 1] not in objective]
    covered = []
    for run in (argv, [*plain, "--loss", "nonsaturating"]):
        with tempfile.TemporaryDirectory() as scratch:
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            subprocess.run([sys.executable, "-m", "ganzoo", *run[1:], "--quiet"], cwd=scratch, env=env, check=True)
            data = run[run.index("--data") + 1]
            covered.append(ganzoo.evaluate(ganzoo.load_generator(Path(scratch) / TOUR_RUN / "generator.safetensors"), data))
    ours, plain_scores = covered
    return (f"That run covers **{ours['modes']} of the {ours['modes_total']} modes** ({ours['high_quality']:.1f}% of its "
            f"samples lie within three standard deviations of one: they have found the modes, not yet settled on them); "
            f"the same run with the -log D loss alone (`--loss nonsaturating`, no penalty) covers "
            f"{plain_scores['modes']}. Measured (`ganzoo evaluate`, seed 0) by `python scripts/readme_blocks.py tour` on "
            f"{date.today()} ({platform.machine()}, one CPU thread).")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["plugins", "suite", "study", "times", "tour"])
    parser.add_argument("folder", nargs="?", type=Path, help="study: the study folder; suite: the saved output of a run of SUITE to read instead")
    parser.add_argument("name", nargs="?", help="study: the name of its blocks (study-NAME)")
    parser.add_argument("pages", nargs="*", type=Path, help="times: the pages to time [default: those with an untimed command]")
    args = parser.parse_args()
    if args.what == "times":
        times([Path(path) for path in (args.folder, args.name, *args.pages) if path])
    elif args.what == "plugins":
        replace_block("plugins", plugin_table())
    elif args.what == "suite":
        replace_block("suite", suite(args.folder))
    elif args.what == "tour":
        replace_block("tour-grid25", tour())
    else:
        table, picture = study(args.folder, args.name)
        for page, block in ((README, f"study-{args.name}"), (STUDIES_PAGE, f"study-{args.name}-page")):
            where = Path(os.path.relpath(picture, page.parent)).as_posix()
            replace_block(block, f"{table}\n\n![best value found against the number of trials]({where})", page)


if __name__ == "__main__":
    main()

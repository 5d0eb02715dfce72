"""`ganzoo study report DIR`: the table, the picture and the CSV of a study, from its storage.

Per objective: the best value found and the best trial's settings, the mean and standard
deviation of the final re-runs of those settings (one per seed, as Lucic et al. 2018 report),
trials done, pruned and failed, and CPU hours. The picture is Lucic et al.'s: the best value
found against the number of trials, as the mean over bootstrap resamples of the completed
trials' values with a 90% band. Pruned trials have no final value and are left out of it.
"""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import atomic_write
from .errors import UsageError
from .study import FINAL, REPORT, Space, load, open_storage, shown, storage_url

#: bootstrap resamples behind each point of the picture
RESAMPLES = 1000


@dataclass
class Row:
    objective: str
    done: int
    pruned: int
    failed: int
    best: float | None
    params: dict[str, Any]
    finals: list[float]
    cpu_hours: float

    def final_text(self, seeds: int) -> str:
        if not self.finals:
            return "pending"
        spread = f" ± {statistics.stdev(self.finals):.4g}" if len(self.finals) > 1 else ""
        return f"{statistics.fmean(self.finals):.4g}{spread} ({len(self.finals)} of {seeds} seeds)"


def trials_by_objective(folder: Path, url: str | None) -> tuple[Space, dict[str, list[Any]], dict[str, list[Any]]]:
    """The study's space and, per objective, its search trials and its final re-runs (FrozenTrials)."""
    import optuna
    from sqlalchemy.engine import make_url

    space, _ = load(folder)
    url = storage_url(folder, url)
    absent = url.startswith("sqlite") and not Path(make_url(url).database).is_file()  # opening it would make it
    storage = None if absent else open_storage(url, space)
    names = set() if absent else {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    if not names & set(space.objectives):  # a report of nothing never replaces one of something
        raise UsageError(f"the storage {shown(url)} holds no trial of this study; run it with ganzoo study run {folder}, "
                         "or pass the --storage it ran with")  # fmt: skip

    def trials(name: str) -> list[Any]:
        if name not in names:
            return []
        found = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
        return [t for t in found if not t.user_attrs.get("ganzoo_surplus")]

    return space, {o: trials(o) for o in space.objectives}, {o: trials(o + FINAL) for o in space.objectives}


def rows(space: Space, searches: dict[str, list[Any]], finals: dict[str, list[Any]]) -> list[Row]:
    from optuna.trial import TrialState

    out = []
    for name, trials in searches.items():
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        pick = max if space.direction == "maximize" else min
        best = pick(complete, key=lambda t: t.value) if complete else None
        retried = {t.system_attrs.get("failed_trial") for t in trials if "failed_trial" in t.system_attrs}
        failed = [t for t in trials if t.state == TrialState.FAIL and t.number not in retried]
        seconds = sum(t.user_attrs.get("cpu_seconds", 0.0) for t in [*trials, *finals[name]])
        out.append(Row(
            objective=name, done=len(complete), pruned=sum(t.state == TrialState.PRUNED for t in trials), failed=len(failed),
            best=None if best is None else best.value, params={} if best is None else best.params,
            finals=[t.value for t in finals[name] if t.state == TrialState.COMPLETE], cpu_hours=seconds / 3600,
        ))  # fmt: skip
    return out


def markdown(space: Space, table: list[Row]) -> str:
    header = ("objective", f"best {space.metric}", "best settings, re-run with each seed: mean ± std", "settings",
              "trials done / pruned / failed", "CPU hours")  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in table:
        best = "-" if row.best is None else f"{row.best:.4g}"
        settings = ", ".join(f"{k} {_short(v)}" for k, v in row.params.items()) or "-"
        lines.append(f"| `{row.objective}` | {best} | {row.final_text(len(space.seeds))} | {settings} | "
                     f"{row.done} / {row.pruned} / {row.failed} | {row.cpu_hours:.2f} |")  # fmt: skip
    return "\n".join(lines)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def best_after(values: list[float], maximize: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For k = 1..len(values) trials: the mean best value of k trials drawn from `values` with
    replacement, and its 5% and 95% quantiles (Lucic et al.'s estimate of a budget's best)."""
    rng = np.random.default_rng(seed)
    draws = rng.choice(np.asarray(values, dtype=float), size=(RESAMPLES, len(values)))
    running = np.maximum.accumulate(draws, axis=1) if maximize else np.minimum.accumulate(draws, axis=1)
    return running.mean(0), np.quantile(running, 0.05, axis=0), np.quantile(running, 0.95, axis=0)


def picture(space: Space, searches: dict[str, list[Any]], path: Path) -> Path:
    from optuna.trial import TrialState

    from .pictures import new_figure, save_figure

    fig, ax = new_figure(figsize=(6.5, 4))
    for name, trials in searches.items():
        values = [t.value for t in trials if t.state == TrialState.COMPLETE]
        if not values:
            continue
        mean, low, high = best_after(values, space.direction == "maximize")
        k = np.arange(1, len(values) + 1)
        (line,) = ax.plot(k, mean, label=name)
        ax.fill_between(k, low, high, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("trials (random search, bootstrap over the completed trials)")
    ax.set_ylabel(f"best {space.metric} found")
    ax.set_title(f"{space.data}: best {space.metric} against the search budget (mean and 90% band)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def trials_csv(searches: dict[str, list[Any]], finals: dict[str, list[Any]]) -> str:
    records = []
    for kind, groups in (("search", searches), ("final", finals)):
        for name, trials in groups.items():
            for t in trials:
                records.append({"objective": name, "kind": kind, "trial": t.number, "state": t.state.name,
                                "value": t.value, "seed": t.user_attrs.get("ganzoo_seed", ""),
                                "cpu_seconds": t.user_attrs.get("cpu_seconds", ""), "run": t.user_attrs.get("run", ""),
                                **{f"param:{k}": v for k, v in t.params.items()}})  # fmt: skip
    columns = list(dict.fromkeys(key for record in records for key in record))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


def report(folder: Path, url: str | None = None) -> dict[str, Path]:
    """Write DIR/report/: report.md (the table), best-vs-trials.png and trials.csv; returns their paths."""
    out = folder / REPORT
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is not a folder; the report is written there: move it away")
    space, searches, finals = trials_by_objective(folder, url)
    table = rows(space, searches, finals)
    written = {
        "table": atomic_write(out / "report.md", lambda tmp: tmp.write_text(markdown(space, table) + "\n")),
        "picture": picture(space, searches, out / "best-vs-trials.png"),
        "csv": atomic_write(out / "trials.csv", lambda tmp: tmp.write_text(trials_csv(searches, finals))),
    }
    return written

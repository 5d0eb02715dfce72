"""Studies: every objective given a hyperparameter search of the same size, as Lucic et al. 2018
("Are GANs Created Equal?") compare them. Optuna is the engine; ganzoo writes the glue.

A study folder holds the space file (space.toml), the default storage (study.db, SQLite) and one
ordinary run folder per trial (trials/OBJECTIVE-NNN) and per final re-run (finals/OBJECTIVE-seedS).
Each objective is an Optuna study of its own, named by the objective, in the storage: the same
number of trials for each, queued when the storage first meets the space (random search samples
them there, from the space's seed, so any number of workers runs the same study; TPE samples as
the workers go). A worker takes the next queued trial of the objective with the fewest done, sends
Optuna a heartbeat while it trains, and reports the dataset's own figure (or FID) to prune on. A
worker killed outright stops sending heartbeats: once its grace period has passed, the next worker
marks its trial failed, Optuna's RetryHeartbeatStaleTrialCallback queues it again with its parameters, and
that worker resumes the trial's run folder from its newest checkpoint. When an objective's search is
done, its best settings are queued once more for each of the study's seeds: the final re-runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
import json
import math
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .config import PluginSpec, tomllib
from .errors import ConfigError, GanzooError, Interrupted, UsageError

SPACE, DATABASE, TRIALS, FINALS, REPORT = "space.toml", "study.db", "trials", "finals", "report"
#: the suffix of an objective's Optuna study of final re-runs
FINAL = ":final"
#: times a trial is queued again after its worker died or was stopped
MAX_RETRY = 3


class Range(BaseModel):
    """A numeric range: floats (log scale with log = true) or integers (when low and high are)."""

    model_config = ConfigDict(extra="forbid")
    low: float
    high: float
    log: bool = False
    step: float | None = None

    @model_validator(mode="after")
    def _ordered(self):
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scale range needs low > 0")
        return self


class Choice(BaseModel):
    """A categorical choice among values (numbers, strings, or lists such as Adam's betas)."""

    model_config = ConfigDict(extra="forbid")
    choices: list[Any] = Field(min_length=1)


class Objective(BaseModel):
    """One objective to compare: a loss with its constraints (and any other settings), and its space:
    setting -> range or choice; a plugin's option is named by its place, e.g. constraints.0.weight."""

    model_config = ConfigDict(extra="forbid")
    loss: str
    constraints: list[str] = Field(default_factory=list)
    settings: dict[str, Any] = Field(default_factory=dict, description="further TrainConfig settings")
    space: dict[str, Range | Choice] = Field(default_factory=dict)


class Space(BaseModel):
    """A study's space file: the data and networks, the objectives with their spaces, the budget,
    the metric and the sampler."""

    model_config = ConfigDict(extra="forbid")
    data: str
    generator: str | None = None
    critic: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict, description="TrainConfig settings every trial shares")
    steps: int = Field(gt=0, description="generator steps per trial")
    trials: int = Field(gt=0, le=10_000, description="trials per objective")
    seeds: list[int] = Field([0], min_length=1, description="the search's seed (the first) and the final re-runs'")
    metric: str = Field(description="a figure of the dataset's evaluation (high_quality, frechet, ...) or fid")
    direction: Literal["maximize", "minimize"]
    sampler: Literal["random", "tpe"] = "random"
    pruner: Literal["none", "median", "hyperband"] = "median"
    eval_every: int | None = Field(None, gt=0, description="steps between the evaluations a pruner sees (none: no pruning)")
    pruner_startup: int = Field(5, ge=0, description="trials of an objective the median pruner sees through before it prunes")
    heartbeat: int = Field(10, gt=0, le=3600, description="seconds between a worker's heartbeats")
    grace: int = Field(60, gt=0, le=86_400, description="seconds without a heartbeat before a trial's worker counts as dead")
    objectives: dict[str, Objective] = Field(min_length=1)

    @field_validator("objectives")
    @classmethod
    def _names(cls, objectives: dict[str, Objective]) -> dict[str, Objective]:
        bad = [name for name in objectives if not name.replace("-", "").replace("_", "").isalnum() or FINAL in name]
        if bad:
            raise ValueError(f"objective names are letters, digits, - and _; got {', '.join(map(repr, bad))}")
        return objectives


def read_space(path: Path) -> Space:
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read the space file {path}: {exc.strerror}") from None
    try:
        return Space.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise UsageError(f"{path}: {where}: {first['msg'].removeprefix('Value error, ')}") from None


def space_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the settings of one trial ---------------------------------------------------------------------


def suggest(trial: Any, space: dict[str, Range | Choice]) -> dict[str, Any]:
    """Each setting of `space` drawn through Optuna's trial (fixed where the trial was queued with them)."""
    drawn = {}
    for name, dimension in space.items():
        if isinstance(dimension, Choice):  # Optuna's choices are scalars: lists travel as JSON
            encoded = [json.dumps(c) if isinstance(c, list) else c for c in dimension.choices]
            value = trial.suggest_categorical(name, encoded)
            drawn[name] = json.loads(value) if isinstance(value, str) and value.startswith("[") else value
        elif float(dimension.low).is_integer() and float(dimension.high).is_integer() and not dimension.log and dimension.step in (None, 1):
            drawn[name] = trial.suggest_int(name, int(dimension.low), int(dimension.high))
        else:
            drawn[name] = trial.suggest_float(name, dimension.low, dimension.high, log=dimension.log, step=dimension.step)
    return drawn


def trial_config(space: Space, name: str, params: dict[str, Any], seed: int, out: Path) -> dict[str, Any]:
    """The TrainConfig of one trial of objective `name` with `params`: an ordinary run in `out`."""
    objective = space.objectives[name]
    config: dict[str, Any] = {
        **space.settings, **objective.settings, "loss": objective.loss, "constraints": list(objective.constraints),
        "data": space.data, "steps": space.steps, "seed": seed, "threads": 1, "out": str(out),
        "checkpoint_every": max(1, space.steps // 10), "keep_checkpoints": 2,
    }  # fmt: skip
    for role in ("generator", "critic"):
        if getattr(space, role):
            config.setdefault(role, getattr(space, role))
    if space.eval_every:
        config.update(eval_every=space.eval_every, eval_metrics=["fid" if space.metric == "fid" else "data"])
    for path, value in params.items():
        place(config, path, value)
    return config


def place(config: dict[str, Any], path: str, value: Any) -> None:
    """Set a setting (lr), or a plugin's option by its place (loss.sigma, constraints.0.weight)."""
    role, _, option = path.partition(".")
    if not option:
        config[role] = value
        return
    holder, _, index = option.partition(".")
    specs = config.get(role)
    if role == "constraints":
        if not holder.isdigit() or int(holder) >= len(specs or []):
            raise UsageError(f"space setting '{path}': constraints.N.OPTION names the Nth constraint (from 0) of the objective")
        specs[int(holder)] = with_option(specs[int(holder)], index, value)
    elif role in ("loss", "generator", "critic", "data", "augment") and specs is not None:
        config[role] = with_option(specs, option, value)
    else:
        raise UsageError(f"space setting '{path}': give a setting (lr) or ROLE.OPTION (loss.sigma, critic.width)")


def with_option(spec: str | dict[str, Any], option: str, value: Any) -> dict[str, Any]:
    parsed = PluginSpec.model_validate(spec)
    return {"name": parsed.name, "options": {**parsed.options, option: value}}


# -- the storage -------------------------------------------------------------------------------------


def storage_url(folder: Path, url: str | None) -> str:
    return url or f"sqlite:///{(folder / DATABASE).resolve()}"


def shown(url: str) -> str:
    """A storage URL as it may be printed: without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy reads: show its scheme only
        return url.split("://", 1)[0] + "://..."


def quiet_optuna() -> None:
    """Optuna's INFO lines and its warnings that heartbeats are experimental: a study prints its own lines."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def open_storage(url: str, space: Space):
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    quiet_optuna()
    try:
        return optuna.storages.RDBStorage(
            url, heartbeat_interval=space.heartbeat, grace_period=space.grace,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
            # SQLite: several workers' writes wait for each other's locks instead of failing
            engine_kwargs={"pool_pre_ping": True, **({"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {})},
        )  # fmt: skip
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise UsageError(f"cannot open the study storage {shown(url)}: {reason}") from None


def sampler(space: Space, seed: int | None):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed) if space.sampler == "random" else optuna.samplers.TPESampler(seed=seed)


def pruner(space: Space):
    import optuna

    if space.pruner == "none" or not space.eval_every:
        return optuna.pruners.NopPruner()
    if space.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=space.eval_every, max_resource=space.steps)
    return optuna.pruners.MedianPruner(n_startup_trials=space.pruner_startup, n_warmup_steps=space.eval_every)


def ensure_studies(space: Space, digest: str, storage: Any) -> None:
    """Create each objective's Optuna study in the storage and queue its trials, once: creating a
    study is atomic in the database, so of several workers meeting a new storage one queues."""
    import optuna

    for name in space.objectives:
        try:
            study = optuna.create_study(study_name=name, storage=storage, direction=space.direction, load_if_exists=False)
        except optuna.exceptions.DuplicatedStudyError:
            check_space(optuna.load_study(study_name=name, storage=storage), digest, storage)
            continue
        study.set_user_attr("ganzoo_space_sha256", digest)
        if space.sampler == "random":  # sampled here from the seed: the same study whatever the workers
            scratch = optuna.create_study(sampler=sampler(space, space.seeds[0] + sorted(space.objectives).index(name)))
            for _ in range(space.trials):
                trial = scratch.ask()
                suggest(trial, space.objectives[name].space)
                study.enqueue_trial(trial.params, skip_if_exists=False)
        else:
            for _ in range(space.trials):
                study.enqueue_trial({}, skip_if_exists=False)


def check_space(study: Any, digest: str, storage: Any) -> None:
    if study.user_attrs.get("ganzoo_space_sha256") != digest:
        raise UsageError(
            f"the storage {shown(storage.url)} holds study '{study.study_name}' of another space file than this "
            "folder's space.toml; use a new folder and storage, or the space file the study was created with"
        )


# -- workers -------------------------------------------------------------------------------------------


@dataclass
class Worker:
    folder: Path
    space: Space
    url: str
    quiet: bool = False  # True: not even a line per trial
    ran: list[str] = field(default_factory=list)

    def run(self) -> None:
        """Trials until every objective's search and final re-runs are done, resuming any trial a
        dead worker left behind."""
        storage = open_storage(self.url, self.space)
        while True:
            job = self.next_job(storage)
            if job is None:
                return
            if job == "wait":  # others are training the last trials: one may die and need us
                threading.Event().wait(self.space.heartbeat)
                continue
            self.run_trial(storage, *job)

    def studies(self, storage: Any) -> list[Any]:
        import optuna

        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        return [optuna.load_study(study_name=n, storage=storage, sampler=sampler(self.space, None), pruner=pruner(self.space))
                for n in sorted(names) if n.removesuffix(FINAL) in self.space.objectives]  # fmt: skip

    def next_job(self, storage: Any) -> tuple[Any, Any] | str | None:
        """(study, trial) to run next: the objective with the fewest trials done first; "wait" when
        none is queued but some still run; None when the whole study is done."""
        from optuna.storages import fail_stale_trials
        from optuna.trial import TrialState

        running = False
        studies = self.studies(storage)
        for study in studies:
            fail_stale_trials(study)  # a dead worker's trial: failed, and queued again by the callback
        searches = [s for s in studies if not s.study_name.endswith(FINAL)]
        for study in searches:
            self.queue_finals(study, storage)
        studies = self.studies(storage)
        order = sorted(studies, key=lambda s: len(s.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))))
        for study in order:
            states = [t.state for t in study.get_trials(deepcopy=False)]
            running |= TrialState.RUNNING in states
            if TrialState.WAITING in states:
                trial = study.ask()
                if {"fixed_params", "failed_trial"} & frozen(study, trial).system_attrs.keys():
                    return study, trial
                # another worker took the last queued trial first: this one was made anew
                trial.set_user_attr("ganzoo_surplus", True)
                study.tell(trial, state=TrialState.FAIL)
        return "wait" if running else None

    def queue_finals(self, search: Any, storage: Any) -> None:
        """Once a search is done, its best settings again with each seed: created once (atomically)."""
        import optuna
        from optuna.trial import TrialState

        trials = search.get_trials(deepcopy=False)
        if any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in trials):
            return
        if not any(t.state == TrialState.COMPLETE for t in trials):
            return
        try:
            finals = optuna.create_study(study_name=search.study_name + FINAL, storage=storage,
                                         direction=self.space.direction, load_if_exists=False)  # fmt: skip
        except optuna.exceptions.DuplicatedStudyError:
            return
        best = search.best_trial
        finals.set_user_attr("ganzoo_best_trial", best.number)
        for seed in self.space.seeds:
            finals.enqueue_trial(best.params, user_attrs={"ganzoo_seed": seed}, skip_if_exists=False)

    def run_trial(self, storage: Any, study: Any, trial: Any) -> None:
        import optuna
        from optuna.storages import RetryHeartbeatStaleTrialCallback
        from optuna.trial import TrialState

        name = study.study_name.removesuffix(FINAL)
        final = study.study_name.endswith(FINAL)
        params = suggest(trial, self.space.objectives[name].space)
        original = RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen(study, trial))
        number = trial.number if original is None else original
        seed = trial.user_attrs.get("ganzoo_seed", self.space.seeds[0])
        out = self.folder / (FINALS if final else TRIALS) / (f"{name}-seed{seed}" if final else f"{name}-{number:03d}")
        trial.set_user_attr("run", str(out.relative_to(self.folder)))
        pruned = False

        def report(step: int, record: dict[str, float]) -> bool:
            nonlocal pruned
            if self.space.metric in record and math.isfinite(record[self.space.metric]) and not final:
                trial.report(record[self.space.metric], step)
                pruned = trial.should_prune()
            return pruned

        import ganzoo
        from .loop import checkpoints_in

        try:
            with heartbeat(storage, trial._trial_id, self.space.heartbeat):
                config = trial_config(self.space, name, params, seed, out)
                resume = bool(checkpoints_in(out))
                if resume:
                    result = ganzoo.train({"steps": self.space.steps}, resume=out, quiet=True, on_evaluation=report)
                else:
                    result = ganzoo.train(config, quiet=True, on_evaluation=report)
                value = measure(self.space, result.generator_path)
        except Interrupted:
            if pruned:
                study.tell(trial, state=TrialState.PRUNED)
                if not self.quiet:
                    print(f"ganzoo: study: {out.name} pruned at step {trial_steps(out):,}", flush=True)
                return
            # Ctrl-C: failed now and queued again, so the next worker resumes it from its checkpoint
            study.tell(trial, state=TrialState.FAIL)
            RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)(study, frozen(study, trial))
            raise
        except GanzooError as exc:
            trial.set_user_attr("error", str(exc))
            study.tell(trial, state=TrialState.FAIL)
            print(f"ganzoo: study: {out.name} failed: {exc}", file=sys.stderr)
            return
        try:
            trial.set_user_attr("cpu_seconds", cpu_seconds(out))
            study.tell(trial, value)
        except optuna.exceptions.UpdateFinishedTrialError:
            # its heartbeats were late past the grace period (a loaded machine, a locked database): another
            # worker failed the trial and queued it again; that retry resumes this finished run folder
            print(f"ganzoo: study: {out.name} was taken over after missed heartbeats; raise 'grace' in the space "
                  f"file above {self.space.grace} s if this machine is busy", file=sys.stderr)  # fmt: skip
            return
        self.ran.append(out.name)
        if not self.quiet:
            settings = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in params.items())
            print(f"ganzoo: study: {out.name}: {self.space.metric} {value:.4g}" + (f" ({settings})" if settings else ""),
                  flush=True)  # fmt: skip


def frozen(study: Any, trial: Any) -> Any:
    """The stored record of a trial (its system attributes: queued with what, retried from which)."""
    return next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)


def measure(space: Space, generator_path: Path) -> float:
    """The trial's value: the metric of its final generator, as `ganzoo evaluate` scores it (seed 0)."""
    import ganzoo

    generator = ganzoo.load_generator(generator_path)
    metrics = ganzoo.evaluate(generator, space.data, metrics=["fid"] if space.metric == "fid" else None)
    if space.metric not in metrics or not isinstance(metrics[space.metric], (int, float)):
        figures = ", ".join(k for k, v in metrics.items() if isinstance(v, (int, float)))
        raise UsageError(f"the study's metric '{space.metric}' is not among {space.data}'s figures: {figures}")
    return float(metrics[space.metric])


def trial_steps(run: Path) -> int:
    """The step a run's log reached."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1])["step"] if lines else 0


def cpu_seconds(run: Path) -> float:
    """The run's CPU time, from its log."""
    total, previous = 0.0, 0
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        total += record.get("cpu_sec_per_step", 0.0) * (record["step"] - previous)
        previous = record["step"]
    return total


@contextlib.contextmanager
def heartbeat(storage: Any, trial_id: int, seconds: int):
    """Optuna's heartbeat for a trial this worker runs, from a thread of its own."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(seconds):
            with contextlib.suppress(Exception):  # a missed beat is a warning's worth, not a failure
                storage.record_heartbeat(trial_id)

    storage.record_heartbeat(trial_id)
    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


# -- the commands ----------------------------------------------------------------------------------


def create(folder: Path, space_file: Path) -> Path:
    """A new study folder from a space file (checked, and every setting checked against a plan)."""
    space = read_space(space_file)
    if folder.exists() and any(folder.iterdir()):
        raise UsageError(f"{folder} exists and is not empty; a study gets a folder of its own")
    from .loop import plan

    for name, objective in space.objectives.items():  # every objective's settings, before a trial runs
        draws = {k: (d.choices[0] if isinstance(d, Choice) else d.low) for k, d in objective.space.items()}
        try:
            plan({k: v for k, v in trial_config(space, name, draws, space.seeds[0], folder).items() if k != "out"})
        except GanzooError as exc:
            raise UsageError(f"{space_file}: objective '{name}': {exc}") from None
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(space_file, folder / SPACE)
    return folder


def load(folder: Path) -> tuple[Space, str]:
    path = folder / SPACE
    if not path.is_file():
        raise UsageError(f"{folder} is not a study folder (no {SPACE}); make one with ganzoo study create {folder} --space FILE")
    return read_space(path), space_digest(path)


def run(folder: Path, url: str | None = None, workers: int = 1, quiet: bool = False) -> None:
    """Work through the study: this process, or `workers` processes each on one CPU thread."""
    space, digest = load(folder)
    url = storage_url(folder, url)
    storage = open_storage(url, space)
    ensure_studies(space, digest, storage)
    if workers == 1:
        Worker(folder, space, url, quiet).run()
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # each sets its own thread count before torch runs
    processes = [context.Process(target=_work, args=(folder, url, quiet)) for _ in range(workers)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:  # the workers got it too: each leaves its trial resumable
        for process in processes:
            process.join()
        raise
    failed = [p.exitcode for p in processes if p.exitcode]
    if failed:
        raise GanzooError(f"{len(failed)} of {workers} study workers failed (exit {failed[0]}); run the study again to go on")


def _work(folder: Path, url: str, quiet: bool) -> None:
    import torch

    torch.set_num_threads(1)
    space, _ = load(folder)
    try:
        Worker(folder, space, url, quiet).run()
    except KeyboardInterrupt:
        sys.exit(130)
    except GanzooError as exc:
        print(f"ganzoo: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)

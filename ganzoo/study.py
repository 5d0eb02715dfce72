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
import fcntl
import hashlib
import warnings
import json
import math
import os
import shutil
import signal
import stat
import sys
import threading
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (AfterValidator, BaseModel, ConfigDict, Discriminator, Field, StrictBool, StrictFloat, StrictInt,
                      StrictStr, Tag, ValidationError, field_validator, model_validator)

from .config import MAX_CONFIG_BYTES, PluginSpec, TrainConfig, tomllib
from .errors import ConfigError, GanzooError, Interrupted, UsageError, shortened
from .run_folder import LOCK_FILE

SPACE, DATABASE, TRIALS, FINALS, REPORT = "space.toml", "study.db", "trials", "finals", "report"
#: the folder's note of its storage, when not DIR/study.db (without a password)
STORAGE = "storage.url"
#: the suffix of an objective's Optuna study of final re-runs
FINAL = ":final"
#: times a trial is queued again after its worker died or was stopped
MAX_RETRY = 3


#: the largest space file read, as for configs: a space is a few kilobytes; more is a mistake
MAX_SPACE_BYTES = MAX_CONFIG_BYTES
#: objectives in one study, and values in one choice: each is planned at create
MAX_OBJECTIVES, MAX_CHOICES = 100, 100
#: settings each trial's run gets from the study: its folder, seed, budget, checkpoints and evaluations
OWNED = {"out": "each trial's folder", "resume": "each trial's folder", "seed": "the space's seeds",
         "steps": "the space's steps", "threads": "one per worker", "checkpoint_every": "the study",
         "keep_checkpoints": "the study", "eval_every": "the space's eval_every", "eval_metrics": "the space's metric",
         "world_size": "the study", "data": "the space's data", "loss": "the objective's loss",
         "constraints": "the objective's constraints"}  # fmt: skip
#: metrics of torch-fidelity a study can optimise on image data, and the --eval-metrics name of each
IMAGE_FIGURES = {"fid": "fid", "kid": "kid", "inception_score": "is", "precision": "pr", "recall": "pr"}
Number = StrictInt | StrictFloat


class Range(BaseModel):
    """A numeric range: whole numbers for a setting that takes them (n_critic, critic.width), else
    floats; log = true for a log scale, step for a grid."""

    model_config = ConfigDict(extra="forbid")
    low: Number
    high: Number
    log: StrictBool = False
    step: Number | None = None

    @model_validator(mode="after")
    def _ordered(self):
        if not math.isfinite(self.low) or not math.isfinite(self.high) or not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be a finite number below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scale range needs low > 0")
        return self


Scalar = StrictBool | StrictInt | StrictFloat | StrictStr


class Choice(BaseModel):
    """A categorical choice among values (numbers, strings, or lists of them such as Adam's betas)."""

    model_config = ConfigDict(extra="forbid")
    choices: list[Scalar | list[Scalar]] = Field(min_length=1, max_length=MAX_CHOICES)


def _dimension_kind(value: Any) -> str:
    return "choice" if isinstance(value, dict) and "choices" in value else "range"


Dimension = Annotated[Annotated[Range, Tag("range")] | Annotated[Choice, Tag("choice")], Discriminator(_dimension_kind)]


def _not_owned(settings: dict[str, Any], where: str) -> dict[str, Any]:
    """Refuse a setting the study sets itself: searched or fixed, the study's own value would be lost."""
    owned = next((key for key in settings if key in OWNED), None)
    if owned is not None:
        raise ValueError(f"{where} '{owned}' is the study's: {OWNED[owned]} sets it")
    return settings


#: TrainConfig settings of a study's file, none of them one the study owns
Settings = Annotated[dict[str, Any], AfterValidator(lambda settings: _not_owned(settings, "setting"))]


class Objective(BaseModel):
    """One objective to compare: a loss with its constraints (and any other settings), and its space:
    setting -> range or choice; a plugin's option is named by its place, e.g. constraints.0.weight."""

    model_config = ConfigDict(extra="forbid")
    loss: str
    constraints: list[str] = Field(default_factory=list)
    settings: Settings = Field(default_factory=dict, description="further TrainConfig settings")
    space: Annotated[dict[str, Dimension], AfterValidator(lambda space: _not_owned(space, "space setting"))] = Field(
        default_factory=dict
    )


class Space(BaseModel):
    """A study's space file: the data and networks, the objectives with their spaces, the budget,
    the metric and the sampler."""

    model_config = ConfigDict(extra="forbid")
    data: str
    generator: str | None = None
    critic: str | None = None
    settings: Settings = Field(default_factory=dict, description="TrainConfig settings every trial shares")
    steps: int = Field(gt=0, le=10**9, description="generator steps per trial")
    trials: int = Field(gt=0, le=10_000, description="trials per objective")
    seeds: list[Annotated[int, Field(ge=0, lt=2**32)]] = Field(
        [0], min_length=1, max_length=100, description="the search's seed (the first) and the final re-runs'"
    )
    metric: str = Field(max_length=64, description="a figure of the dataset's evaluation (high_quality, frechet, ...) or fid")
    direction: Literal["maximize", "minimize"]
    sampler: Literal["random", "tpe"] = "random"
    pruner: Literal["none", "median", "hyperband"] = "median"
    eval_every: int | None = Field(None, gt=0, description="steps between the evaluations a pruner sees (none: no pruning)")
    pruner_startup: int = Field(5, ge=0, description="trials of an objective the median pruner sees through before it prunes")
    heartbeat: int = Field(10, gt=0, le=3600, description="seconds between a worker's heartbeats")
    grace: int = Field(60, gt=0, le=86_400, description="seconds without a heartbeat before a trial's worker counts as dead")
    objectives: dict[str, Objective] = Field(min_length=1, max_length=MAX_OBJECTIVES)

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) < len(seeds):
            raise ValueError("each seed once: a final re-run per seed, in a folder of its own")
        return seeds

    @field_validator("objectives")
    @classmethod
    def _names(cls, objectives: dict[str, Objective]) -> dict[str, Objective]:
        bad = [name for name in objectives
               if not name.replace("-", "").replace("_", "").isalnum() or not name.isascii() or len(name) > 64]  # fmt: skip
        if bad:
            raise ValueError(f"objective names are 1 to 64 letters, digits, - and _; got {shortened(repr(bad[0]), 80)}")
        return objectives


def read_space(path: Path) -> Space:
    """The space file at `path`, read with a bound: a regular file of at most MAX_SPACE_BYTES of UTF-8 TOML."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # /dev/zero never ends, a FIFO blocks
            raise UsageError(f"the space file {path} is not a regular file")
        with path.open("rb") as file:
            data = file.read(MAX_SPACE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read the space file {path}: {exc.strerror}") from None
    if len(data) > MAX_SPACE_BYTES:
        raise UsageError(f"the space file {path} holds more than {MAX_SPACE_BYTES:,} bytes; a space file holds at most that")
    try:
        return Space.model_validate(tomllib.loads(data.decode("utf-8")))
    except UnicodeDecodeError as exc:
        raise UsageError(f"the space file {path} is not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p not in ("range", "choice")) or "the file"
        raise UsageError(f"{path}: {where}: {shortened(first['msg'].removeprefix('Value error, '))}") from None


def space_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the settings of one trial ---------------------------------------------------------------------


def suggest(trial: Any, distributions: dict[str, Any]) -> dict[str, Any]:
    """Each setting drawn through Optuna's trial from its distribution (fixed where the trial was queued with them)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    drawn = {}
    for name, dist in distributions.items():
        if isinstance(dist, CategoricalDistribution):  # Optuna's choices are scalars: lists travel as JSON
            value = trial.suggest_categorical(name, dist.choices)
            drawn[name] = json.loads(value) if isinstance(value, str) and value.startswith("[") else value
        elif isinstance(dist, IntDistribution):
            drawn[name] = trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
        else:
            drawn[name] = trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return drawn


def distributions(space: Space, name: str) -> dict[str, Any]:
    """Objective `name`'s space as Optuna's distributions, each checked as Optuna checks it (a UsageError
    naming the setting): whole numbers for a setting that takes only them, floats otherwise."""
    base = trial_config(space, name, {}, space.seeds[0], Path("."))
    out = {}
    for path, dimension in space.objectives[name].space.items():
        place(json.loads(json.dumps(base)), path, None)  # the place exists: a one-line error otherwise
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # Optuna shortens a range that is no multiple of its step, with a warning
                out[path] = distribution(dimension, whole_numbers(base, path))
        except (ValueError, Warning) as exc:
            raise UsageError(f"space setting '{path}' of objective '{name}': {str(exc).splitlines()[0]}") from None
    return out


def distribution(dimension: Range | Choice, whole: bool) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(dimension, Choice):
        return CategoricalDistribution([json.dumps(c) if isinstance(c, list) else c for c in dimension.choices])
    if whole:
        fraction = next((v for v in (dimension.low, dimension.high, dimension.step) if v is not None and not float(v).is_integer()), None)
        if fraction is not None:
            raise ValueError(f"this setting takes whole numbers; {fraction} is not one")
        return IntDistribution(int(dimension.low), int(dimension.high), log=dimension.log, step=int(dimension.step or 1))
    step = None if dimension.step is None else float(dimension.step)
    return FloatDistribution(float(dimension.low), float(dimension.high), log=dimension.log, step=step)


def whole_numbers(config: dict[str, Any], path: str) -> bool:
    """Whether the setting at `path` of a trial's `config` takes whole numbers only (n_critic, critic.width)."""
    from .registry import get_class

    role, _, option = path.partition(".")
    if not option:
        field_info = TrainConfig.model_fields.get(role)
    else:
        if role == "constraints":
            index, _, option = option.partition(".")
            spec = config["constraints"][int(index)]
        else:
            spec = config[role]
        kind = {"data": "dataset", "constraints": "constraint"}.get(role, role)
        plugin_config = getattr(get_class(kind, PluginSpec.model_validate(spec).name), "Config", None)
        field_info = getattr(plugin_config, "model_fields", {}).get(option)
    types = set(_types(field_info.annotation)) if field_info is not None else set()
    return int in types and float not in types


def _types(annotation: Any) -> list[Any]:
    """The types an annotation admits, through Optional, unions and Annotated."""
    if get_origin(annotation) is Annotated:
        return _types(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return [t for arg in get_args(annotation) for t in _types(arg)]
    return [annotation]


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
        config.update(eval_every=space.eval_every, eval_metrics=[IMAGE_FIGURES.get(space.metric, "data")])
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


def with_option(spec: str | dict[str, Any], option: str, value: Any) -> str | dict[str, Any]:
    """The spec with `option` set to the sampled value. A spec written as text (r1:every=4) stays text,
    its options strings the plugin converts, as the CLI's are: mixed with a typed value, the strict
    check of a typed spec would refuse the strings."""
    parsed = PluginSpec.model_validate(spec)
    if parsed.from_text and isinstance(value, (bool, int, float, str)):
        return str(PluginSpec(name=parsed.name, options={**parsed.options, option: value}))
    return {"name": parsed.name, "options": {**parsed.options, option: value}}


# -- the storage -------------------------------------------------------------------------------------


def storage_url(folder: Path, url: str | None) -> str:
    """The study's storage: `url` (remembered in the folder), else the one the folder remembers, else
    DIR/study.db. A URL given with a password is remembered without it, and asked for again."""
    remembered = folder / STORAGE
    if url is None:
        if not remembered.is_file():
            return f"sqlite:///{(folder / DATABASE).resolve()}"
        url = remembered.read_text().strip()
        if "***" in url:
            raise UsageError(f"{folder}'s study is stored in {url}; pass --storage with its password")
        return url
    url = checked_url(url)
    if not remembered.is_file() or remembered.read_text().strip() != shown(url):
        from .checkpoint import atomic_write

        atomic_write(remembered, lambda tmp: tmp.write_text(shown(url) + "\n"))
    return url


def checked_url(url: str) -> str:
    """`url`, a SQLite file's path made absolute; an in-memory SQLite database is refused: each worker
    would have one of its own, empty, and the study would run nothing."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(f"--storage {shortened(url, 80)} is not a database URL (e.g. sqlite:///study.db, "
                         "postgresql://user:password@host/db)") from None  # fmt: skip
    if not parsed.drivername.startswith("sqlite"):
        return url
    if parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory":
        raise UsageError(f"--storage {url} is an in-memory database, which each worker would have alone and empty; "
                         "give a file (sqlite:///PATH) or a database server")  # fmt: skip
    return parsed.set(database=str(Path(parsed.database).resolve())).render_as_string(hide_password=False)


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
    from sqlalchemy.exc import IntegrityError, SQLAlchemyError

    quiet_optuna()
    for attempt in range(5):
        try:
            storage = optuna.storages.RDBStorage(
                url, heartbeat_interval=space.heartbeat, grace_period=space.grace,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
                # SQLite: several workers' writes wait for each other's locks instead of failing
                engine_kwargs={"pool_pre_ping": True, **({"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {})},
            )  # fmt: skip
            break
        except (SQLAlchemyError, ImportError, ValueError, RuntimeError) as exc:  # RuntimeError: another Optuna's schema
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            # two workers made a new database's tables (or its schema version's row) at once: the second finds them made
            if (isinstance(exc, IntegrityError) or "already exists" in reason) and attempt < 4:
                threading.Event().wait(0.2 * (attempt + 1))
                continue
            raise UsageError(f"cannot open the study storage {shown(url)}: {reason}") from None
    if url.startswith("sqlite"):
        serialised(storage.engine)
    return storage


def serialised(engine: Any) -> None:
    """SQLite: each transaction takes the database's write lock as it begins (BEGIN IMMEDIATE), so a
    worker that reads a queued trial and claims it does so in one step; pysqlite's own BEGIN, sent
    only before a write, let two workers read the same queued trial and both claim it."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(connection: Any, _record: Any) -> None:
        connection.isolation_level = None  # no BEGIN of pysqlite's own

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # the connections made before are closed: each new one is made as above


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
    study is atomic in the database, so of several workers meeting a new storage one queues. Every
    trial is drawn before the first study is made, so a study is queued whole or not at all."""
    import optuna

    order = {name: i for i, name in enumerate(sorted(space.objectives))}
    queues = {}
    for name in space.objectives:
        dists = distributions(space, name)
        if space.sampler == "random":  # sampled here from the seed: the same study whatever the workers
            scratch = optuna.create_study(sampler=sampler(space, (space.seeds[0] + order[name]) % 2**32))
            queues[name] = []
            for _ in range(space.trials):
                trial = scratch.ask()
                suggest(trial, dists)
                queues[name].append(trial.params)
        else:
            queues[name] = [{}] * space.trials
    for name, queue in queues.items():
        try:
            study = optuna.create_study(study_name=name, storage=storage, direction=space.direction, load_if_exists=False)
        except optuna.exceptions.DuplicatedStudyError:
            check_space(optuna.load_study(study_name=name, storage=storage), digest, storage)
            continue
        study.set_user_attr("ganzoo_space_sha256", digest)
        for params in queue:
            study.enqueue_trial(params, skip_if_exists=False)


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
        params = suggest(trial, distributions(self.space, name))
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
                while True:
                    try:
                        if checkpoints_in(out):
                            result = ganzoo.train({"steps": self.space.steps}, resume=out, quiet=True, on_evaluation=report)
                        else:
                            result = ganzoo.train(config, quiet=True, on_evaluation=report)
                        break
                    except ConfigError:
                        if not in_use(out):
                            raise
                        # a live worker trains this folder (this trial's retry found its first worker alive):
                        # not a failure; once it ends, this one resumes its last checkpoint
                        threading.Event().wait(self.space.heartbeat)
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
    metrics = ganzoo.evaluate(generator, space.data, metrics=[IMAGE_FIGURES[space.metric]] if space.metric in IMAGE_FIGURES else None)
    if space.metric not in metrics or not isinstance(metrics[space.metric], (int, float)):
        figures = ", ".join(k for k, v in metrics.items() if isinstance(v, (int, float)))
        raise UsageError(f"the study's metric '{space.metric}' is not among {space.data}'s figures: {figures}")
    return float(metrics[space.metric])


def in_use(run: Path) -> bool:
    """Whether another process holds `run`'s folder lock (run_folder's flock): a live worker trains it."""
    try:
        fd = os.open(run / LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


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
    """A new study folder from a space file, written only once the whole space is checked: every
    objective planned at each end of each range and at each choice, every range as Optuna takes it,
    and the metric among the data's figures. Linear in the space file's size."""
    space = read_space(space_file)
    if folder.exists() and any(folder.iterdir()):
        raise UsageError(f"{folder} exists and is not empty; a study gets a folder of its own")
    from .loop import plan

    planned = None
    for name, objective in space.objectives.items():  # every objective's settings, before a trial runs
        if not objective.space and space.trials > 1:
            raise UsageError(f"{space_file}: objective '{name}' has no space, so its {space.trials} trials would be "
                             "the same run; give it space settings, or trials = 1")  # fmt: skip
        try:
            dists = distributions(space, name)
            values = {k: d.choices if isinstance(d, Choice) else [dists[k].low, dists[k].high] for k, d in objective.space.items()}
            first = {k: v[0] for k, v in values.items()}
            configs = [first, *({**first, k: v} for k, vs in values.items() for v in vs[1:])]
            for params in configs:
                planned = plan({k: v for k, v in trial_config(space, name, params, space.seeds[0], folder).items() if k != "out"})
        except GanzooError as exc:
            raise UsageError(f"{space_file}: objective '{name}': {exc}") from None
    check_metric(space, planned)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(space_file, folder / SPACE)
    return folder


def check_metric(space: Space, planned: Any) -> None:
    """The space's metric is a figure the trials' values can be: one of the data's own evaluation, or
    a torch-fidelity metric of image data."""
    images = len(planned.sample_shape) == 3
    if space.metric in IMAGE_FIGURES:
        if not images:
            raise UsageError(f"metric '{space.metric}' is an image metric, and {space.data} is not image data")
        return
    figures = data_figures(planned)
    offered = [*figures, *(IMAGE_FIGURES if images else ())]
    if space.metric not in figures:
        raise UsageError(f"metric {shortened(repr(space.metric), 80)} is not among {space.data}'s figures: "
                         f"{', '.join(offered) or 'none (it has no evaluation of its own)'}")  # fmt: skip


_figures: dict[str, list[str]] = {}


def data_figures(planned: Any) -> list[str]:
    """The numeric figures the data's own evaluation gives (of an untrained generator), once per data spec."""
    from .evaluation import own_evaluation

    key = json.dumps([planned.config.data.model_dump(mode="json"), planned.config.conditional])
    if key not in _figures:
        dataset = planned.plugins["data"].build()
        if not dataset.has_evaluation():
            _figures[key] = []
        else:
            scores = own_evaluation(planned.plugins["generator"].build(), dataset, str(planned.config.data))
            _figures[key] = [k for k, v in scores.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return _figures[key]


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
    terminated = []

    def stop_workers(signum: int, _frame: Any) -> None:
        """SIGTERM to this process alone: each worker is stopped as by Ctrl-C (its trial left
        resumable), not left training as an orphan."""
        terminated.append(signum)
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGINT)

    previous = signal.signal(signal.SIGTERM, stop_workers) if threading.current_thread() is threading.main_thread() else None
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.join()
    except KeyboardInterrupt:  # the workers got it too: each leaves its trial resumable
        for process in processes:
            process.join()
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if terminated:
        raise Interrupted("study stopped by SIGTERM; each worker's trial is queued again: run the study again to go on")
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

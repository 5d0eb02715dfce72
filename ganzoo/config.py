"""The training config: every choice of a run, validated before a tensor exists."""

from __future__ import annotations

import difflib
import json
import re
import sys
from pathlib import Path
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_core import to_json

from .errors import LISTED, ConfigError, GanzooError, listed, shortened
from .schedule import Schedule

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class PluginSpec(BaseModel):
    """A plugin by name with its options; also written `name:key=value,key=value`."""

    model_config = ConfigDict(extra="forbid")

    name: str
    options: dict[str, Any] = Field(default_factory=dict)
    _text: bool = PrivateAttr(False)

    @model_validator(mode="wrap")
    @classmethod
    def _from_string(cls, value: Any, handler: Any) -> Any:
        if not isinstance(value, str):
            return handler(value)
        spec = handler(parse_spec(value))
        spec._text = True
        return spec

    @property
    def from_text(self) -> bool:
        """True when the options were parsed from `name:key=value` text, so they are strings to convert."""
        return self._text

    def __str__(self) -> str:
        # a nested plugin (pac's base) reads as its own spec, not as a dict
        text = {k: PluginSpec.model_validate(v) if isinstance(v, dict) and "name" in v else v for k, v in self.options.items()}
        opts = ",".join(f"{k}={v}" for k, v in text.items())
        return f"{self.name}:{opts}" if opts else self.name


_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_.\-/]+)(?::(?P<options>.*))?$")


def parse_spec(text: str) -> dict[str, Any]:
    """`instance-noise:base=nonsaturating,sigma=0.5` -> {"name": ..., "options": {...}}.

    Values stay strings; the plugin's pydantic Config converts them to their types.
    """
    match = _SPEC.match(text.strip())
    if not match:
        raise ValueError(f"'{text}' is not NAME or NAME:key=value,key=value")
    options: dict[str, Any] = {}
    items = [item for item in (match["options"] or "").split(",") if item]
    for at, item in enumerate(items):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"option '{item}' in '{text}' is not key=value{_joined(items, at)}")
        options[key.strip()] = value.strip()
    return {"name": match["name"], "options": options}


def _joined(items: list[str], at: int) -> str:
    """Where bare items follow key=value, as in DiffAugment's own policy=color,translation,cutout:
    the + form that a value listing several things takes here."""
    start = next((i for i in range(at - 1, -1, -1) if "=" in items[i]), None)
    if start is None:
        return ""
    end = next((i for i in range(at, len(items)) if "=" in items[i]), len(items))
    return f"; commas separate options: a value that lists several things joins them by +, as in {'+'.join(items[start:end])}"


Precision = Literal["auto", "fp32", "bf16"]


def _scheduled(allowed: str, number: Callable[[float], bool], ends: Callable[[float], bool]) -> AfterValidator:
    """A number `number` accepts, or a schedule (ganzoo.schedule) whose start and end `ends` accepts."""

    def check(value: float | str) -> float | str:
        if not isinstance(value, str):
            if not number(value):
                raise ValueError(f"must be {allowed}")
            return value
        schedule = Schedule.parse(value)
        for end, v in (("start", schedule.start), ("end", schedule.end)):
            if not ends(v):
                raise ValueError(f"must be {allowed}; the schedule's {end} is {v:g}")
        return value

    return AfterValidator(check)


#: a learning rate: above 0, or a schedule that may end at 0
Rate = Annotated[float | str, _scheduled("above 0 (a schedule's start and end at least 0)", lambda v: v > 0, lambda v: v >= 0)]
#: one of Adam's betas, or a schedule of it
Beta = Annotated[float | str, _scheduled("in [0, 1)", lambda v: 0 <= v < 1, lambda v: 0 <= v < 1)]
#: the EMA's decay, or a schedule of it (which may start at 0: the EMA then follows the generator)
Decay = Annotated[float | str, _scheduled("in (0, 1) (a schedule's in [0, 1))", lambda v: 0 < v < 1, lambda v: 0 <= v < 1)]
#: the EMA's half-life in images, or a schedule of it
HalfLife = Annotated[float | str, _scheduled("at least 0 images", lambda v: v >= 0, lambda v: v >= 0)]


class TrainConfig(BaseModel):
    """Everything a run needs. Fields left as None take the loss's recommended defaults.

    Validated as JSON is, strictly: a bool is not a number, a string not a bool, no NaN.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    loss: PluginSpec
    constraints: list[PluginSpec] = Field(default_factory=list)
    data: PluginSpec = PluginSpec(name="ring8")
    generator: PluginSpec = PluginSpec(name="mlp")
    critic: PluginSpec = PluginSpec(name="mlp")
    loggers: list[PluginSpec] = Field(default_factory=list, description="metric sinks besides metrics.jsonl")
    augment: PluginSpec | None = Field(None, description="differentiable augmentation of every batch the critic sees")

    steps: int = Field(2000, gt=0, le=10**9, description="generator steps")
    batch_size: int | None = Field(None, gt=0, le=2**24, description="samples in a (global) batch")
    n_critic: int | None = Field(None, gt=0, description="critic steps per generator step")
    critic_boost: int | None = Field(None, ge=0, description="critic steps in boosted steps (0: none)")
    critic_boost_first: int | None = Field(None, ge=0)
    critic_boost_every: int | None = Field(None, gt=0)
    optimizer: Literal["adam", "rmsprop"] | None = None
    lr: Rate | None = Field(None, description="learning rate of both networks (a number or a schedule)")
    lr_generator: Rate | None = None
    lr_critic: Rate | None = None
    betas: tuple[Beta, Beta] | None = None
    lr_decay: Literal["none", "linear"] = Field(
        "none", description="learning rates decayed linearly to 0 over the run (SNGAN): the schedule linear:LR:0:run"
    )

    conditional: bool = Field(False, description="condition both networks on the data's labels")
    fake_labels: Literal["real", "uniform"] = Field(
        "real", description="labels of the critic step's fakes: the real batch's, or drawn uniformly (conditional runs)"
    )

    seed: int = Field(0, ge=0, lt=2**63, description="random seed")
    device: str = "auto"
    precision: Precision = Field(
        "auto", description="bf16 autocast, or float32; auto: bf16 on a CPU that computes it natively for networks "
        "that run faster so (ganzoo.precision), else fp32. A run records what it chose"
    )
    ema: Decay | None = Field(None, description="generator EMA decay")
    ema_half_life: HalfLife | None = Field(
        None, description="generator EMA by its half-life in images (StyleGAN's and R3GAN's way), instead of ema"
    )
    compile: bool = False
    threads: int | None = Field(
        None, gt=0, le=1024, description="CPU threads; None: OMP_NUM_THREADS if set, else 1 for small networks"
    )
    sync_batchnorm: bool = Field(
        True, description="with several processes, BatchNorm statistics span the global batch (else each process's rows)"
    )
    world_size: int | None = Field(None, gt=0, description="processes that shared the run: recorded by the loop")

    log_every: int = Field(50, gt=0)
    eval_every: int | None = Field(None, gt=0, description="steps between evaluations during training (off: None)")
    eval_metrics: list[Literal["data", "fid", "kid", "is", "pr"]] | None = Field(
        None, min_length=1,
        description="what an evaluation measures: data (the dataset's own evaluation) and image metrics; "
        "None: data where the dataset has an evaluation, else fid",
    )  # fmt: skip
    eval_n: int = Field(5000, gt=1, le=10**6, description="generated and real images per evaluation during training")
    sample_every: int = Field(500, gt=0)
    checkpoint_every: int = Field(1000, gt=0)
    keep_checkpoints: int = Field(3, gt=0)
    out: str | None = None

    @field_validator("constraints", "loggers", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, dict)) else value

    @field_validator("constraints", "loggers")
    @classmethod
    def _each_once(cls, value: list[PluginSpec]) -> list[PluginSpec]:
        names = [spec.name for spec in value]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"names {listed([shortened(repr(n)) for n in twice])} twice; each plugin takes part once "
                             "(give all its options in one)")  # fmt: skip
        return value

    @model_validator(mode="after")
    def _one_ema(self):
        if self.ema is not None and self.ema_half_life is not None:
            raise ValueError("ema and ema_half_life both set the generator's EMA; give one")
        if self.lr_decay == "linear":
            scheduled = [f for f in ("lr", "lr_generator", "lr_critic") if isinstance(getattr(self, f), str)]
            if scheduled:
                raise ValueError(f"lr_decay linear and the schedule of {scheduled[0]} both set the learning rate; give one")
        return self

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
            raise ValueError("must be auto, cpu, cuda or cuda:N")
        return value


#: the members of a setting that takes a number or a schedule, as pydantic names them in an error's place
_NUMBER_OR_TEXT = ("float", "str")


def _one_per_union(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A number-or-schedule setting refused as both is one error: the number's, or the text's for text."""
    kept = []
    for item in items:
        loc = item["loc"]
        if loc and loc[-1] in _NUMBER_OR_TEXT:
            if (loc[-1] == "str") != isinstance(item["input"], str):
                continue
            item = {**item, "loc": loc[:-1]}
        kept.append(item)
    return kept


def describe_validation(error: ValidationError, given: dict[str, Any]) -> str:
    parts, unknown = [], []
    beside: dict[tuple[Any, ...], list[str]] = {}  # plugin spec -> the keys beside its name and options
    for item in _one_per_union(error.errors()):
        loc = item["loc"]
        where = shortened(".".join(str(p) for p in loc) or "config")
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden" and len(loc) == 1:
            unknown.append(where)
        elif item["type"] == "extra_forbidden":
            beside.setdefault(loc[:-1], []).append(f"'{shortened(str(loc[-1]))}'")
        elif not loc:  # a rule across settings: the settings it names are the input
            parts.append(message)
        else:
            parts.append(f"'{where}': {message} (got {shortened(repr(item['input']))})")
    for spec, keys in beside.items():
        parts.append(f"unknown key{'s' * (len(keys) > 1)} {listed(keys)} in {'.'.join(map(str, spec))}: a plugin spec "
                     f"has a name and options{_options_hint(given, spec)}")  # fmt: skip
    return "invalid config: " + listed([*_unknown_settings(unknown), *parts], sep="; ")


def _unknown_settings(names: list[str]) -> list[str]:
    """'did you mean' for each of the first few names close to a setting (difflib is slow for
    50,000 names), then the others in one part with the allowed settings, said once."""
    close = {name: difflib.get_close_matches(name, TrainConfig.model_fields, n=1) for name in names[:LISTED]}
    parts = [f"unknown setting '{name}'; did you mean '{match[0]}'?" for name, match in close.items() if match]
    others = [f"'{name}'" for name in names if not close.get(name)]
    if others:
        allowed = ", ".join(TrainConfig.model_fields)
        parts.append(f"unknown setting{'s' * (len(others) > 1)} {listed(others)} (allowed: {allowed})")
    return parts


#: TrainConfig fields that name plugins -> their kind
_SPEC_KINDS = {"loss": "loss", "constraints": "constraint", "data": "dataset", "generator": "generator",
               "critic": "critic", "loggers": "logger", "augment": "augment"}  # fmt: skip


def _options_hint(given: dict[str, Any], loc: tuple[Any, ...]) -> str:
    """' (clip's options: c)' for the plugin spec at `loc` in the given settings, where it can be found."""
    from .registry import plugin_info

    spec: Any = given
    try:
        for key in loc:
            spec = spec[key]
        info = plugin_info(_SPEC_KINDS[loc[0]], spec["name"])
    except (KeyError, IndexError, TypeError, GanzooError):  # no installed plugin to ask: the message says enough
        return ""
    return f" ({info.name}'s options: {', '.join(o.name for o in info.options) or 'none'})"


def to_config(config: TrainConfig | dict[str, Any]) -> TrainConfig:
    if isinstance(config, TrainConfig):
        return config
    if not isinstance(config, dict):
        raise ConfigError(f"a config is a table of settings, not a {type(config).__name__}")
    try:
        return TrainConfig.model_validate_json(to_json(config), strict=True)
    except ValidationError as exc:
        raise ConfigError(describe_validation(exc, config)) from None
    except (RecursionError, ValueError) as exc:  # nesting too deep, or a value JSON cannot hold
        raise ConfigError(f"invalid config: {exc}") from None


#: the largest config file read: a config is a few hundred bytes; more is a mistake
MAX_CONFIG_BYTES = 1 << 20


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    settings = dict(pairs)
    if len(settings) < len(pairs):  # found in one pass: an object of 50,000 keys is read in a blink
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"the key {shortened(repr(twice))} appears twice in one object")
    return settings


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A JSON or TOML file (by suffix) as a dict of TrainConfig fields."""
    path = Path(path)
    if path.suffix not in (".json", ".toml"):
        raise ConfigError(f"config file {path} must end in .json or .toml")
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {path} holds {size:,} bytes; a config holds at most {MAX_CONFIG_BYTES:,}")
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start})") from None
    try:
        settings = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid {path.suffix[1:].upper()}: {shortened(str(exc))}") from None
    if not isinstance(settings, dict):
        raise ConfigError(f"config file {path} holds a JSON {type(settings).__name__}; it must hold an object of settings")
    return settings

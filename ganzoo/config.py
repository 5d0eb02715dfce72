"""The training config: every choice of a run, validated before a tensor exists."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class PluginSpec(BaseModel):
    """A plugin by name with its options; also written `name:key=value,key=value`."""

    model_config = ConfigDict(extra="forbid")

    name: str
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return parse_spec(value) if isinstance(value, str) else value

    def __str__(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in self.options.items())
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
    for item in filter(None, (match["options"] or "").split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"option '{item}' in '{text}' is not key=value")
        options[key.strip()] = value.strip()
    return {"name": match["name"], "options": options}


Precision = Literal["fp32", "bf16"]


class TrainConfig(BaseModel):
    """Everything a run needs. Fields left as None take the loss's recommended defaults."""

    model_config = ConfigDict(extra="forbid")

    loss: PluginSpec
    constraints: list[PluginSpec] = Field(default_factory=list)
    data: PluginSpec = PluginSpec(name="ring8")
    generator: PluginSpec = PluginSpec(name="mlp")
    critic: PluginSpec = PluginSpec(name="mlp")

    steps: int = Field(2000, gt=0, description="generator steps")
    batch_size: int | None = Field(None, gt=0)
    n_critic: int | None = Field(None, gt=0, description="critic steps per generator step")
    critic_boost: int | None = Field(None, ge=0, description="critic steps in boosted steps (0: none)")
    critic_boost_first: int | None = Field(None, ge=0)
    critic_boost_every: int | None = Field(None, gt=0)
    optimizer: Literal["adam", "rmsprop"] | None = None
    lr: float | None = Field(None, gt=0, description="learning rate of both networks")
    lr_generator: float | None = Field(None, gt=0)
    lr_critic: float | None = Field(None, gt=0)
    betas: tuple[float, float] | None = None

    seed: int = 0
    device: str = "auto"
    precision: Precision = "fp32"
    ema: float | None = Field(None, gt=0, lt=1, description="generator EMA decay")
    compile: bool = False
    sync_batchnorm: bool = Field(
        True, description="with several processes, BatchNorm statistics span the global batch (else each process's rows)"
    )
    world_size: int | None = Field(None, gt=0, description="processes that shared the run: recorded by the loop")

    log_every: int = Field(50, gt=0)
    sample_every: int = Field(500, gt=0)
    checkpoint_every: int = Field(1000, gt=0)
    keep_checkpoints: int = Field(3, gt=0)
    out: str | None = None

    @field_validator("constraints", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, dict)) else value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
            raise ValueError("must be auto, cpu, cuda or cuda:N")
        return value


def describe_validation(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "config"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            allowed = ", ".join(TrainConfig.model_fields)
            parts.append(f"unknown setting '{where}' (allowed: {allowed})")
        else:
            parts.append(f"'{where}': {message} (got {item['input']!r})")
    return "invalid config: " + "; ".join(parts)


def to_config(config: TrainConfig | dict[str, Any]) -> TrainConfig:
    if isinstance(config, TrainConfig):
        return config
    try:
        return TrainConfig.model_validate(config)
    except ValidationError as exc:
        raise ConfigError(describe_validation(exc)) from None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A JSON or TOML file (by suffix) as a dict of TrainConfig fields."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix == ".json":
            return json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid {path.suffix[1:].upper()}: {exc}") from None
    raise ConfigError(f"config file {path} must end in .json or .toml")

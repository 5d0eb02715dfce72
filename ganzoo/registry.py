"""Finds plugins through entry points (standard library `importlib.metadata`) and builds them.

Discovery reads metadata only; a plugin's module is imported when it is used or listed.
Nothing here imports torch until a plugin is loaded.
"""

from __future__ import annotations

import difflib
import importlib.metadata as md
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import UnionType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from .errors import AmbiguousPlugin, BrokenPlugin, ConfigError, GanzooError, PluginNotFound, listed, shortened

#: kind -> entry-point group
GROUPS = {
    "loss": "ganzoo.losses",
    "constraint": "ganzoo.constraints",
    "generator": "ganzoo.generators",
    "critic": "ganzoo.critics",
    "dataset": "ganzoo.datasets",
    "logger": "ganzoo.loggers",
    "augment": "ganzoo.augments",
}
ZOO_GROUP = "ganzoo.zoo"
#: the version of the plugin interfaces; a distribution may declare the range it supports
PLUGIN_API_VERSION = 1


#: Config fields the loop fills in from the data; they are not a user's options.
SET_BY_LOOP = ("sample_shape", "classes")


@dataclass(frozen=True)
class PluginOption:
    """One option of a plugin, read from its pydantic Config."""

    name: str
    type: str  # readable, e.g. "float" or "'minimax' | 'nonsaturating'"
    required: bool
    default: Any  # None when required
    bounds: str  # e.g. "> 0" or ">= 0, < 1"; empty when unbounded
    description: str


@dataclass(frozen=True)
class PluginInfo:
    """One installed plugin as `list_plugins` reports it."""

    name: str
    kind: str
    distribution: str
    version: str
    summary: str = ""
    status: str = "ok"  # ok | broken | ambiguous
    reason: str = ""
    options: tuple[PluginOption, ...] = ()  # known only for a plugin that loads

    @property
    def qualified_name(self) -> str:
        return f"{self.distribution}/{self.name}"


@dataclass(frozen=True)
class _Entry:
    kind: str
    name: str
    distribution: str
    version: str
    ep: md.EntryPoint


#: anything with `name` and `distribution` attributes: an entry point, a model card, ...
Offered = TypeVar("Offered")


def _normalise(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _check_kind(kind: str) -> str:
    if kind not in GROUPS:
        raise ConfigError(f"unknown plugin kind '{kind}'; kinds are: {', '.join(GROUPS)}")
    return kind


def entries(kind: str, group: str | None = None) -> list[_Entry]:
    """Every entry point of a kind, read from metadata only, one per (distribution, name)."""
    seen: dict[tuple[str, str], _Entry] = {}
    for ep in md.entry_points(group=group or GROUPS[kind]):
        dist = ep.dist
        dist_name = dist.metadata["Name"] if dist is not None else "unknown"
        version = dist.version if dist is not None else "unknown"
        key = (_normalise(dist_name), ep.name)
        seen.setdefault(key, _Entry(kind, ep.name, dist_name, version, ep))  # first on sys.path wins
    return sorted(seen.values(), key=lambda e: (e.name, _normalise(e.distribution)))


def _resolve(kind: str, name: str) -> _Entry:
    _check_kind(kind)
    return pick(kind, name, entries(kind))


def pick(what: str, name: str, found: Sequence[Offered]) -> Offered:
    """The one item of `found` called `name`, or `DIST/NAME` to choose among distributions.

    Shared by plugins and the pretrained zoo: `what` names the kind of thing in messages.
    """
    dist, _, bare = name.rpartition("/")
    matches = [e for e in found if e.name == bare and (not dist or _normalise(e.distribution) == _normalise(dist))]
    if len(matches) == 1:
        return matches[0]
    if matches:
        providers = ", ".join(e.distribution for e in matches)
        raise AmbiguousPlugin(
            f"{what} '{bare}' is offered by several distributions ({providers}); "
            f"pick one as DIST/NAME, e.g. '{matches[0].distribution}/{bare}'"
        )
    names = sorted({e.name for e in found})
    hint = difflib.get_close_matches(bare, names, n=1)
    suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
    installed = ", ".join(names) if names else "none"
    where = f" from distribution '{dist}'" if dist else ""
    raise PluginNotFound(f"no {what} named '{bare}'{where}{suggestion} (installed: {installed})")


def _base_class(kind: str) -> type:
    from . import interfaces

    return getattr(interfaces, kind.capitalize())


def _config_base(kind: str) -> type:
    from . import interfaces

    return {"generator": interfaces.GeneratorConfig, "critic": interfaces.NetworkConfig}.get(kind, interfaces.Config)


def _supports_api(cls: type) -> str | None:
    """The reason a plugin cannot run on this core's API version, or None when it can."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    declared = getattr(cls, "plugin_api", None)
    if declared is None:
        return None
    try:
        ok = SpecifierSet(str(declared)).contains(str(PLUGIN_API_VERSION))
    except InvalidSpecifier:
        return f"its plugin_api '{declared}' is not a version range such as '>=1,<2'"
    return None if ok else f"it needs plugin API {declared}, this ganzoo has {PLUGIN_API_VERSION}"


def _load(entry: _Entry) -> type:
    label = f"{entry.kind} '{entry.name}' from {entry.distribution} {entry.version}"
    try:
        obj = entry.ep.load()
    except BaseException as exc:  # SystemExit, KeyboardInterrupt: a third party's module never takes the registry down
        raise BrokenPlugin(
            f"{label} is broken: importing {entry.ep.value} failed: {type(exc).__name__}: {exc}".replace("\n", " ")
        ) from exc
    # The API range comes first: a plugin for another API version fails the other checks for that reason.
    reason = _supports_api(obj)
    if reason:
        raise BrokenPlugin(f"{label} is broken: {reason}")
    base = _base_class(entry.kind)
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise BrokenPlugin(f"{label} is broken: {entry.ep.value} is not a subclass of ganzoo.{base.__name__}")
    config = getattr(obj, "Config", None)
    config_base = _config_base(entry.kind)
    if not (isinstance(config, type) and issubclass(config, config_base)):
        raise BrokenPlugin(f"{label} is broken: its Config is not a subclass of ganzoo.{config_base.__name__}")
    return obj


def _summary(cls: type) -> str:
    """The docstring's summary: its first paragraph, joined where it wraps onto more lines."""
    return " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())


#: pydantic's constraint metadata (annotated_types) attribute -> how `ganzoo show` writes it
_BOUNDS = {
    "gt": ">", "ge": ">=", "lt": "<", "le": "<=",
    "min_length": "length >=", "max_length": "length <=", "multiple_of": "multiple of",
}  # fmt: skip


def _type_name(annotation: Any) -> str:
    """`float`, `Path | None`, `'minimax' | 'nonsaturating'`: a type as a user would write it."""
    origin = get_origin(annotation)
    if origin is Literal:
        return " | ".join(repr(value) for value in get_args(annotation))
    if origin in (Union, UnionType):
        return " | ".join(_type_name(arg) for arg in get_args(annotation))
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type) and origin is None:
        return annotation.__name__
    return repr(annotation).replace("typing.", "")


def plugin_options(cls: type) -> tuple[PluginOption, ...]:
    """The options a user can set on a plugin class, from its Config's fields, in declaration order;
    those that matter only in a conditional run (`label_options`) last."""
    options = []
    late = set(getattr(cls.Config, "label_options", ()))
    fields = sorted(cls.Config.model_fields.items(), key=lambda item: item[0] in late)  # stable: order kept
    for name, field in fields:
        if name in SET_BY_LOOP:
            continue
        bounds = [
            f"{op} {getattr(item, attr)}"
            for item in field.metadata
            for attr, op in _BOUNDS.items()
            if getattr(item, attr, None) is not None
        ]
        required = field.is_required()
        default = None if required else field.get_default(call_default_factory=True)
        type_name, description = _type_name(field.annotation), field.description or ""
        options.append(PluginOption(name, type_name, required, default, ", ".join(bounds), description))
    return tuple(options)


def get_class(kind: str, name: str) -> type:
    """The plugin class for a (possibly DIST/-qualified) name, imported now."""
    return _load(_resolve(kind, name))


def plugin_info(kind: str, name: str) -> PluginInfo:
    entry = _resolve(kind, name)
    cls = _load(entry)
    return PluginInfo(entry.name, kind, entry.distribution, entry.version, _summary(cls), options=plugin_options(cls))


def list_plugins(kind: str | None = None) -> list[PluginInfo]:
    """Every installed plugin (of one kind, or all), imported to tell whether it works."""
    kinds = [_check_kind(kind)] if kind else list(GROUPS)
    infos = []
    for k in kinds:
        found = entries(k)
        for entry in found:
            others = [e.distribution for e in found if e.name == entry.name and e is not entry]
            row = dict(name=entry.name, kind=k, distribution=entry.distribution, version=entry.version)
            try:
                cls = _load(entry)
            except BrokenPlugin as exc:
                infos.append(PluginInfo(**row, status="broken", reason=str(exc)))
                continue
            row.update(summary=_summary(cls), options=plugin_options(cls))
            if others:
                reason = f"also offered by {', '.join(others)}; use '{entry.distribution}/{entry.name}'"
                infos.append(PluginInfo(**row, status="ambiguous", reason=reason))
            else:
                infos.append(PluginInfo(**row))
    return infos


def describe_error(kind: str, name: str, cls: type, error: Any) -> str:
    """One line from a pydantic ValidationError, naming the plugin and each bad option (the first few)."""
    parts, unknown = [], []
    for item in error.errors():
        option = shortened(".".join(str(p) for p in item["loc"]) or "options")
        if item["type"] == "extra_forbidden":
            unknown.append(f"'{option}'")
        elif item["type"] == "missing":
            parts.append(f"option '{option}' is required")
        elif not item["loc"]:  # a check of the options together: its message names what is wrong
            parts.append(item["msg"].removeprefix("Value error, "))
        else:
            message = item["msg"].removeprefix("Value error, ")
            parts.append(f"option '{option}': {message} (got {shortened(repr(item['input']))})")
    if unknown:  # the allowed options said once, however many are unknown
        allowed = ", ".join(option.name for option in plugin_options(cls)) or "none"
        parts.insert(0, f"unknown option{'s' * (len(unknown) > 1)} {listed(unknown)} (allowed: {allowed})")
    return f"{kind} '{name}': " + listed(parts, sep="; ")


def configure(kind: str, name: str, options: dict[str, Any] | None = None, strict: bool = False) -> tuple[type, Any]:
    """Validate options against the plugin's Config; returns (class, config) and builds nothing.

    `strict`: for typed values (a config file, a file's metadata): a bool is no number and a
    string no bool, as in JSON. Options parsed from text (`clip:c=0.02`) are converted.
    """
    from pydantic import ValidationError
    from pydantic_core import to_json

    cls = get_class(kind, name)
    try:
        if strict:
            config = cls.Config.model_validate_json(to_json(options or {}), strict=True)
        else:
            config = cls.Config(**(options or {}))
    except ValidationError as exc:
        raise ConfigError(describe_error(kind, name, cls, exc)) from None
    except RecursionError:
        raise ConfigError(f"{kind} '{name}': its options are nested too deeply") from None
    return cls, config


@dataclass(frozen=True)
class Configured:
    """A plugin whose options passed its Config: ready to build, as often as needed."""

    kind: str
    name: str
    cls: type
    config: Any
    #: options given as schedules (ganzoo.schedule): the config holds each one's start value
    scheduled: dict[str, str] = field(default_factory=dict)

    def build(self) -> Any:
        return build(self.kind, self.name, self.cls, self.config)


#: the kinds of plugin whose float options may follow a schedule over the run
SCHEDULED_KINDS = ("loss", "constraint", "augment")


def configured(kind: str, spec: Any, **set_by_loop: Any) -> Configured:
    """A PluginSpec (name and options) checked against its plugin's Config; strict unless its options
    came as text. A loss's, constraint's or augment's float option may be a schedule: its start and
    its end are each checked as the option, and the config holds the start."""
    from .schedule import Schedule, looks_like_schedule

    options = {**spec.options, **set_by_loop}
    texts = {option: value for option, value in options.items() if looks_like_schedule(value)}
    if texts:
        cls = get_class(kind, spec.name)
        option = next(iter(texts))
        if kind not in SCHEDULED_KINDS:
            raise ConfigError(f"{kind} '{spec.name}' option '{option}': schedules vary the options of losses, "
                              "constraints and augments, not a network's or the data's")  # fmt: skip
        schedules = {}
        for option, text in texts.items():
            field_info = cls.Config.model_fields.get(option)
            if field_info is not None and field_info.annotation is not float:
                raise ConfigError(f"{kind} '{spec.name}' option '{option}' is not a real number: only those follow a schedule")
            try:
                schedules[option] = Schedule.parse(text)
            except ValueError as exc:
                raise ConfigError(f"{kind} '{spec.name}' option '{option}': {exc}") from None
        configure(kind, spec.name, {**options, **{o: s.end for o, s in schedules.items()}}, strict=not spec.from_text)
        options.update({o: s.start for o, s in schedules.items()})
    cls, config = configure(kind, spec.name, options, strict=not spec.from_text)
    return Configured(kind, spec.name, cls, config, texts)


def build(kind: str, name: str, cls: type, config: Any) -> Any:
    """`cls(config)`; a plugin that fails in its constructor is named in the error."""
    try:
        return cls(config)
    except GanzooError:
        raise
    except Exception as exc:
        raise BrokenPlugin(f"{kind} '{name}' failed to build: {type(exc).__name__}: {exc}") from exc


def create(kind: str, name: str, **options: Any) -> Any:
    cls, config = configure(kind, name, options)
    return build(kind, name, cls, config)


def create_loss(name: str, **options: Any) -> Any:
    return create("loss", name, **options)


def create_constraint(name: str, **options: Any) -> Any:
    return create("constraint", name, **options)


def create_generator(name: str, **options: Any) -> Any:
    return create("generator", name, **options)


def create_critic(name: str, **options: Any) -> Any:
    return create("critic", name, **options)


def create_dataset(name: str, **options: Any) -> Any:
    return create("dataset", name, **options)


def create_logger(name: str, **options: Any) -> Any:
    return create("logger", name, **options)


def create_augment(name: str, **options: Any) -> Any:
    return create("augment", name, **options)

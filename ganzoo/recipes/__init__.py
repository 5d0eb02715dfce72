"""Published training recipes as config files: `ganzoo train --config NAME` reads one by name.

Each NAME.toml here holds TrainConfig settings and a `[recipe]` table that documents them: the
`source`, the `paper`, and the `published` scores with the protocol each was measured under.
The table is documentation: training reads the settings and leaves it out.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError, shortened

RECIPE_TABLE = "recipe"


def recipe_names() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in resources.files(__name__).iterdir() if p.name.endswith(".toml"))


def recipe_path(name: str) -> Path:
    """A shipped recipe's file, whatever the working folder holds."""
    if name not in recipe_names():
        raise ConfigError(f"no recipe '{shortened(name)}'; recipes: {', '.join(recipe_names())}")
    return Path(str(resources.files(__name__) / f"{name}.toml"))


def config_path(name_or_path: str | Path) -> Path:
    """A config file's path: a shipped recipe by NAME, else the file itself. A recipe's name wins over
    a local file or folder of that name, which cannot be a config (those end in .json or .toml)."""
    text = str(name_or_path)
    if not text.strip():
        raise ConfigError(f"--config is empty; give a .json or .toml file, or a recipe: {', '.join(recipe_names())}")
    if text in recipe_names():
        return recipe_path(text)
    path = Path(text)
    if path.suffix or path.exists():
        return path
    raise ConfigError(f"--config {shortened(text)}: no such file, nor a recipe; recipes: {', '.join(recipe_names())}")


def shadowed(name: str) -> str | None:
    """The notice for a recipe's name that is also a local file or folder: which one --config reads, and how to read the other."""
    if name not in recipe_names() or not os.path.lexists(name):
        return None
    kind = "folder" if os.path.isdir(name) else "file"
    return (f"--config {name} reads the shipped recipe {name}, not the local {kind} of that name; a config file of "
            f"your own ends in .json or .toml: give its path with the suffix")  # fmt: skip


def read(name_or_path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the TrainConfig settings, the recipe table) of a config file or a recipe by name."""
    from ..config import read_config_file

    settings = read_config_file(config_path(name_or_path))
    recipe = settings.pop(RECIPE_TABLE, {})
    if not isinstance(recipe, dict):
        raise ConfigError(f"{name_or_path}: [{RECIPE_TABLE}] is a table that documents the recipe, not a setting")
    return settings, recipe


def describe(name: str) -> dict[str, Any]:
    """One shipped recipe: its settings, source, paper and published scores."""
    settings, recipe = read(recipe_path(name))
    return {"name": name, "settings": settings, **recipe}

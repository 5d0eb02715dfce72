"""Published training recipes as config files: `ganzoo train --config NAME` reads one by name.

Each NAME.toml here holds TrainConfig settings and a `[recipe]` table that documents them: the
`source`, the `paper`, and the `published` scores with the protocol each was measured under.
The table is documentation: training reads the settings and leaves it out.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError

RECIPE_TABLE = "recipe"


def recipe_names() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in resources.files(__name__).iterdir() if p.name.endswith(".toml"))


def config_path(name_or_path: str | Path) -> Path:
    """A config file's path: the file itself, or a shipped recipe by NAME."""
    path = Path(name_or_path)
    if path.suffix or path.exists():
        return path
    if str(name_or_path) not in recipe_names():
        raise ConfigError(f"--config {name_or_path}: no such file, nor a recipe; recipes: {', '.join(recipe_names())}")
    return Path(str(resources.files(__name__) / f"{name_or_path}.toml"))


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
    settings, recipe = read(name)
    return {"name": name, "settings": settings, **recipe}

"""Errors that the CLI turns into one readable line and an exit code."""


class GanzooError(Exception):
    """Base of every error ganzoo reports to a user."""

    exit_code = 1


class UsageError(GanzooError):
    """Bad input: an unknown name, an invalid option, a file that is not what it should be."""

    exit_code = 2


class PluginNotFound(UsageError, LookupError):
    """No installed plugin has that name."""


class AmbiguousPlugin(UsageError, LookupError):
    """Two distributions offer the same name and the bare name cannot choose."""


class BrokenPlugin(GanzooError):
    """A plugin is installed but cannot be used (import error, wrong base class, no Config)."""


class ConfigError(UsageError, ValueError):
    """An option or config value is invalid."""


class CheckpointError(UsageError):
    """A checkpoint or weights file is missing, damaged or not ganzoo's."""


class TrainingError(GanzooError):
    """Training stopped on a failure (a NaN loss, say)."""


class MetricError(GanzooError):
    """A metric could not be computed (the samples or the solver did not allow it)."""


class Interrupted(GanzooError):
    """Training was stopped with Ctrl-C after saving a checkpoint."""

    exit_code = 130


def shortened(text: str, limit: int = 200) -> str:
    """`text`, cut to about `limit` characters: an error never echoes a value of megabytes."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


#: how many of a list an error names
LISTED = 5


def listed(items: list[str], limit: int = LISTED, sep: str = ", ") -> str:
    """The first `limit` of `items`, joined, and how many more: an error about 50,000 keys stays one short line."""
    shown = sep.join(items[:limit])
    return shown if len(items) <= limit else f"{shown}{sep}and {len(items) - limit:,} more"

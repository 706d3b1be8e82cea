"""The config error type and the one check helper every section uses."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config file or value is invalid; the message names the field or file."""


def require(condition: bool, field: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{field}: {message}")


def require_at_least_one(config: object, section: str, names: tuple[str, ...]) -> None:
    """Counts and sizes that must be >= 1, named `section.name` in the error."""
    for name in names:
        require(getattr(config, name) >= 1, f"{section}.{name}", "must be at least 1")

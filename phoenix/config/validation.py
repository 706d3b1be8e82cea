"""The config error type and the one check helper every section uses."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config file or value is invalid; the message names the field or file."""


def require(condition: bool, field: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{field}: {message}")

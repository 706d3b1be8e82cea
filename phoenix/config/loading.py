"""Reading, validating, writing and overriding whole configs (TOML files in `configs/`).

One config system for the whole project: a TOML file has one table per section
(`[model]`, `[world]`, `[train]`, ...), each read into a frozen dataclass.
Unknown keys, wrong types and out-of-range values fail at load time with the
offending `section.key` in the message, so a typo never silently falls back to
a default. Configs are plain TOML: reading one never executes code.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from pathlib import Path
from typing import Any

from phoenix.config.importing import ImportConfig
from phoenix.config.logs import LogsConfig, SASRecConfig
from phoenix.config.mesh import MeshConfig
from phoenix.config.sections import (
    ModelConfig,
    PipelineConfig,
    RetrievalConfig,
    TrainConfig,
    WorldConfig,
)
from phoenix.config.validation import ConfigError
from phoenix.config.validation import require as _require


@dataclasses.dataclass(frozen=True)
class PhoenixConfig:
    """The whole config: one section per job."""

    model: ModelConfig = ModelConfig()
    world: WorldConfig = WorldConfig()
    train: TrainConfig = TrainConfig()
    pipeline: PipelineConfig = PipelineConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    logs: LogsConfig = LogsConfig()
    sasrec: SASRecConfig = SASRecConfig()
    mesh: MeshConfig = MeshConfig()

    def __post_init__(self) -> None:
        _require(
            self.model.table_row_multiple % self.mesh.model == 0,
            "mesh.model",
            f"must divide model.table_row_multiple ({self.model.table_row_multiple}) so table rows split evenly",
        )

    # Each job checks the sections it uses against [model], and only those: a config for the
    # log benchmark need not describe a retrieval model it never trains.

    def check_retrieval(self) -> None:
        unknown = [a for a in self.retrieval.positive_actions if a not in self.model.actions]
        _require(not unknown, "retrieval.positive_actions", f"{unknown} are not in model.actions")

    def check_logs(self) -> None:
        unknown = [a for a in self.logs.actions_used if a not in self.model.actions]
        _require(not unknown, "logs.interaction_action / logs.rating_actions", f"{unknown} are not in model.actions")
        for field in ("catalogue_weight", "catalogue_bce_weight"):
            _require(
                not getattr(self.logs, field) or self.model.sequence_match,
                f"logs.{field}",
                "trains the match term, so it needs model.sequence_match = true",
            )
        _require(
            self.model.post_id_dropout == 0,
            "model.post_id_dropout",
            "is not used by training on a log (its candidates are never fresh posts); set it to 0",
        )


_SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "world": WorldConfig,
    "train": TrainConfig,
    "pipeline": PipelineConfig,
    "retrieval": RetrievalConfig,
    "logs": LogsConfig,
    "sasrec": SASRecConfig,
    "mesh": MeshConfig,
}


def _coerce(value: Any, annotation: Any, field: str) -> Any:
    """Check one TOML value against a dataclass annotation (ints widen to floats)."""
    origin = typing.get_origin(annotation)
    if origin is dict:
        (_key_type, value_type) = typing.get_args(annotation)
        _require(isinstance(value, dict), field, f"expected a table, got {value!r}")
        return {k: _coerce(v, value_type, f"{field}.{k}") for k, v in value.items()}
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(annotation)
        _require(isinstance(value, list | tuple), field, f"expected a list, got {value!r}")
        return tuple(_coerce(item, item_type, f"{field}[{i}]") for i, item in enumerate(value))
    if dataclasses.is_dataclass(annotation):
        _require(isinstance(value, dict), field, f"expected a table, got {value!r}")
        return _section_from_dict(annotation, value, field)
    if annotation is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        _require(ok, field, f"expected a number, got {value!r}")
        _require(math.isfinite(value), field, f"must be finite, got {value!r}")
        return float(value)
    if annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        _require(ok, field, f"expected an integer, got {value!r}")
        return value
    if annotation is bool:
        _require(isinstance(value, bool), field, f"expected true or false, got {value!r}")
        return value
    if annotation is str:
        _require(isinstance(value, str), field, f"expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config annotation {annotation!r} for {field}")


def _section_from_dict(cls: type, values: dict[str, Any], section: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(f"{section}.{key}: unknown key (known: {', '.join(sorted(known))})")
    values = dict(values)
    for f in dataclasses.fields(cls):
        # A nested block not written out in full keeps the section's own defaults for it
        # (SASRec's schedule is not the ranker's), not the block class's.
        if isinstance(values.get(f.name), dict) and dataclasses.is_dataclass(hints[f.name]):
            if f.default_factory is not dataclasses.MISSING:
                values[f.name] = {**dataclasses.asdict(f.default_factory()), **values[f.name]}
    kwargs = {k: _coerce(v, hints[k], f"{section}.{k}") for k, v in values.items()}
    if not getattr(cls, "IS_BLOCK", False):
        return cls(**kwargs)
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise ConfigError(f"{section}.{err}") from None


def config_from_dict(data: dict[str, Any]) -> PhoenixConfig:
    """Build and validate a config from parsed TOML; missing keys keep their defaults."""
    for section in data:
        if section not in _SECTIONS:
            raise ConfigError(f"{section}: unknown section (known: {', '.join(_SECTIONS)})")
        if not isinstance(data[section], dict):
            raise ConfigError(f"{section}: expected a table")
    parts = {name: _section_from_dict(cls, data.get(name, {}), name) for name, cls in _SECTIONS.items()}
    return PhoenixConfig(**parts)


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err


def load_config(path: str | Path) -> PhoenixConfig:
    """Read a TOML config; a missing or malformed file names itself in the error."""
    path = Path(path)
    data = _read_toml(path)
    try:
        return config_from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err


@dataclasses.dataclass(frozen=True)
class ScoringConfig:
    """Weights of the weighted scorer, one per action head, and where they come from."""

    source: str
    weights: dict[str, float]
    epsilon: float = 0.001

    def __post_init__(self) -> None:
        _require(len(self.weights) > 0, "scoring.weights", "needs at least one action weight")
        _require(self.epsilon > 0, "scoring.epsilon", "must be positive")


def _load_one_table(path: str | Path, table: str, cls: type) -> Any:
    """A file holding exactly one `[table]`, read into `cls` (a weights file, an import mapping)."""
    path = Path(path)
    data = _read_toml(path)
    try:
        if set(data) != {table}:
            raise ConfigError(f"{', '.join(sorted(set(data) - {table})) or table}: "
                              f"this file holds exactly one [{table}] table")
        return _section_from_dict(cls, data[table], table)
    except (ConfigError, TypeError) as err:
        raise ConfigError(f"{path}: {err}") from err


def load_scoring_config(path: str | Path) -> ScoringConfig:
    """Read a weights file such as `configs/weights/x-2026-08.toml` (a `[scoring]` table)."""
    return _load_one_table(path, "scoring", ScoringConfig)


def import_config(path: str | Path | None = None, **overrides: Any) -> ImportConfig:
    """The `[import]` mapping of a file (or the defaults), with flag values overriding its keys."""
    base = dataclasses.asdict(_load_one_table(path, "import", ImportConfig)) if path else {}
    try:
        return _section_from_dict(ImportConfig, base | overrides, "import")
    except TypeError as err:
        raise ConfigError(f"import: {err}") from err


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def config_to_toml(config: PhoenixConfig) -> str:
    """Serialise a config so a workdir records exactly what it was trained with."""
    lines: list[str] = []
    for name in _SECTIONS:
        lines.extend(_toml_table(name, getattr(config, name)))
    return "\n".join(lines)


def _toml_table(name: str, section: Any) -> list[str]:
    """`[name]` with the section's plain fields, then one `[name.block]` table per nested block."""
    lines, blocks = [f"[{name}]"], []
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if dataclasses.is_dataclass(value):
            blocks.append((f"{name}.{f.name}", value))
        else:
            lines.append(f"{f.name} = {_toml_value(value)}")
    lines.append("")
    for block_name, block in blocks:
        lines.extend(_toml_table(block_name, block))
    return lines


def save_config(config: PhoenixConfig, path: str | Path) -> None:
    Path(path).write_text(config_to_toml(config))


def replace(config: PhoenixConfig, **sections: dict[str, Any]) -> PhoenixConfig:
    """Return a copy with some section fields overridden, validated like a file."""
    data = {name: dataclasses.asdict(getattr(config, name)) for name in _SECTIONS}
    for name, overrides in sections.items():
        _merge(data[name], overrides, _SECTIONS[name])
    return config_from_dict(data)


def _merge(values: dict[str, Any], overrides: dict[str, Any], cls: type) -> None:
    """Override `values` (a section of class `cls`) in place; a nested block is overridden key by key,
    any other value (a table such as `logs.rating_actions` included) is replaced whole."""
    hints = typing.get_type_hints(cls)
    for key, value in overrides.items():
        block = hints.get(key)
        if isinstance(value, dict) and dataclasses.is_dataclass(block):
            _merge(values[key], value, block)
        else:
            values[key] = value

"""Frozen, validated configuration loaded from TOML files in `configs/`."""

from phoenix.config.importing import ImportConfig
from phoenix.config.loading import (
    PhoenixConfig,
    ScoringConfig,
    config_from_dict,
    config_to_toml,
    import_config,
    load_config,
    load_scoring_config,
    replace,
    save_config,
)
from phoenix.config.logs import LogsConfig, SASRecConfig
from phoenix.config.mesh import MeshConfig
from phoenix.config.sections import (
    CONFIG_DIR,
    DEFAULT_ACTIONS,
    ModelConfig,
    PipelineConfig,
    RetrievalConfig,
    TrainConfig,
    WorldConfig,
)
from phoenix.config.validation import ConfigError

__all__ = [
    "CONFIG_DIR",
    "DEFAULT_ACTIONS",
    "ConfigError",
    "ImportConfig",
    "LogsConfig",
    "MeshConfig",
    "ModelConfig",
    "PhoenixConfig",
    "PipelineConfig",
    "RetrievalConfig",
    "SASRecConfig",
    "ScoringConfig",
    "TrainConfig",
    "WorldConfig",
    "config_from_dict",
    "config_to_toml",
    "import_config",
    "load_config",
    "load_scoring_config",
    "replace",
    "save_config",
]

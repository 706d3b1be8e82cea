"""The sections of a Phoenix config: model shapes, the synthetic world, training,
retrieval and the request pipeline. Each is a frozen dataclass that checks its
own values, naming `section.key` in any error.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from phoenix.config.validation import ConfigError, require_at_least_one
from phoenix.config.validation import require as _require

CONFIG_DIR = Path(__file__).resolve().parent.parent.parent / "configs"

DEFAULT_ACTIONS: tuple[str, ...] = (
    "favorite",
    "reply",
    "repost",
    "quote",
    "click",
    "profile_click",
    "video_view",
    "photo_expand",
    "share",
    "dwell",
    "follow_author",
    "not_interested",
    "block_author",
    "mute_author",
    "report",
)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Shapes of the Phoenix ranker (defaults: X's January demo shapes)."""

    actions: tuple[str, ...] = DEFAULT_ACTIONS
    num_hashes: int = 2
    hash_seed: int = 0
    user_buckets: int = 100_003
    post_buckets: int = 200_003
    author_buckets: int = 50_021
    embedding_dim: int = 64
    num_surfaces: int = 16
    model_dim: int = 128
    num_layers: int = 2
    num_q_heads: int = 2
    num_kv_heads: int = 2
    head_dim: int = 64
    ffn_widening: float = 2.0
    history_len: int = 32
    num_candidates: int = 32
    attn_logit_cap: float = 30.0
    rope_base: float = 10_000.0
    compute_dtype: str = "float32"
    dropout_rate: float = 0.0
    # Adds to every action's logit a bilinear match of the user state at the candidate's cutoff
    # with the candidate's post embedding (see `PhoenixRanker`); off keeps X's architecture.
    sequence_match: bool = False
    # Hashed tables get their rows rounded up to a multiple of this, so they split evenly over
    # any `mesh.model` that divides it (the extra rows are never looked up).
    table_row_multiple: int = 64

    def __post_init__(self) -> None:
        _require(len(self.actions) > 0, "model.actions", "needs at least one action")
        _require(
            len(set(self.actions)) == len(self.actions), "model.actions", "names must be unique"
        )
        for name in ("num_hashes", "embedding_dim", "model_dim", "num_layers", "head_dim"):
            _require(getattr(self, name) > 0, f"model.{name}", "must be positive")
        for name in ("user_buckets", "post_buckets", "author_buckets", "num_surfaces"):
            _require(getattr(self, name) >= 2, f"model.{name}", "must be at least 2 (bucket 0 is padding)")
        _require(self.num_q_heads > 0, "model.num_q_heads", "must be positive")
        _require(self.num_kv_heads > 0, "model.num_kv_heads", "must be positive")
        _require(
            self.num_q_heads % self.num_kv_heads == 0,
            "model.num_q_heads",
            f"must be a multiple of model.num_kv_heads ({self.num_kv_heads})",
        )
        _require(self.ffn_widening > 0, "model.ffn_widening", "must be positive")
        _require(self.history_len >= 1, "model.history_len", "must be at least 1")
        _require(self.num_candidates >= 1, "model.num_candidates", "must be at least 1")
        _require(self.attn_logit_cap > 0, "model.attn_logit_cap", "must be positive")
        _require(self.rope_base > 1, "model.rope_base", "must be greater than 1")
        _require(0 <= self.dropout_rate < 1, "model.dropout_rate", "must be in [0, 1)")
        _require(self.table_row_multiple >= 1, "model.table_row_multiple", "must be at least 1")
        _require(
            self.compute_dtype in ("float32", "bfloat16"),
            "model.compute_dtype",
            f"must be 'float32' or 'bfloat16', got {self.compute_dtype!r}",
        )

    @property
    def num_actions(self) -> int:
        return len(self.actions)

    def table_rows(self, num_buckets: int) -> int:
        """Rows allocated for a hashed table of `num_buckets` buckets."""
        return -(-num_buckets // self.table_row_multiple) * self.table_row_multiple

    @property
    def ffn_dim(self) -> int:
        """Grok-1's gated FFN width: int(widening·D)·2//3 rounded up to a multiple of 8."""
        inner = int(self.ffn_widening * self.model_dim) * 2 // 3
        return int(math.ceil(inner / 8) * 8)


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    """Size and seed of the synthetic world (defaults: X's August world sizes)."""

    seed: int = 0
    num_users: int = 10_000
    num_authors: int = 2_000
    num_posts: int = 50_000
    num_topics: int = 16
    days: float = 14.0
    impressions_per_user: float = 100.0
    follows_per_user: float = 20.0
    valid_fraction: float = 0.1
    test_fraction: float = 0.1

    def __post_init__(self) -> None:
        for name in ("num_users", "num_authors", "num_posts", "num_topics"):
            _require(getattr(self, name) >= 2, f"world.{name}", "must be at least 2")
        _require(self.num_posts >= self.num_authors, "world.num_posts", "must be >= world.num_authors")
        _require(self.days > 2, "world.days", "must be more than 2 days")
        _require(self.impressions_per_user >= 4, "world.impressions_per_user", "must be at least 4")
        _require(self.follows_per_user >= 1, "world.follows_per_user", "must be at least 1")
        for name in ("valid_fraction", "test_fraction"):
            _require(0 < getattr(self, name) < 0.5, f"world.{name}", "must be in (0, 0.5)")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation, checkpointing and logging of `phoenix train`."""

    seed: int = 0
    batch_size: int = 32
    num_steps: int = 2_000
    learning_rate: float = 3e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip_norm: float = 1.0
    post_id_dropout: float = 0.5
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 50
    eval_every: int = 500
    eval_examples: int = 512

    def __post_init__(self) -> None:
        counts = ("batch_size", "num_steps", "checkpoint_every", "keep_checkpoints", "log_every", "eval_every")
        require_at_least_one(self, "train", (*counts, "eval_examples"))
        _require(self.learning_rate > 0, "train.learning_rate", "must be positive")
        _require(0 <= self.warmup_steps < self.num_steps, "train.warmup_steps", "must be in [0, num_steps)")
        _require(self.weight_decay >= 0, "train.weight_decay", "must be >= 0")
        _require(self.grad_clip_norm > 0, "train.grad_clip_norm", "must be positive")
        _require(0 <= self.post_id_dropout < 1, "train.post_id_dropout", "must be in [0, 1)")


def schedule_as_train_config(section_config: object, section: str, **overrides: object) -> TrainConfig:
    """The fields a section shares with `TrainConfig` (plus `overrides`) as a `TrainConfig`.

    Every model's optimizer is built from one recipe and its schedule checked by one set of
    rules; an error names the section's own key (`retrieval.warmup_steps`, not `train.`).
    """
    shared = {f.name for f in dataclasses.fields(TrainConfig)} & {f.name for f in dataclasses.fields(section_config)}
    values = {name: getattr(section_config, name) for name in shared} | overrides
    try:
        return TrainConfig(**values)
    except ConfigError as err:
        raise ConfigError(str(err).replace("train.", f"{section}.", 1)) from None


@dataclasses.dataclass(frozen=True)
class RetrievalConfig:
    """The two-tower retrieval model: what counts as a positive, its loss, training and search.

    The towers take their shapes (hash tables, model_dim, layers, heads,
    history_len) from `[model]`; the user tower has its own parameters.
    """

    positive_actions: tuple[str, ...] = ("favorite", "reply", "repost", "quote", "share")
    temperature: float = 0.05
    learn_temperature: bool = True
    logq_correction: bool = True
    post_id_dropout: float = 0.5
    seed: int = 0
    batch_size: int = 64
    num_steps: int = 1_500
    learning_rate: float = 3e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip_norm: float = 1.0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 50
    eval_every: int = 500
    eval_users: int = 512
    max_results: int = 1_000
    search_block_scores: int = 1 << 22

    def __post_init__(self) -> None:
        _require(len(self.positive_actions) > 0, "retrieval.positive_actions", "needs at least one action")
        _require(0.001 <= self.temperature <= 10, "retrieval.temperature", "must be in [0.001, 10]")
        require_at_least_one(self, "retrieval", ("eval_users", "max_results", "search_block_scores"))
        self.optimizer_config()  # the schedule fields share TrainConfig's rules

    def optimizer_config(self) -> TrainConfig:
        """The schedule fields as a `TrainConfig`: one set of rules and one optimizer recipe for both models."""
        return schedule_as_train_config(self, "retrieval")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Thresholds of the For You request path (defaults: X's August 2026 home mixer)."""

    weights_file: str = "weights/x-2026-08.toml"
    max_age_hours: float = 48.0
    top_k: int = 50
    result_size: int = 35
    diversity_decay: float = 0.5
    diversity_floor: float = 0.25
    out_of_network_factor: float = 0.75
    discount_in_network_replies_reposts: bool = True
    in_network_max_results: int = 1200
    disabled_stages: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require(self.weights_path.is_file(), "pipeline.weights_file", f"{self.weights_path} not found")
        _require(self.max_age_hours > 0, "pipeline.max_age_hours", "must be positive")
        _require(self.top_k >= 1, "pipeline.top_k", "must be at least 1")
        _require(1 <= self.result_size <= self.top_k, "pipeline.result_size", "must be in [1, top_k]")
        _require(0 < self.diversity_decay <= 1, "pipeline.diversity_decay", "must be in (0, 1]")
        _require(0 <= self.diversity_floor <= 1, "pipeline.diversity_floor", "must be in [0, 1]")
        _require(0 < self.out_of_network_factor <= 1, "pipeline.out_of_network_factor", "must be in (0, 1]")
        _require(self.in_network_max_results >= 0, "pipeline.in_network_max_results", "must be >= 0")

    @property
    def weights_path(self) -> Path:
        path = Path(self.weights_file)
        return path if path.is_absolute() else CONFIG_DIR / path

"""The sections of a Phoenix config: model shapes, the synthetic world, training,
retrieval and the request pipeline. Each is a frozen dataclass that checks its
own values, naming `section.key` in any error.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from phoenix.config.validation import require as _require
from phoenix.config.validation import require_at_least_one

CONFIG_DIR = Path(__file__).resolve().parent.parent.parent / "configs"

# Upper bounds that catch a typo at load instead of an allocation failure later.
MAX_DIM = 1 << 16  # widths, depths, heads, hashes, lengths
MAX_BUCKETS = (1 << 31) - 1
MAX_BATCH = 1 << 20

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
    # Training drops a candidate's post-id embedding with this probability, so the ranker also
    # learns to score a fresh post (untrained id) from its author and the user.
    post_id_dropout: float = 0.5
    # Adds to every action's logit a bilinear match of the user state at the candidate's cutoff
    # with the candidate's post embedding (see `PhoenixRanker`); off keeps X's architecture.
    sequence_match: bool = False
    # Embed user ids / author ids. False: every id of that table maps to the padding row, so the
    # model knows a user by their history alone (a fixed log trains a user's id embedding on that
    # user's future items: a memorised shortcut the held-out next item does not share), or a log
    # without authors serves without them. Serving hashes requests the same way.
    user_ids: bool = True
    author_ids: bool = True
    # Hashed tables get their rows rounded up to a multiple of this, so they split evenly over
    # any `mesh.model` that divides it (the extra rows are never looked up).
    table_row_multiple: int = 64

    def __post_init__(self) -> None:
        _require(len(self.actions) > 0, "model.actions", "needs at least one action")
        _require(
            len(set(self.actions)) == len(self.actions), "model.actions", "names must be unique"
        )
        _require(all(a.strip() == a and a for a in self.actions), "model.actions",
                 f"names must be non-empty, without surrounding spaces, got {list(self.actions)}")
        sizes = ("num_hashes", "embedding_dim", "model_dim", "num_layers", "head_dim", "num_q_heads", "num_kv_heads",
                 "history_len", "num_candidates")
        for name in sizes:
            _require(0 < getattr(self, name) <= MAX_DIM, f"model.{name}", f"must be in [1, {MAX_DIM}]")
        for name in ("user_buckets", "post_buckets", "author_buckets", "num_surfaces"):
            _require(getattr(self, name) >= 2, f"model.{name}", "must be at least 2 (bucket 0 is padding)")
            _require(getattr(self, name) <= MAX_BUCKETS, f"model.{name}",
                     f"must be at most {MAX_BUCKETS} (hashed rows are int32)")
        _require(
            self.num_q_heads % self.num_kv_heads == 0,
            "model.num_q_heads",
            f"must be a multiple of model.num_kv_heads ({self.num_kv_heads})",
        )
        _require(self.ffn_widening > 0, "model.ffn_widening", "must be positive")
        _require(self.attn_logit_cap > 0, "model.attn_logit_cap", "must be positive")
        _require(self.rope_base > 1, "model.rope_base", "must be greater than 1")
        _require(0 <= self.dropout_rate < 1, "model.dropout_rate", "must be in [0, 1)")
        _require(0 <= self.post_id_dropout < 1, "model.post_id_dropout", "must be in [0, 1)")
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
    """The optimisation schedule, one block for every model: `[train]` (the ranker),
    `[retrieval.train]`, `[logs.train]` (Phoenix on a log) and `[sasrec.train]`.

    Length is `num_steps`, or `num_epochs` passes over the training examples
    (exactly one is non-zero). The cadences (`log_every`, `eval_every`,
    `checkpoint_every`) and `patience` count in that unit: steps, or epochs.
    AdamW with linear warmup, then cosine decay to 10% or a constant rate.
    """

    seed: int = 0
    batch_size: int = 32
    num_steps: int = 2_000
    num_epochs: int = 0
    learning_rate: float = 3e-3
    warmup_steps: int = 100
    decay: str = "cosine"
    weight_decay: float = 0.01
    adam_b2: float = 0.999
    grad_clip_norm: float = 1.0  # 0: no clipping
    log_every: int = 50
    eval_every: int = 500
    eval_examples: int = 512  # validation sample: ranker examples, retrieval users
    patience: int = 0  # stop after this long without a better validation metric (0: never)
    time_budget_s: float = 0.0  # wall-clock safety net (0: none); the step that crosses it is validated
    average_decay: float = 0.0  # validate and keep an exponential moving average of the parameters (0: off)
    checkpoint_every: int = 500
    keep_checkpoints: int = 2

    # A block reused inside several sections: its errors name the key alone and the loader
    # puts the section's path in front (`retrieval.train.learning_rate`).
    IS_BLOCK = True

    def __post_init__(self) -> None:
        counts = ("batch_size", "log_every", "eval_every", "eval_examples", "checkpoint_every", "keep_checkpoints")
        for name in counts:
            _require(getattr(self, name) >= 1, name, "must be at least 1")
        for name in ("batch_size", "eval_examples"):
            _require(getattr(self, name) <= MAX_BATCH, name, f"must be at most {MAX_BATCH}")
        _require(
            (self.num_steps > 0) != (self.num_epochs > 0) and min(self.num_steps, self.num_epochs) >= 0,
            "num_steps",
            f"exactly one of num_steps ({self.num_steps}) and num_epochs ({self.num_epochs}) must be positive",
        )
        _require(self.learning_rate > 0, "learning_rate", "must be positive")
        _require(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        _require(
            not self.num_steps or self.warmup_steps < self.num_steps, "warmup_steps", "must be below num_steps"
        )
        _require(self.decay in ("cosine", "constant"), "decay", f"must be 'cosine' or 'constant', got {self.decay!r}")
        _require(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        _require(0 < self.adam_b2 < 1, "adam_b2", "must be in (0, 1)")
        _require(self.grad_clip_norm >= 0, "grad_clip_norm", "must be >= 0 (0: no clipping)")
        _require(self.patience >= 0, "patience", "must be >= 0 (0: never stop early)")
        _require(self.time_budget_s >= 0, "time_budget_s", "must be >= 0 (0: no budget)")
        _require(0 <= self.average_decay < 1, "average_decay", "must be in [0, 1) (0: no average)")


def _retrieval_schedule() -> TrainConfig:
    return TrainConfig(batch_size=64, num_steps=1_500, eval_examples=512)


@dataclasses.dataclass(frozen=True)
class RetrievalConfig:
    """The two-tower retrieval model: what counts as a positive, its loss, search, and `[retrieval.train]`.

    The towers take their shapes (hash tables, model_dim, layers, heads,
    history_len) from `[model]`; the user tower has its own parameters.
    `train.eval_examples` is the number of validation users.
    """

    positive_actions: tuple[str, ...] = ("favorite", "reply", "repost", "quote", "share")
    temperature: float = 0.05
    learn_temperature: bool = True
    logq_correction: bool = True
    post_id_dropout: float = 0.5
    max_results: int = 1_000
    search_block_scores: int = 1 << 22
    train: TrainConfig = dataclasses.field(default_factory=_retrieval_schedule)

    def __post_init__(self) -> None:
        _require(len(self.positive_actions) > 0, "retrieval.positive_actions", "needs at least one action")
        _require(0.001 <= self.temperature <= 10, "retrieval.temperature", "must be in [0.001, 10]")
        _require(0 <= self.post_id_dropout < 1, "retrieval.post_id_dropout", "must be in [0, 1)")
        require_at_least_one(self, "retrieval", ("max_results", "search_block_scores"))


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

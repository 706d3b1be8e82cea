"""Sections for real interaction logs: `[logs]` (actions, protocol, Phoenix's
budget on logs) and `[sasrec]` (the SASRec baseline at its paper's defaults).

A real log has no impressions without engagement: every row is an interaction.
Every row therefore takes `logs.interaction_action` (the action the next-item
protocol ranks by), and a rating column, when the log has one, adds the actions
of `logs.rating_actions` (inclusive rating ranges).
"""

from __future__ import annotations

import dataclasses

from phoenix.config.sections import TrainConfig
from phoenix.config.validation import require as _require
from phoenix.config.validation import require_at_least_one


def _dense(profile: str) -> bool:
    if profile not in ("dense", "sparse"):
        raise ValueError(f"profile: {profile!r} is not a kind of log ('dense' or 'sparse')")
    return profile == "dense"


def _default_rating_actions() -> dict[str, tuple[float, ...]]:
    # The mapping ../shared/README.md suggests for MovieLens: 4-5 like, 5 also share, 1-2 not interested.
    return {"favorite": (4.0, 5.0), "share": (5.0, 5.0), "not_interested": (1.0, 2.0)}


def _logs_schedule() -> TrainConfig:
    return TrainConfig(num_steps=0, num_epochs=100, learning_rate=1e-3, log_every=1, eval_every=1, patience=10)


@dataclasses.dataclass(frozen=True)
class LogsConfig:
    """How a log becomes actions, the next-item protocol, and Phoenix's training budget on logs."""

    interaction_action: str = "click"
    rating_actions: dict[str, tuple[float, ...]] = dataclasses.field(default_factory=_default_rating_actions)
    eval_negatives: int = 100
    eval_seed: int = 0
    # Validation during training (early stopping, the kept epoch) scores this many of the evaluated
    # users, the same ones for every model and epoch (0: all of them); the reported valid and test
    # numbers score every user.
    valid_users: int = 0
    min_interactions: int = 3
    train_negatives: int = 4
    listwise_weight: float = 1.0
    # Train on each user's last `recent_targets` positions only (0: all), as SASRec trains on its
    # last max_len items (see phoenix_examples.training_windows).
    recent_targets: int = 0
    # Weight of the match term's softmax against a catalogue sample (needs model.sequence_match).
    catalogue_weight: float = 0.0
    catalogue_negatives: int = 2048
    # Weight of a sigmoid cross-entropy on the same catalogue logits (see catalogue_loss).
    catalogue_bce_weight: float = 0.0
    # Leave the user's own training items out of the catalogue softmax's negatives, as the
    # protocol's and SASRec's negatives are (see phoenix_training.catalogue_loss).
    catalogue_excludes_user_items: bool = False
    # `[logs.train] batch_size` counts windows of the full history_len; a batch of shorter windows
    # (history bucket b) holds batch_size · history_len / b of them, as many positions per step.
    batch_by_tokens: bool = False
    # A log with fewer interactions per user than `sparse_below` (on average) is sparse: SASRec takes
    # its paper's Amazon setting (`[sasrec]` sparse_*) and Phoenix trains with `sparse_weight_decay`
    # instead of `[logs.train] weight_decay` (0: no log is sparse).
    sparse_below: float = 20.0
    sparse_weight_decay: float = 0.01
    train: TrainConfig = dataclasses.field(default_factory=_logs_schedule)

    def __post_init__(self) -> None:
        for action, bounds in self.rating_actions.items():
            field = f"logs.rating_actions.{action}"
            _require(len(bounds) == 2, field, f"expected [low, high] ratings, got {list(bounds)}")
            _require(bounds[0] <= bounds[1], field, f"low {bounds[0]} is above high {bounds[1]}")
        _require(self.valid_users >= 0, "logs.valid_users", "must be >= 0 (0: every evaluated user)")
        _require(self.min_interactions >= 3, "logs.min_interactions", "must be at least 3 (train, valid, test)")
        require_at_least_one(self, "logs", ("eval_negatives", "train_negatives"))
        _require(self.recent_targets >= 0, "logs.recent_targets", "must be >= 0 (0: every position)")
        _require(self.listwise_weight >= 0, "logs.listwise_weight", "must be >= 0")
        _require(self.catalogue_weight >= 0, "logs.catalogue_weight", "must be >= 0")
        _require(self.catalogue_bce_weight >= 0, "logs.catalogue_bce_weight", "must be >= 0")
        _require(
            not self.catalogue_excludes_user_items or self.catalogue_weight > 0 or self.catalogue_bce_weight > 0,
            "logs.catalogue_excludes_user_items",
            "shapes the catalogue losses, so it needs logs.catalogue_weight or logs.catalogue_bce_weight > 0",
        )
        _require(self.catalogue_negatives >= 1, "logs.catalogue_negatives", "must be at least 1")
        _require(self.sparse_below >= 0, "logs.sparse_below", "must be >= 0 (0: no log is sparse)")
        _require(self.sparse_weight_decay >= 0, "logs.sparse_weight_decay", "must be >= 0")

    def profile(self, interactions_per_user: float) -> str:
        """The kind of log, "dense" or "sparse", from its mean interactions per user."""
        return "sparse" if interactions_per_user < self.sparse_below else "dense"

    def for_profile(self, profile: str) -> LogsConfig:
        """Phoenix's setting for this kind of log: a sparse log trains with `sparse_weight_decay`."""
        if _dense(profile):
            return self
        return dataclasses.replace(self, train=dataclasses.replace(self.train, weight_decay=self.sparse_weight_decay))

    @property
    def actions_used(self) -> tuple[str, ...]:
        return (self.interaction_action, *self.rating_actions)


def _sasrec_schedule() -> TrainConfig:
    # The paper's: Adam (no weight decay, beta2 0.98) at a constant 1e-3, batches of 128 users.
    return TrainConfig(
        batch_size=128, num_steps=0, num_epochs=200, learning_rate=1e-3, warmup_steps=0, decay="constant",
        weight_decay=0.0, adam_b2=0.98, grad_clip_norm=0.0, log_every=1, eval_every=1, patience=25,
    )


@dataclasses.dataclass(frozen=True)
class SASRecConfig:
    """SASRec (Kang & McAuley 2018) at the paper's defaults for the kind of log; early-stopped like Phoenix.

    Dense logs (MovieLens) train with length 200 and dropout 0.2, sparse ones (the paper's Amazon
    sets) with length 50 and dropout 0.5 (the kind of log: `LogsConfig.profile`). The paper's
    code validates every 20 epochs; `[sasrec.train]` validates every epoch and stops after
    `patience` epochs without a better validation NDCG@10, keeping the best epoch's parameters.
    """

    model_dim: int = 50
    num_layers: int = 2
    num_heads: int = 1
    history_len: int = 200
    dropout_rate: float = 0.2
    # The paper ran its sparse Amazon logs with length 50 and dropout 0.5: a sparse log (under
    # `logs.sparse_below` interactions per user) gets those instead of the two above.
    sparse_history_len: int = 50
    sparse_dropout_rate: float = 0.5
    train: TrainConfig = dataclasses.field(default_factory=_sasrec_schedule)

    def __post_init__(self) -> None:
        require_at_least_one(
            self, "sasrec", ("model_dim", "num_layers", "num_heads", "history_len", "sparse_history_len"))
        _require(self.model_dim % self.num_heads == 0, "sasrec.model_dim", "must be a multiple of sasrec.num_heads")
        for name in ("dropout_rate", "sparse_dropout_rate"):
            _require(0 <= getattr(self, name) < 1, f"sasrec.{name}", "must be in [0, 1)")

    def for_profile(self, profile: str) -> SASRecConfig:
        """The paper's setting for this kind of log ("dense" or "sparse", `LogsConfig.profile`)."""
        if _dense(profile):
            return self
        return dataclasses.replace(self, history_len=self.sparse_history_len, dropout_rate=self.sparse_dropout_rate)

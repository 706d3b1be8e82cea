"""Small builders shared by the tests (random but valid requests)."""

from __future__ import annotations

import numpy as np

from phoenix.config import DEFAULT_ACTIONS, ModelConfig, PhoenixConfig, RetrievalConfig, TrainConfig, WorldConfig
from phoenix.data.batch import RequestBatch
from phoenix.data.interactions import InteractionLog, MalformedRows

SMALL_MODEL = ModelConfig(
    user_buckets=101,
    post_buckets=211,
    author_buckets=53,
    embedding_dim=8,
    model_dim=32,
    num_layers=2,
    num_q_heads=4,
    num_kv_heads=2,
    head_dim=8,
    history_len=12,
    num_candidates=6,
)


def random_request(
    rng: np.random.Generator,
    config: ModelConfig = SMALL_MODEL,
    batch: int = 2,
    history: int | None = None,
    candidates: int | None = None,
    lengths: list[int] | None = None,
) -> RequestBatch:
    """A valid request batch with right-padded histories of the given lengths."""
    h = config.history_len if history is None else history
    c = config.num_candidates if candidates is None else candidates
    lengths = lengths if lengths is not None else list(rng.integers(0, h + 1, batch))
    valid = np.arange(h)[None, :] < np.array(lengths)[:, None]  # [B, H]
    post = np.where(valid, rng.integers(1, 10_000, (batch, h)), 0)
    actions = (rng.random((batch, h, config.num_actions)) < 0.3) & valid[..., None]
    return RequestBatch(
        user_id=rng.integers(1, 1000, batch),
        history_post_id=post,
        history_author_id=np.where(valid, rng.integers(1, 500, (batch, h)), 0),
        history_actions=actions.astype(np.int8),
        history_surface=np.where(valid, rng.integers(0, 6, (batch, h)), 0),
        candidate_post_id=rng.integers(1, 10_000, (batch, c)),
        candidate_author_id=rng.integers(1, 500, (batch, c)),
        candidate_surface=rng.integers(0, 6, (batch, c)),
        candidate_cutoff=np.stack([rng.integers(0, n + 1, c) for n in lengths]),
    )


def select_candidates(request: RequestBatch, columns: np.ndarray) -> RequestBatch:
    """The same request with candidate columns reordered / subset."""
    fields = dict(vars(request))
    for name in ("candidate_post_id", "candidate_author_id", "candidate_surface", "candidate_cutoff"):
        fields[name] = fields[name][:, columns]
    return RequestBatch(**fields)


MICRO_CONFIG = PhoenixConfig(
    model=ModelConfig(
        user_buckets=401,
        post_buckets=16411,
        author_buckets=503,
        embedding_dim=16,
        model_dim=32,
        num_layers=1,
        num_q_heads=2,
        num_kv_heads=1,
        head_dim=16,
        history_len=16,
        num_candidates=16,
    ),
    world=WorldConfig(num_users=400, num_authors=100, num_posts=2000, num_topics=8, impressions_per_user=300),
    train=TrainConfig(
        batch_size=32, num_steps=1200, learning_rate=5e-3, warmup_steps=30, weight_decay=0.1,
        checkpoint_every=600, log_every=50, eval_every=600, eval_examples=256,
    ),
)

MICRO_RETRIEVAL = RetrievalConfig(
    max_results=300,
    train=TrainConfig(
        batch_size=32, num_steps=300, learning_rate=5e-3, warmup_steps=20, checkpoint_every=150, log_every=50,
        eval_every=300, eval_examples=128,
    ),
)


def log_from_sequences(sequences: dict[int, list[int]], num_items: int) -> InteractionLog:
    """User index -> item indices in time order (users interleaved round-robin, like a real log)."""
    rows = []
    longest = max(len(items) for items in sequences.values())
    for t in range(longest):
        for user, items in sorted(sequences.items()):
            if t < len(items):
                rows.append((user, items[t]))
    user = np.array([r[0] for r in rows], np.int64)
    item = np.array([r[1] for r in rows], np.int64)
    actions = np.zeros((user.size, len(DEFAULT_ACTIONS)), np.int8)
    actions[:, DEFAULT_ACTIONS.index("click")] = 1
    actions[:, DEFAULT_ACTIONS.index("favorite")] = item % 2  # some variety in the history actions
    return InteractionLog(
        user, item, np.zeros_like(user), actions, DEFAULT_ACTIONS,
        np.arange(1, max(sequences) + 1), np.arange(1, num_items + 1), MalformedRows(), "memory",
    )

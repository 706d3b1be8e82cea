"""Two-tower retrieval: a user vector and an item vector whose dot product ranks a corpus.

    user tower: the ranker's prefix encoder (own parameters) over user + history,
                final RMSNorm, mean-pooled over valid positions, L2-normalised;
    item tower: hashed post and author ids -> Linear(2·K·E -> 2D) -> SiLU ->
                Linear(2D -> D), L2-normalised;
    score     : dot product (cosine), so a corpus is searched by one matmul.

The history is causal, so the mean of the first c+1 hidden states is exactly
the user vector a request with c history items would get: `user_vectors_at_cutoffs`
gives one vector per cutoff from a single pass, which is how training packs a
whole engagement sequence into one example.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from phoenix.config import ModelConfig, RetrievalConfig
from phoenix.data.batch import PrefixBatch
from phoenix.model.axes import linear, param
from phoenix.model.prefix_encoder import HashedEmbedding, PrefixEncoder

_EPS = 1e-6


def l2_normalize(x: jnp.ndarray) -> jnp.ndarray:  # [..., D] -> [..., D], unit length (zero stays zero)
    x32 = x.astype(jnp.float32)
    return x32 / jnp.sqrt(jnp.maximum(jnp.sum(x32 * x32, axis=-1, keepdims=True), _EPS * _EPS))


class UserTower(nnx.Module):
    """User + engagement history -> one unit vector per request (or per history cutoff).

    It holds its own `PrefixEncoder` (the ranker's code, its own parameters).
    """

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.encoder = PrefixEncoder(config, rngs=rngs)

    def user_vectors_at_cutoffs(self, batch: PrefixBatch) -> jnp.ndarray:  # [B, 1+H, D]
        """Row c: the user vector after the first c history items (c = 0..H)."""
        hidden, _, _ = self.encoder.run_prefix(batch)  # [B, 1+H, D]
        hidden = self.encoder.final_norm(hidden).astype(jnp.float32)  # [B, 1+H, D]
        valid = jnp.concatenate(
            [jnp.ones_like(batch.history_valid[:, :1]), batch.history_valid], axis=1
        ).astype(jnp.float32)  # [B, 1+H]
        running_sum = jnp.cumsum(hidden * valid[..., None], axis=1)  # [B, 1+H, D]
        running_count = jnp.cumsum(valid, axis=1)[..., None]  # [B, 1+H, 1]
        return l2_normalize(running_sum / running_count)  # [B, 1+H, D]

    def __call__(self, batch: PrefixBatch) -> jnp.ndarray:  # [B, D]
        """The user vector after the whole (valid) history: mean over user + valid items."""
        vectors = self.user_vectors_at_cutoffs(batch)  # [B, 1+H, D]
        length = jnp.sum(batch.history_valid, axis=1)  # [B]
        return jnp.take_along_axis(vectors, length[:, None, None], axis=1)[:, 0]  # [B, D]


class ItemTower(nnx.Module):
    """Hashed post and author ids -> one unit vector per post."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        e, k, d = config.embedding_dim, config.num_hashes, config.model_dim
        dtype = jnp.dtype(config.compute_dtype)
        self.post_embed = HashedEmbedding(config.table_rows(config.post_buckets), e, dtype, rngs=rngs)
        self.author_embed = HashedEmbedding(config.table_rows(config.author_buckets), e, dtype, rngs=rngs)
        self.hidden = linear(2 * k * e, 2 * d, ("tokens_in", "mlp"), dtype=dtype, rngs=rngs)
        self.out = linear(2 * d, d, ("mlp", "embed"), dtype=dtype, rngs=rngs)

    def __call__(
        self,
        post_hashes: jnp.ndarray,  # [..., K]
        author_hashes: jnp.ndarray,  # [..., K]
        post_keep: jnp.ndarray | None = None,  # [...] training-time post-id dropout
    ) -> jnp.ndarray:  # [..., D]
        """A post whose id was never trained still gets its author's direction.

        Training drops the post-id half at random (`post_keep`) so fresh posts,
        whose id rows are untrained, are placed by their author.
        """
        posts = self.post_embed(post_hashes)  # [..., K·E]
        if post_keep is not None:
            posts = posts * post_keep[..., None].astype(posts.dtype)
        x = jnp.concatenate([posts, self.author_embed(author_hashes)], axis=-1)  # [..., 2·K·E]
        return l2_normalize(self.out(nnx.silu(self.hidden(x))))  # [..., D]


class TwoTowerModel(nnx.Module):
    """Both towers and the softmax temperature (learned in log space, or fixed by config)."""

    def __init__(self, config: ModelConfig, retrieval: RetrievalConfig, *, rngs: nnx.Rngs):
        self.user_tower = UserTower(config, rngs=rngs)
        self.item_tower = ItemTower(config, rngs=rngs)
        log_t = jnp.log(jnp.asarray(retrieval.temperature, jnp.float32))
        self.log_temperature = param(log_t, ()) if retrieval.learn_temperature else nnx.Variable(log_t)

    @property
    def temperature(self) -> jnp.ndarray:  # scalar, kept in [0.001, 10] so logits stay bounded
        return jnp.clip(jnp.exp(self.log_temperature.value), 1e-3, 10.0)


def build_two_tower(config: ModelConfig, retrieval: RetrievalConfig, seed: int = 0) -> TwoTowerModel:
    return TwoTowerModel(config, retrieval, rngs=nnx.Rngs(seed))

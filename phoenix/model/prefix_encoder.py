"""The user + engagement-history encoder shared by the ranker and the retrieval user tower.

Both models read a request's prefix the same way: hashed user, post and author
ids, the signed multi-hot of actions taken and the surface, projected to
model_dim and run through causal Grok-1 blocks. Each model owns its own copy
of these parameters (the ranker and the user tower are trained separately);
only the code is shared.
"""

from __future__ import annotations

import jax.numpy as jnp
from einops import rearrange
from flax import nnx

from phoenix.config import ModelConfig
from phoenix.data.batch import PrefixBatch
from phoenix.model.attention_mask import prefix_mask
from phoenix.model.axes import embed, linear
from phoenix.model.dropout import Dropout
from phoenix.model.transformer import RMSNorm, Rotary, TransformerBlock
from phoenix.parallel.sharded_lookup import embedding_lookup


class HashedEmbedding(nnx.Module):
    """K hash rows of one id table, concatenated: [..., K] -> [..., K·E]."""

    def __init__(self, num_rows: int, dim: int, dtype: jnp.dtype, *, rngs: nnx.Rngs):
        # Small init: a row no training id ever touched stays near zero, not noise.
        init = nnx.initializers.normal(stddev=0.02)
        self.dtype = dtype
        self.table = embed(num_rows, dim, ("table_rows", "table_embed"), dtype=dtype, embedding_init=init, rngs=rngs)

    def __call__(self, hashes: jnp.ndarray) -> jnp.ndarray:  # [..., K] -> [..., K·E]
        rows = embedding_lookup(self.table.embedding.value.astype(self.dtype), hashes)  # [..., K, E]
        rows = jnp.where((hashes != 0)[..., None], rows, 0)  # bucket 0 is padding
        return rearrange(rows, "... k e -> ... (k e)")


class PrefixEncoder(nnx.Module):
    """Embeddings, projections and transformer blocks of user + history (no output head)."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.config = config
        e, k, d = config.embedding_dim, config.num_hashes, config.model_dim
        dtype = jnp.dtype(config.compute_dtype)
        rows = config.table_rows  # tables padded so their rows split evenly over a mesh
        self.user_embed = HashedEmbedding(rows(config.user_buckets), e, dtype, rngs=rngs)
        self.post_embed = HashedEmbedding(rows(config.post_buckets), e, dtype, rngs=rngs)
        self.author_embed = HashedEmbedding(rows(config.author_buckets), e, dtype, rngs=rngs)
        self.action_embed = linear(
            config.num_actions, e, ("actions", "table_embed"), use_bias=False, dtype=dtype, rngs=rngs
        )
        self.surface_embed = embed(config.num_surfaces, e, ("surfaces", "table_embed"), dtype=dtype, rngs=rngs)
        dense = dict(use_bias=False, dtype=dtype, rngs=rngs)
        self.user_proj = linear(k * e, d, ("tokens_in", "embed"), **dense)
        self.history_proj = linear(2 * k * e + 2 * e, d, ("tokens_in", "embed"), **dense)
        self.blocks = nnx.List([TransformerBlock(config, rngs=rngs) for _ in range(config.num_layers)])
        self.final_norm = RMSNorm(d)
        self.embed_dropout = Dropout(config.dropout_rate, rngs=rngs)

    def rotary(self, positions: jnp.ndarray) -> Rotary:  # positions [B, T]
        return Rotary.at(positions, self.config.head_dim, self.config.rope_base, self.config.history_len + 2)

    def embed_prefix(self, batch: PrefixBatch) -> jnp.ndarray:  # [B, 1+H, D]
        """The user token followed by one token per history item."""
        user = self.user_proj(self.user_embed(batch.user_hashes))[:, None]  # [B, 1, D]
        # Signed action embedding: +1 for actions taken, -1 for not; zero if none taken.
        signed = 2.0 * batch.history_actions.astype(jnp.float32) - 1.0  # [B, H, A]
        actions = self.action_embed(signed)  # [B, H, E]
        any_action = jnp.any(batch.history_actions > 0, axis=-1, keepdims=True)  # [B, H, 1]
        actions = jnp.where(any_action, actions, 0)
        history = jnp.concatenate(
            [
                self.post_embed(batch.history_post_hashes),  # [B, H, K·E]
                self.author_embed(batch.history_author_hashes),  # [B, H, K·E]
                actions,
                self.surface_embed(batch.history_surface),  # [B, H, E]
            ],
            axis=-1,
        )
        return self.embed_dropout(jnp.concatenate([user, self.history_proj(history)], axis=1))  # [B, 1+H, D]

    def run_prefix(self, batch: PrefixBatch) -> tuple[jnp.ndarray, list, list]:
        """Causal pass over user + history: hidden states [B, 1+H, D] and each layer's keys/values."""
        h = batch.history_post_hashes.shape[1]
        x = self.embed_prefix(batch)  # [B, 1+H, D]
        positions = jnp.broadcast_to(jnp.arange(1 + h, dtype=jnp.int32), x.shape[:2])  # [B, 1+H]
        rope, mask = self.rotary(positions), prefix_mask(batch.history_valid)  # mask [B, 1+H, 1+H]
        keys, values = [], []
        for block in self.blocks:
            x, k, v = block(x, rope, mask)  # k, v [B, 1+H, G, Dh]
            keys.append(k)
            values.append(v)
        return x, keys, values

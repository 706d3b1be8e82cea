"""The Phoenix ranker: one user token, the engagement history, the candidates.

Read top to bottom:
1. embed ids with K hash tables each and project every token to model_dim;
2. build the candidate-isolation mask and positions;
3. run the Grok-1 blocks, a final RMSNorm, and unembed the candidate rows to
   one logit per action (sigmoid gives P(action)).

No hand-made features: everything the model knows comes from ids, the actions
the user took on history items, and the product surface.
"""

from __future__ import annotations

import jax.numpy as jnp
from einops import rearrange
from flax import nnx

from phoenix.config import ModelConfig
from phoenix.model.attention_mask import (
    candidate_isolation_mask,
    candidate_prefix_mask,
    prefix_mask,
    token_positions,
)
from phoenix.model.batch import RankerBatch
from phoenix.model.transformer import RMSNorm, Rotary, TransformerBlock


class HashedEmbedding(nnx.Module):
    """K hash rows of one id table, concatenated: [..., K] -> [..., K·E]."""

    def __init__(self, num_buckets: int, dim: int, dtype: jnp.dtype, *, rngs: nnx.Rngs):
        # Small init: a row no training id ever touched stays near zero, not noise.
        init = nnx.initializers.normal(stddev=0.02)
        self.table = nnx.Embed(num_buckets, dim, dtype=dtype, embedding_init=init, rngs=rngs)

    def __call__(self, hashes: jnp.ndarray) -> jnp.ndarray:  # [..., K] -> [..., K·E]
        rows = self.table(hashes)  # [..., K, E]
        rows = jnp.where((hashes != 0)[..., None], rows, 0)  # bucket 0 is padding
        return rearrange(rows, "... k e -> ... (k e)")


class PhoenixRanker(nnx.Module):
    """Scores each candidate of a request for every action, in isolation."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.config = config
        e, k, d = config.embedding_dim, config.num_hashes, config.model_dim
        dtype = jnp.dtype(config.compute_dtype)
        self.user_embed = HashedEmbedding(config.user_buckets, e, dtype, rngs=rngs)
        self.post_embed = HashedEmbedding(config.post_buckets, e, dtype, rngs=rngs)
        self.author_embed = HashedEmbedding(config.author_buckets, e, dtype, rngs=rngs)
        self.action_embed = nnx.Linear(config.num_actions, e, use_bias=False, dtype=dtype, rngs=rngs)
        self.surface_embed = nnx.Embed(config.num_surfaces, e, dtype=dtype, rngs=rngs)
        linear = dict(use_bias=False, dtype=dtype, rngs=rngs)
        self.user_proj = nnx.Linear(k * e, d, **linear)
        self.history_proj = nnx.Linear(2 * k * e + 2 * e, d, **linear)
        self.candidate_proj = nnx.Linear(2 * k * e + e, d, **linear)
        self.blocks = nnx.List([TransformerBlock(config, rngs=rngs) for _ in range(config.num_layers)])
        self.final_norm = RMSNorm(d)
        self.unembed = nnx.Linear(d, config.num_actions, **linear)

    def rotary(self, positions: jnp.ndarray) -> Rotary:  # positions [B, T]
        return Rotary.at(positions, self.config.head_dim, self.config.rope_base)

    def embed_tokens(
        self, batch: RankerBatch, candidate_post_keep: jnp.ndarray | None = None
    ) -> jnp.ndarray:  # [B, 1+H+C, D]
        """Project user, history and candidate tokens into one sequence.

        `candidate_post_keep` [B, C] zeroes the post-id embedding of dropped
        candidates (training only): fresh posts at serving time have untrained
        post ids, so the model must also rank well from author and user alone.
        """
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
        history = self.history_proj(history)  # [B, H, D]

        candidate_posts = self.post_embed(batch.candidate_post_hashes)  # [B, C, K·E]
        if candidate_post_keep is not None:
            candidate_posts = candidate_posts * candidate_post_keep[..., None].astype(candidate_posts.dtype)
        candidates = jnp.concatenate(
            [
                candidate_posts,
                self.author_embed(batch.candidate_author_hashes),  # [B, C, K·E]
                self.surface_embed(batch.candidate_surface),  # [B, C, E]
            ],
            axis=-1,
        )
        candidates = self.candidate_proj(candidates)  # [B, C, D]
        return jnp.concatenate([user, history, candidates], axis=1)  # [B, T, D]

    def __call__(
        self, batch: RankerBatch, candidate_post_keep: jnp.ndarray | None = None
    ) -> jnp.ndarray:  # [B, C, A] logits
        """Full-sequence path (training): one attention over user + history + candidates."""
        h = batch.history_post_hashes.shape[1]
        x = self.embed_tokens(batch, candidate_post_keep)  # [B, T, D]
        mask = candidate_isolation_mask(batch.history_valid, batch.candidate_valid, batch.candidate_cutoff)
        rope = self.rotary(token_positions(h, batch.candidate_cutoff))  # tables for [B, T]
        for block in self.blocks:
            x, _, _ = block(x, rope, mask)  # [B, T, D]
        candidates = self.final_norm(x[:, 1 + h :])  # [B, C, D]
        return self.unembed(candidates).astype(jnp.float32)  # [B, C, A]

    def score_candidates(self, batch: RankerBatch) -> jnp.ndarray:  # [B, C, A] logits
        """Prefix path (serving): user + history once, candidates against its cached keys/values.

        Same logits as `__call__` (candidates never see each other, so the
        prefix does not depend on them), at a cost linear in the candidates.
        """
        h = batch.history_post_hashes.shape[1]
        x = self.embed_tokens(batch)  # [B, T, D]
        prefix, candidates = x[:, : 1 + h], x[:, 1 + h :]  # [B, 1+H, D], [B, C, D]
        rope = self.rotary(token_positions(h, batch.candidate_cutoff))  # tables for [B, T]
        prefix_rope, candidate_rope = rope.rows(0, 1 + h), rope.rows(1 + h)
        prefix_rows = prefix_mask(batch.history_valid)  # [B, 1+H, 1+H]
        candidate_keys = candidate_prefix_mask(batch.history_valid, batch.candidate_cutoff)  # [B, C, 1+H]
        for block in self.blocks:
            new_prefix, k, v = block(prefix, prefix_rope, prefix_rows)  # k, v [B, 1+H, G, Dh]
            candidates = block.candidates(candidates, candidate_rope, k, v, candidate_keys)
            prefix = new_prefix
        return self.unembed(self.final_norm(candidates)).astype(jnp.float32)  # [B, C, A]


def build_ranker(config: ModelConfig, seed: int = 0) -> PhoenixRanker:
    return PhoenixRanker(config, rngs=nnx.Rngs(seed))

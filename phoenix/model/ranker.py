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
from flax import nnx, struct

from phoenix.config import ModelConfig
from phoenix.model.attention_mask import (
    candidate_isolation_mask,
    candidate_prefix_mask,
    prefix_mask,
    token_positions,
)
from phoenix.model.batch import CandidateBatch, PrefixBatch, RankerBatch
from phoenix.model.transformer import RMSNorm, Rotary, TransformerBlock


@struct.dataclass
class PrefixCache:
    """Every layer's keys and values for user + history, computed once per request."""

    keys: jnp.ndarray  # [L, B, 1+H, G, Dh]
    values: jnp.ndarray  # [L, B, 1+H, G, Dh]
    history_valid: jnp.ndarray  # [B, H]


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
        return jnp.concatenate([user, self.history_proj(history)], axis=1)  # [B, 1+H, D]

    def embed_candidates(
        self, candidates: CandidateBatch, post_keep: jnp.ndarray | None = None
    ) -> jnp.ndarray:  # [B, C, D]
        """One token per candidate.

        `post_keep` [B, C] zeroes the post-id embedding of dropped candidates
        (training only): fresh posts at serving time have untrained post ids,
        so the model must also rank well from author and user alone.
        """
        posts = self.post_embed(candidates.post_hashes)  # [B, C, K·E]
        if post_keep is not None:
            posts = posts * post_keep[..., None].astype(posts.dtype)
        tokens = jnp.concatenate(
            [
                posts,
                self.author_embed(candidates.author_hashes),  # [B, C, K·E]
                self.surface_embed(candidates.surface),  # [B, C, E]
            ],
            axis=-1,
        )
        return self.candidate_proj(tokens)  # [B, C, D]

    def __call__(
        self, batch: RankerBatch, candidate_post_keep: jnp.ndarray | None = None
    ) -> jnp.ndarray:  # [B, C, A] logits
        """Full-sequence path (training): one attention over user + history + candidates."""
        h = batch.history_post_hashes.shape[1]
        x = jnp.concatenate(
            [self.embed_prefix(batch.prefix), self.embed_candidates(batch.candidates, candidate_post_keep)], axis=1
        )  # [B, T, D]
        mask = candidate_isolation_mask(batch.history_valid, batch.candidate_valid, batch.candidate_cutoff)
        rope = self.rotary(token_positions(h, batch.candidate_cutoff))  # tables for [B, T]
        for block in self.blocks:
            x, _, _ = block(x, rope, mask)  # [B, T, D]
        candidates = self.final_norm(x[:, 1 + h :])  # [B, C, D]
        return self.unembed(candidates).astype(jnp.float32)  # [B, C, A]

    def encode_prefix(self, batch: PrefixBatch) -> PrefixCache:
        """Run user + history once and keep every layer's keys and values."""
        h = batch.history_post_hashes.shape[1]
        x = self.embed_prefix(batch)  # [B, 1+H, D]
        positions = jnp.broadcast_to(jnp.arange(1 + h, dtype=jnp.int32), x.shape[:2])  # [B, 1+H]
        rope, mask = self.rotary(positions), prefix_mask(batch.history_valid)  # mask [B, 1+H, 1+H]
        keys, values = [], []
        for block in self.blocks:
            x, k, v = block(x, rope, mask)  # k, v [B, 1+H, G, Dh]
            keys.append(k)
            values.append(v)
        return PrefixCache(jnp.stack(keys), jnp.stack(values), batch.history_valid)

    def score_cached(self, cache: PrefixCache, candidates: CandidateBatch) -> jnp.ndarray:  # [B, C, A]
        """Logits of candidates against a cached prefix: cost linear in C, no candidate sees another."""
        x = self.embed_candidates(candidates)  # [B, C, D]
        rope = self.rotary(candidates.cutoff + 1)  # every candidate sits right after its cutoff
        sees = candidate_prefix_mask(cache.history_valid, candidates.cutoff)  # [B, C, 1+H]
        for layer, block in enumerate(self.blocks):
            x = block.candidates(x, rope, cache.keys[layer], cache.values[layer], sees)  # [B, C, D]
        return self.unembed(self.final_norm(x)).astype(jnp.float32)  # [B, C, A]

    def score_candidates(self, batch: RankerBatch) -> jnp.ndarray:  # [B, C, A] logits
        """Prefix path (serving, evaluation): equal to `__call__`, linear in the candidates.

        Candidates never see each other, so the prefix does not depend on them.
        """
        return self.score_cached(self.encode_prefix(batch.prefix), batch.candidates)


def build_ranker(config: ModelConfig, seed: int = 0) -> PhoenixRanker:
    return PhoenixRanker(config, rngs=nnx.Rngs(seed))

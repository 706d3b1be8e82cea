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
from flax import nnx, struct

from phoenix.config import ModelConfig
from phoenix.model.attention_mask import (
    candidate_isolation_mask,
    candidate_prefix_mask,
    token_positions,
)
from phoenix.model.batch import CandidateBatch, PrefixBatch, RankerBatch
from phoenix.model.prefix_encoder import PrefixEncoder


@struct.dataclass
class PrefixCache:
    """Every layer's keys and values for user + history, computed once per request."""

    keys: jnp.ndarray  # [L, B, 1+H, G, Dh]
    values: jnp.ndarray  # [L, B, 1+H, G, Dh]
    history_valid: jnp.ndarray  # [B, H]


class PhoenixRanker(PrefixEncoder):
    """Scores each candidate of a request for every action, in isolation."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        super().__init__(config, rngs=rngs)
        e, k, d = config.embedding_dim, config.num_hashes, config.model_dim
        linear = dict(use_bias=False, dtype=jnp.dtype(config.compute_dtype), rngs=rngs)
        self.candidate_proj = nnx.Linear(2 * k * e + e, d, **linear)
        self.unembed = nnx.Linear(d, config.num_actions, **linear)

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
        return self.embed_dropout(self.candidate_proj(tokens))  # [B, C, D]

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
        _, keys, values = self.run_prefix(batch)  # per layer [B, 1+H, G, Dh]
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

"""The Phoenix ranker: one user token, the engagement history, the candidates.

Read top to bottom:
1. embed ids with K hash tables each and project every token to model_dim;
2. run user + history causally through the Grok-1 blocks once, keeping every
   layer's keys and values (`encode_prefix`);
3. run each candidate token through the same blocks, attending to the cached
   prefix keys before its cutoff and to itself, never to another candidate
   (`score_cached`); a final RMSNorm and the unembedding give one logit per
   action (sigmoid gives P(action));
4. optionally (`model.sequence_match`) add, per action, the match of the
   user state at the candidate's cutoff (the prefix's last visible token,
   after the final norm) with the candidate's post embedding.

Training, evaluation and serving all run this prefix path (`__call__`). The
full sequence under the candidate-isolation mask (`full_sequence`) computes the
same logits with attention over all 1 + H + C tokens; it is kept as the
reference the prefix path is tested against, and as the step the training
benchmark compares with: the prefix path skips the candidate-to-candidate and
history-to-candidate blocks of attention the mask throws away.

Why the match term: a candidate token reaches the history only through
attention, a target-aware reading that learns item-to-item relations slowly.
The match is SASRec's and the two-tower's inductive bias, one user state
dotted with every item's embedding, which generalises across items and can be
trained cheaply against the whole catalogue (`phoenix.logs` does). It reads
only the prefix and the candidate itself, so candidate isolation holds.

No hand-made features: everything the model knows comes from ids, the actions
the user took on history items, and the product surface.
"""

from __future__ import annotations

import jax.numpy as jnp
from einops import rearrange
from flax import nnx, struct

from phoenix.config import ModelConfig
from phoenix.data.batch import CandidateBatch, PrefixBatch, RankerBatch
from phoenix.model.attention_mask import (
    candidate_isolation_mask,
    candidate_prefix_mask,
    token_positions,
)
from phoenix.model.axes import linear
from phoenix.model.calibration import HeadCalibration
from phoenix.model.prefix_encoder import PrefixEncoder


@struct.dataclass
class PrefixCache:
    """Every layer's keys and values for user + history, computed once per request."""

    # One array per layer, not stacked: training differentiates through the cache, and a
    # stack costs a copy of every layer's keys and values forward and again backward.
    keys: tuple[jnp.ndarray, ...]  # L x [B, 1+H, G, Dh]
    values: tuple[jnp.ndarray, ...]  # L x [B, 1+H, G, Dh]
    history_valid: jnp.ndarray  # [B, H]
    match: jnp.ndarray | None = None  # [B, 1+H, A, K·E] match queries (model.sequence_match only)


class PhoenixRanker(nnx.Module):
    """Scores each candidate of a request for every action, in isolation.

    It holds a `PrefixEncoder` (`self.encoder`): the hashed tables, the Grok
    blocks and the final norm that user + history run through. Candidate
    tokens are embedded with the same tables and run through the same blocks;
    the ranker adds only the candidate projection, the unembedding and the
    match projection.
    """

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.encoder = PrefixEncoder(config, rngs=rngs)
        e, k, d = config.embedding_dim, config.num_hashes, config.model_dim
        dense = dict(use_bias=False, dtype=jnp.dtype(config.compute_dtype), rngs=rngs)
        self.candidate_proj = linear(2 * k * e + e, d, ("tokens_in", "embed"), **dense)
        self.unembed = linear(d, config.num_actions, ("embed", "actions"), **dense)
        self.calibration = HeadCalibration(config.num_actions)  # the identity until fitted on validation
        if config.sequence_match:
            self.match_proj = linear(d, config.num_actions * k * e, ("embed", "match"), **dense)

    def candidate_posts(
        self, candidates: CandidateBatch, post_keep: jnp.ndarray | None = None
    ) -> jnp.ndarray:  # [B, C, K·E]
        """Post-id embeddings of the candidates.

        `post_keep` [B, C] zeroes the post-id embedding of dropped candidates
        (training only): fresh posts at serving time have untrained post ids,
        so the model must also rank well from author and user alone.
        """
        posts = self.encoder.post_embed(candidates.post_hashes)  # [B, C, K·E]
        if post_keep is not None:
            posts = posts * post_keep[..., None].astype(posts.dtype)
        return posts

    def match_queries(self, prefix_states: jnp.ndarray) -> jnp.ndarray | None:  # [B, 1+H, A, K·E]
        """Per prefix position and action, the vector a candidate's post embedding is dotted with."""
        if not self.config.sequence_match:
            return None
        queries = self.match_proj(self.encoder.final_norm(prefix_states))  # [B, 1+H, A·K·E]
        return rearrange(queries, "b s (a n) -> b s a n", a=self.config.num_actions)

    def match_logits(
        self, match: jnp.ndarray | None, posts: jnp.ndarray, cutoff: jnp.ndarray
    ) -> jnp.ndarray | float:  # [B, C, A], or 0.0 without sequence_match
        """The match term: the query at each candidate's cutoff (its last visible prefix token) · its post."""
        if match is None:
            return 0.0
        b, c = cutoff.shape
        at = jnp.take_along_axis(match, cutoff.reshape(b, c, 1, 1), axis=1)  # [B, C, A, K·E]
        return jnp.einsum("bcan,bcn->bca", at, posts).astype(jnp.float32)

    def candidate_tokens(self, candidates: CandidateBatch, posts: jnp.ndarray) -> jnp.ndarray:  # [B, C, D]
        """One token per candidate: its post embedding (from `candidate_posts`), author and surface."""
        tokens = jnp.concatenate(
            [
                posts,
                self.encoder.author_embed(candidates.author_hashes),  # [B, C, K·E]
                self.encoder.surface_embed(candidates.surface),  # [B, C, E]
            ],
            axis=-1,
        )
        return self.encoder.embed_dropout(self.candidate_proj(tokens))  # [B, C, D]

    def __call__(
        self, batch: RankerBatch, candidate_post_keep: jnp.ndarray | None = None
    ) -> jnp.ndarray:  # [B, C, A] logits
        """Training, evaluation and serving: the prefix once, then every candidate against it (linear in C).

        Candidates never see each other, so the prefix does not depend on them.
        """
        return self.score_cached(self.encode_prefix(batch.prefix), batch.candidates, candidate_post_keep)

    def encode_prefix(self, batch: PrefixBatch) -> PrefixCache:
        """Run user + history once and keep every layer's keys and values."""
        states, keys, values = self.encoder.run_prefix(batch)  # [B, 1+H, D]; per layer [B, 1+H, G, Dh]
        return PrefixCache(tuple(keys), tuple(values), batch.history_valid, self.match_queries(states))

    def score_cached(
        self, cache: PrefixCache, candidates: CandidateBatch, post_keep: jnp.ndarray | None = None
    ) -> jnp.ndarray:  # [B, C, A]
        """Logits of candidates against a cached prefix: cost linear in C, no candidate sees another."""
        posts = self.candidate_posts(candidates, post_keep)  # [B, C, K·E]
        x = self.candidate_tokens(candidates, posts)  # [B, C, D]
        rope = self.encoder.rotary(candidates.cutoff + 1)  # every candidate sits right after its cutoff
        sees = candidate_prefix_mask(cache.history_valid, candidates.cutoff)  # [B, C, 1+H]
        for block, keys, values in zip(self.encoder.blocks, cache.keys, cache.values, strict=True):
            x = block.candidates(x, rope, keys, values, sees)  # [B, C, D]
        logits = self.unembed(self.encoder.final_norm(x)).astype(jnp.float32)  # [B, C, A]
        return self.calibration(logits + self.match_logits(cache.match, posts, candidates.cutoff))

    def full_sequence(
        self, batch: RankerBatch, candidate_post_keep: jnp.ndarray | None = None
    ) -> jnp.ndarray:  # [B, C, A] logits
        """The reference: one attention over user + history + candidates under the isolation mask."""
        h, cutoff = batch.prefix.history_post_hashes.shape[1], batch.candidates.cutoff  # cutoff [B, C]
        posts = self.candidate_posts(batch.candidates, candidate_post_keep)  # [B, C, K·E]
        x = jnp.concatenate(
            [self.encoder.embed_prefix(batch.prefix), self.candidate_tokens(batch.candidates, posts)], axis=1
        )  # [B, T, D]
        mask = candidate_isolation_mask(batch.history_valid, batch.candidate_valid, cutoff)  # [B, T, T]
        rope = self.encoder.rotary(token_positions(h, cutoff))  # tables for [B, T]
        for block in self.encoder.blocks:
            x, _, _ = block(x, rope, mask)  # [B, T, D]
        candidates = self.encoder.final_norm(x[:, 1 + h :])  # [B, C, D]
        logits = self.unembed(candidates).astype(jnp.float32)  # [B, C, A]
        return self.calibration(logits + self.match_logits(self.match_queries(x[:, : 1 + h]), posts, cutoff))


def build_ranker(config: ModelConfig, seed: int = 0) -> PhoenixRanker:
    return PhoenixRanker(config, rngs=nnx.Rngs(seed))

"""SASRec (Kang & McAuley 2018): the self-attentive sequential recommender papers compare to.

A baseline for the real-log benchmark, written from the paper: item embedding
(scaled by sqrt(d)) plus a learned position embedding, dropout, then blocks of
[LayerNorm -> causal self-attention -> residual, LayerNorm -> point-wise
two-layer ReLU FFN -> residual], padding positions zeroed after each block,
and a final LayerNorm. The relevance of item i after position t is the dot
product of the state at t with item i's input embedding (shared weights).
Sequences are left-padded with item 0, so the latest item is always last.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from einops import rearrange
from flax import nnx

from phoenix.config import SASRecConfig
from phoenix.model.axes import embed, layer_norm, linear
from phoenix.model.dropout import Dropout


def sasrec_causal_mask(valid: jnp.ndarray, segments: jnp.ndarray | None = None) -> jnp.ndarray:  # [B, L, L]
    """Query t attends to keys s <= t that are real items of its own sequence (itself always, so no row
    is empty). valid [B, L]; segments [B, L] numbers the sequences packed into a row (None: one a row)."""
    length = valid.shape[1]
    causal = jnp.tril(jnp.ones((length, length), bool))  # [L, L]
    itself = jnp.eye(length, dtype=bool)  # [L, L]
    keys = valid[:, None, :]  # [B, 1, L]
    if segments is not None:
        keys = keys & (segments[:, :, None] == segments[:, None, :])  # [B, L, L]
    return causal[None] & (keys | itself[None])  # [B, L, L]


class SASRecBlock(nnx.Module):
    def __init__(self, config: SASRecConfig, *, rngs: nnx.Rngs):
        d = config.model_dim
        self.num_heads = config.num_heads
        self.attn_norm = layer_norm(d, "norm", epsilon=1e-8, rngs=rngs)
        self.query, self.key, self.value, self.out = (linear(d, d, ("embed", "q_heads"), rngs=rngs) for _ in range(4))
        self.ffn_norm = layer_norm(d, "norm", epsilon=1e-8, rngs=rngs)
        self.ffn_in, self.ffn_out = linear(d, d, ("embed", "mlp"), rngs=rngs), linear(d, d, ("mlp", "embed"), rngs=rngs)
        self.dropout = Dropout(config.dropout_rate, rngs=rngs)

    def attention(self, queries: jnp.ndarray, x: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:  # [B, L, D]
        split = lambda t: rearrange(t, "b l (h d) -> b h l d", h=self.num_heads)  # noqa: E731
        q, k, v = split(self.query(queries)), split(self.key(x)), split(self.value(x))  # [B, h, L, d]
        logits = jnp.einsum("bhqd,bhkd->bhqk", q, k) / jnp.sqrt(q.shape[-1])  # [B, h, L, L]
        weights = jax.nn.softmax(jnp.where(mask[:, None], logits, -1e9), axis=-1)
        mixed = jnp.einsum("bhqk,bhkd->bhqd", self.dropout(weights), v)  # [B, h, L, d]
        return self.out(rearrange(mixed, "b h l d -> b l (h d)"))  # [B, L, D]

    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, valid: jnp.ndarray) -> jnp.ndarray:  # [B, L, D]
        queries = self.attn_norm(x)
        x = queries + self.dropout(self.attention(queries, x, mask))  # keys/values un-normed, as in the paper's code
        h = self.ffn_norm(x)
        x = h + self.dropout(self.ffn_out(self.dropout(jax.nn.relu(self.ffn_in(h)))))
        return x * valid[..., None]


class SASRec(nnx.Module):
    def __init__(self, num_items: int, config: SASRecConfig, *, rngs: nnx.Rngs):
        init = nnx.initializers.xavier_normal()
        self.config = config
        self.item_embed = embed(num_items + 1, config.model_dim, ("items", "embed"), embedding_init=init, rngs=rngs)
        self.position_embed = embed(
            config.history_len, config.model_dim, ("positions", "embed"), embedding_init=init, rngs=rngs
        )
        self.dropout = Dropout(config.dropout_rate, rngs=rngs)
        self.blocks = nnx.List([SASRecBlock(config, rngs=rngs) for _ in range(config.num_layers)])
        self.final_norm = layer_norm(config.model_dim, "norm", epsilon=1e-8, rngs=rngs)

    def states(self, sequence: jnp.ndarray, packing: tuple | None = None) -> jnp.ndarray:  # [B, L, D]
        """The state after each position of sequence [B, L], left-padded: L may be shorter than
        history_len (the last L positions are used). Or several sequences packed end to end in a row,
        with `packing` = (segments, positions) [B, L] each: which sequence a token belongs to, and the
        position it would have left-padded alone, so that each sequence's states are the same as alone."""
        length = sequence.shape[1]
        valid = sequence != 0  # [B, L]
        segments, positions = packing or (None, jnp.arange(self.config.history_len - length, self.config.history_len))
        x = self.item_embed(sequence) * jnp.sqrt(self.config.model_dim) + self.position_embed(positions)  # [B, L, D]
        x = self.dropout(x) * valid[..., None]  # [B, L, D]
        mask = sasrec_causal_mask(valid, segments)  # [B, L, L]
        for block in self.blocks:
            x = block(x, mask, valid)
        return self.final_norm(x)  # [B, L, D]

    def __call__(self, sequence: jnp.ndarray, items: jnp.ndarray, packing: tuple | None = None) -> jnp.ndarray:
        """Logits of items [B, L, M] at every position of sequence [B, L] (packed as `states`): [B, L, M]."""
        return jnp.einsum("bld,blmd->blm", self.states(sequence, packing), self.item_embed(items))

    def score_next(self, sequence: jnp.ndarray, candidates: jnp.ndarray) -> jnp.ndarray:  # [B, C]
        """Logits of candidates [B, C] as the item after the whole sequence [B, L]."""
        last = self.states(sequence)[:, -1]  # [B, D]
        return jnp.einsum("bd,bcd->bc", last, self.item_embed(candidates))

"""Who may attend to whom, and where each token sits, in a Phoenix request.

Sequence layout: [user, history_0 .. history_{H-1}, candidate_0 .. candidate_{C-1}].

* user + history are causal: history item i sees the user and items <= i.
* candidate j sees the user, history items i < cutoff_j, and itself: never
  another candidate, so its score does not depend on the rest of the request.
* padding keys are never seen by a real query.

Positions (for RoPE): user 0, history item i at i + 1, and candidate j at
cutoff_j + 1 — the slot right after the last history item it can see. Every
candidate with the same cutoff shares one position, so neither its slot nor
the number of candidates moves its logits (X's January model gave each
candidate slot its own position and fails that).
"""

from __future__ import annotations

import jax.numpy as jnp


def prefix_mask(history_valid: jnp.ndarray) -> jnp.ndarray:  # [B, 1+H, 1+H] bool
    """User + history rows: causal over valid history; padded rows see the user only."""
    b, h = history_valid.shape
    hist_idx = jnp.arange(h)
    causal = hist_idx[None, :, None] >= hist_idx[None, None, :]  # [1, H, H]
    hist_keys = causal & history_valid[:, None, :] & history_valid[:, :, None]  # [B, H, H]
    hist_rows = jnp.concatenate([jnp.ones((b, h, 1), bool), hist_keys], axis=-1)  # [B, H, 1+H]
    user_row = jnp.zeros((b, 1, 1 + h), bool).at[:, :, 0].set(True)  # [B, 1, 1+H]
    return jnp.concatenate([user_row, hist_rows], axis=1)


def candidate_prefix_mask(
    history_valid: jnp.ndarray,  # [B, H] bool
    candidate_cutoff: jnp.ndarray,  # [B, C] int
) -> jnp.ndarray:  # [B, C, 1+H] bool
    """Which user + history keys each candidate sees: the user and valid items before its cutoff."""
    b, h = history_valid.shape
    visible = (jnp.arange(h)[None, None, :] < candidate_cutoff[:, :, None]) & history_valid[:, None, :]
    return jnp.concatenate([jnp.ones(visible.shape[:2] + (1,), bool), visible], axis=-1)


def candidate_isolation_mask(
    history_valid: jnp.ndarray,  # [B, H] bool
    candidate_valid: jnp.ndarray,  # [B, C] bool
    candidate_cutoff: jnp.ndarray,  # [B, C] int
) -> jnp.ndarray:  # [B, T, T] bool, T = 1 + H + C
    """Full-sequence mask, True where query row t may attend to key column s."""
    b, c = candidate_valid.shape
    prefix = prefix_mask(history_valid)  # [B, 1+H, 1+H]
    prefix_rows = jnp.concatenate([prefix, jnp.zeros(prefix.shape[:2] + (c,), bool)], axis=-1)
    itself = jnp.broadcast_to(jnp.eye(c, dtype=bool)[None], (b, c, c))  # [B, C, C]
    cand_rows = jnp.concatenate([candidate_prefix_mask(history_valid, candidate_cutoff), itself], axis=-1)
    return jnp.concatenate([prefix_rows, cand_rows], axis=1)  # [B, T, T]


def token_positions(history_len: int, candidate_cutoff: jnp.ndarray) -> jnp.ndarray:
    """RoPE positions [B, T]: user 0, history i -> i + 1, candidate j -> cutoff_j + 1."""
    b = candidate_cutoff.shape[0]
    prefix = jnp.broadcast_to(jnp.arange(1 + history_len)[None], (b, 1 + history_len))  # [B, 1+H]
    return jnp.concatenate([prefix, candidate_cutoff + 1], axis=1).astype(jnp.int32)  # [B, T]

"""The ranker's training loss: per-action sigmoid cross-entropy over real candidates."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from phoenix.data.batch import RankerBatch
from phoenix.model.ranker import PhoenixRanker


def action_loss(
    logits: jnp.ndarray,  # [B, C, A]
    labels: jnp.ndarray,  # [B, C, A]
    candidate_valid: jnp.ndarray,  # [B, C]
) -> jnp.ndarray:  # scalar
    """Per-action sigmoid cross-entropy, averaged over real candidates and actions."""
    losses = optax.sigmoid_binary_cross_entropy(logits, labels.astype(jnp.float32))  # [B, C, A]
    valid = candidate_valid.astype(jnp.float32)[..., None]  # [B, C, 1]
    denom = jnp.maximum(valid.sum() * logits.shape[-1], 1.0)
    return (losses * valid).sum() / denom


def ranker_loss(
    model: PhoenixRanker,
    examples: tuple[RankerBatch, jnp.ndarray],  # a packed batch and its labels [B, C, A]
    shared: None,
    dropout_key: jax.Array,
    *,
    full_sequence: bool = False,
) -> jnp.ndarray:  # scalar
    """The ranker's logits with each candidate's post id dropped with `model.post_id_dropout`.

    `full_sequence` trains through the full-sequence reference instead of the
    prefix path (the same logits, more attention): the training benchmark's baseline.
    """
    batch, labels = examples
    keep_rate = 1.0 - model.config.post_id_dropout
    keep = jax.random.bernoulli(dropout_key, keep_rate, batch.candidates.cutoff.shape)  # [B, C]
    forward = model.full_sequence if full_sequence else model
    return action_loss(forward(batch, keep), labels, batch.candidate_valid)

"""Loss, optimizer and the jit-compiled train and predict steps."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from phoenix.config import TrainConfig
from phoenix.model.batch import RankerBatch
from phoenix.model.ranker import PhoenixRanker


def make_optimizer(model: PhoenixRanker, config: TrainConfig) -> nnx.Optimizer:
    """AdamW with linear warmup, cosine decay to 10%, and global-norm clipping."""
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=config.learning_rate,
        warmup_steps=config.warmup_steps,
        decay_steps=config.num_steps,
        end_value=config.learning_rate * 0.1,
    )
    tx = optax.chain(
        optax.clip_by_global_norm(config.grad_clip_norm),
        optax.adamw(schedule, weight_decay=config.weight_decay),
    )
    return nnx.Optimizer(model, tx, wrt=nnx.Param)


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


def update_step(
    model: PhoenixRanker,
    optimizer: nnx.Optimizer,
    batch: RankerBatch,
    labels: jnp.ndarray,  # [B, C, A]
    dropout_key: jax.Array,
    post_id_dropout: float = 0.0,
) -> jnp.ndarray:  # scalar loss
    """One optimizer step in place (not compiled): the body every training path compiles."""
    keep = jax.random.bernoulli(dropout_key, 1.0 - post_id_dropout, batch.candidate_cutoff.shape)  # [B, C]

    def loss_fn(m: PhoenixRanker) -> jnp.ndarray:
        return action_loss(m(batch, keep), labels, batch.candidate_valid)

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


train_step = nnx.jit(update_step, static_argnames="post_id_dropout")


@nnx.jit
def predict_probs(model: PhoenixRanker, batch: RankerBatch) -> jnp.ndarray:  # [B, C, A]
    """Serving and evaluation use the prefix path (equal to the full path, linear in C)."""
    return jax.nn.sigmoid(model.score_candidates(batch))

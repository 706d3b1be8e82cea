"""Training Phoenix on an interaction log and scoring the protocol's candidates.

The model is the ranker unchanged (`PhoenixRanker`, hashed ids, candidate
isolation). Training runs the prefix path (`score_candidates`): the history
is encoded once causally and each candidate attends to its cutoff's prefix and
itself, which equals the full path but costs C·H instead of (H+C)^2. The
loss is the ranker's per-action sigmoid cross-entropy; the protocol ranks by
the logit of `logs.interaction_action` (did the user interact with this item
next). AdamW with warmup and cosine decay, early stopping on validation
NDCG@10.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from einops import rearrange
from flax import nnx

from phoenix.config import PhoenixConfig, TrainConfig
from phoenix.logs.early_stopping import FitResult, fit_with_early_stopping
from phoenix.logs.phoenix_examples import (
    HashTables,
    epoch_batches,
    evaluation_batches,
    ranker_batch,
    training_batch,
    training_windows,
)
from phoenix.logs.protocol import NextItemSplit, hit_and_ndcg
from phoenix.model.batch import CandidateBatch, RankerBatch
from phoenix.model.ranker import PhoenixRanker, PrefixCache, build_ranker
from phoenix.train.step import action_loss, make_optimizer

EVAL_BATCH = 128


def listwise_loss(
    logits: jnp.ndarray,  # [B, G·P] one action's logits; group 0 holds the true items, 1..G-1 negatives
    valid: jnp.ndarray,  # [B, G·P]
    groups: int,
) -> jnp.ndarray:  # scalar
    """Softmax cross-entropy of each true item against the negatives that share its cutoff."""
    grouped = rearrange(logits, "b (g p) -> b g p", g=groups)  # [B, G, P]
    grouped_valid = rearrange(valid, "b (g p) -> b g p", g=groups)  # [B, G, P]
    log_p = jax.nn.log_softmax(jnp.where(grouped_valid, grouped, -1e9), axis=1)[:, 0]  # [B, P]
    weight = grouped_valid[:, 0].astype(jnp.float32)  # [B, P]
    return -(log_p * weight).sum() / jnp.maximum(weight.sum(), 1.0)


def history_next_item_loss(
    model: PhoenixRanker, prefix_states: jnp.ndarray, batch: RankerBatch, negatives: CandidateBatch
) -> jnp.ndarray:  # scalar
    """SASRec's objective on Phoenix's own prefix: the causal state before history item t scores
    item t (as a candidate token embedding) above a sampled negative (binary cross-entropy).

    It gives the history encoder a training signal at every position, which the candidate
    path then attends to; it adds no parameters and no tokens.
    """
    states = model.final_norm(prefix_states[:, :-1])  # [B, H, D]: token t has seen the user and items < t
    zeros = jnp.zeros(batch.history_surface.shape, jnp.int32)
    targets = CandidateBatch(batch.history_post_hashes, batch.history_author_hashes, batch.history_surface, zeros)
    positive = jnp.einsum("bhd,bhd->bh", states, model.embed_candidates(targets))  # [B, H]
    negative = jnp.einsum("bhd,bhd->bh", states, model.embed_candidates(negatives))  # [B, H]
    losses = optax.sigmoid_binary_cross_entropy(positive, 1.0) + optax.sigmoid_binary_cross_entropy(negative, 0.0)
    valid = batch.history_valid.astype(jnp.float32)  # [B, H]
    return (losses * valid).sum() / jnp.maximum(valid.sum(), 1.0)


@nnx.jit(static_argnames=("groups", "action", "listwise_weight", "history_weight"))
def phoenix_log_train_step(
    model: PhoenixRanker, optimizer: nnx.Optimizer, batch: RankerBatch, labels: jnp.ndarray,
    history_negatives: CandidateBatch, groups: int, action: int, listwise_weight: float, history_weight: float,
) -> jnp.ndarray:
    def loss_fn(m: PhoenixRanker) -> jnp.ndarray:
        states, keys, values = m.run_prefix(batch.prefix)  # states [B, 1+H, D]
        cache = PrefixCache(jnp.stack(keys), jnp.stack(values), batch.history_valid)
        logits = m.score_cached(cache, batch.candidates)  # [B, C, A]
        loss = action_loss(logits, labels, batch.candidate_valid)
        if listwise_weight:
            loss = loss + listwise_weight * listwise_loss(logits[..., action], batch.candidate_valid, groups)
        if history_weight:
            loss = loss + history_weight * history_next_item_loss(m, states, batch, history_negatives)
        return loss

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


@nnx.jit(static_argnames="action")
def _action_logits(model: PhoenixRanker, batch: RankerBatch, action: int) -> jnp.ndarray:  # [B, C]
    return model.score_candidates(batch)[..., action]


def phoenix_scores(
    model: PhoenixRanker, split: NextItemSplit, tables: HashTables, which: str, action: int
) -> np.ndarray:  # [E, 1+n]
    scores = np.zeros(split.candidates(which).shape, np.float32)
    model.eval()  # no dropout
    for rows, *inputs in evaluation_batches(split, which, model.config.history_len, EVAL_BATCH):
        batch = ranker_batch(split, tables, *inputs)
        scores[rows] = np.asarray(_action_logits(model, batch, action))[: rows.size]
    model.train()
    return scores


def train_phoenix_on_log(
    split: NextItemSplit, config: PhoenixConfig, progress: bool = True
) -> tuple[PhoenixRanker, HashTables, FitResult]:
    logs = config.logs
    model = build_ranker(config.model, seed=logs.seed)
    tables = HashTables.build(split, config.model)
    windows = training_windows(split, config.model.history_len)
    if len(windows) == 0:
        raise ValueError("phoenix: the log has no training interactions")
    sampler = split.training_negatives()
    steps_per_epoch = len(epoch_batches(windows, logs.batch_size, np.random.default_rng(0)))
    total = logs.max_epochs * steps_per_epoch
    schedule = TrainConfig(
        batch_size=logs.batch_size, num_steps=total, learning_rate=logs.learning_rate,
        warmup_steps=min(logs.warmup_steps, total - 1), weight_decay=logs.weight_decay,
        grad_clip_norm=logs.grad_clip_norm,
    )
    optimizer = make_optimizer(model, schedule)
    action = config.model.actions.index(logs.interaction_action)

    def run_epoch(epoch: int) -> float:
        rng = np.random.default_rng([logs.seed, epoch])
        losses = []
        for chosen in epoch_batches(windows, logs.batch_size, rng):
            batch, labels, history_negatives = training_batch(
                split, tables, windows, chosen, logs.batch_size, logs.train_negatives, sampler, rng
            )
            losses.append(phoenix_log_train_step(
                model, optimizer, batch, labels, history_negatives, 1 + logs.train_negatives, action,
                logs.listwise_weight, logs.history_loss_weight,
            ))
        return float(np.mean(np.asarray(losses)))

    fit = fit_with_early_stopping(
        model, run_epoch, lambda: hit_and_ndcg(phoenix_scores(model, split, tables, "valid", action)),
        logs.max_epochs, logs.patience, "phoenix", progress, logs.eval_every,
    )
    return model, tables, fit

"""Training and scoring the SASRec baseline as its paper does.

Each user's training sequence gives inputs s_1..s_{n-1} and targets
s_2..s_n (the last `max_len`, left-padded); every position gets one uniform
negative outside the user's training items, fresh each epoch; the loss is
binary cross-entropy of the target against the negative, averaged over real
positions; Adam with lr 1e-3 and betas (0.9, 0.98); batches of 128 users.
Batches are cut to the longest sequence they hold (rounded up to a multiple of
32) so short-sequence logs do not pay for max_len; the kept positions use the
same position embeddings as uncut ones, so the result is unchanged.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from phoenix.config import SASRecConfig
from phoenix.logs.early_stopping import FitResult, fit_with_early_stopping
from phoenix.logs.protocol import NextItemSplit, hit_and_ndcg
from phoenix.model.dropout import without_dropout
from phoenix.model.sasrec import SASRec

LENGTH_STEP = 32
EVAL_BATCH = 256


def left_padded(split: NextItemSplit, users: np.ndarray, lengths: np.ndarray, max_len: int) -> np.ndarray:
    """The first `lengths[i]` interactions of each user, last `max_len` kept, left-padded: [U, max_len]."""
    out = np.zeros((users.size, max_len), np.int64)
    starts = split.sequences.offsets[users - 1]
    for i, (start, n) in enumerate(zip(starts.tolist(), lengths.tolist())):
        keep = min(n, max_len)
        out[i, max_len - keep :] = split.sequences.item[start + n - keep : start + n]
    return out


def _cut(*arrays: np.ndarray) -> list[np.ndarray]:
    """Drop leading all-padding columns, keeping a multiple of LENGTH_STEP (fewer compiled shapes)."""
    used = max(int((arrays[0] != 0).sum(axis=1).max(initial=1)), 1)
    keep = min(arrays[0].shape[1], -(-used // LENGTH_STEP) * LENGTH_STEP)
    return [a[:, -keep:] for a in arrays]


@nnx.jit
def sasrec_train_step(model: SASRec, optimizer: nnx.Optimizer, inputs, positives, negatives) -> jnp.ndarray:
    def loss_fn(m: SASRec) -> jnp.ndarray:
        logits = m(inputs, jnp.stack([positives, negatives], axis=-1))  # [B, L, 2]
        losses = optax.sigmoid_binary_cross_entropy(logits, jnp.array([1.0, 0.0])).sum(-1)  # [B, L]
        valid = (positives != 0).astype(jnp.float32)  # [B, L]
        return (losses * valid).sum() / jnp.maximum(valid.sum(), 1.0)

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


@nnx.jit
def _score_next(model: SASRec, sequence, candidates) -> jnp.ndarray:
    return model.score_next(sequence, candidates)


def sasrec_scores(model: SASRec, split: NextItemSplit, which: str) -> np.ndarray:  # [E, 1+n]
    """Candidate logits after each eval user's history (training items, plus the valid item for test)."""
    history = left_padded(split, split.eval_users, split.history_len(which), model.config.max_len)
    candidates = split.candidates(which)
    out = []
    with without_dropout(model):
        for lo in range(0, history.shape[0], EVAL_BATCH):
            seq, cand = history[lo : lo + EVAL_BATCH], candidates[lo : lo + EVAL_BATCH]
            pad = EVAL_BATCH - seq.shape[0]  # fixed batch shape: one compile per length
            seq, cand = np.pad(seq, ((0, pad), (0, 0))), np.pad(cand, ((0, pad), (0, 0)), constant_values=1)
            (seq,) = _cut(seq)
            out.append(np.asarray(_score_next(model, seq, cand))[: EVAL_BATCH - pad])
    return np.concatenate(out)


def train_sasrec(split: NextItemSplit, config: SASRecConfig, progress: bool = True) -> tuple[SASRec, FitResult]:
    model = SASRec(split.num_items, config, rngs=nnx.Rngs(params=config.seed, dropout=config.seed + 1))
    optimizer = nnx.Optimizer(model, optax.adam(config.learning_rate, b1=0.9, b2=0.98), wrt=nnx.Param)
    users = np.flatnonzero(split.train_len >= 2) + 1
    if users.size == 0:
        raise ValueError("sasrec: no user has two training interactions")
    lengths = split.train_len[users - 1]
    sequences = left_padded(split, users, lengths, config.max_len + 1)
    inputs, positives = sequences[:, :-1], sequences[:, 1:]  # [U, max_len] each
    sampler = split.training_negatives()
    owner = np.broadcast_to(users[:, None], positives.shape)

    def run_epoch(epoch: int) -> float:
        rng = np.random.default_rng([config.seed, epoch])
        negatives = np.where(positives != 0, sampler.draw(owner, rng), 0)
        order = rng.permutation(users.size)
        losses = []
        for lo in range(0, users.size, config.batch_size):
            rows = order[lo : lo + config.batch_size]
            rows = np.pad(rows, (0, config.batch_size - rows.size), constant_values=-1)  # -1: an empty row
            batch = [np.where(rows[:, None] >= 0, a[rows], 0) for a in (inputs, positives, negatives)]
            losses.append(sasrec_train_step(model, optimizer, *_cut(*batch)))
        return float(np.mean(np.asarray(losses)))

    fit = fit_with_early_stopping(
        model, run_epoch, lambda: hit_and_ndcg(sasrec_scores(model, split, "valid")),
        config.max_epochs, config.patience, "sasrec", progress, config.eval_every, config.time_budget_s,
    )
    return model, fit

"""Training and scoring the SASRec baseline as its paper does.

Each user's training sequence gives inputs s_1..s_{n-1} and targets
s_2..s_n (the last `history_len`, left-padded); every position gets one uniform
negative outside the user's training items, fresh each epoch; the loss is
binary cross-entropy of the target against the negative, averaged over real
positions; Adam with lr 1e-3 and betas (0.9, 0.98); batches of 128 users
(`[sasrec.train]`), through the one training loop.
Batches are cut to the longest sequence they hold (rounded up to a multiple of
32), and the batch's users are then packed end to end into rows of that width
(`packed`): a sparse log's users hold a few items each, and a left-padded batch
of them is mostly padding. Each packed token keeps the position it had
left-padded and attends only to its own user's earlier items, so every state,
the loss and its gradient are those of the padded batch (a test holds the two
equal); only the work shrinks, about fivefold on Amazon Beauty.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from phoenix.config import MeshConfig, SASRecConfig
from phoenix.data.protocol import NextItemSplit, hit_and_ndcg
from phoenix.model.dropout import without_dropout
from phoenix.model.sasrec import SASRec
from phoenix.parallel.sharded_lookup import DATA_AXIS
from phoenix.training.loader import epoch_steps
from phoenix.training.loop import FitResult, fit
from phoenix.training.trainer import Trainer

LENGTH_STEP = 32
ROW_STEP = 8
EVAL_BATCH = 256


def left_padded(split: NextItemSplit, users: np.ndarray, lengths: np.ndarray, max_len: int) -> np.ndarray:
    """The first `lengths[i]` interactions of each user, last `max_len` kept, left-padded: [U, max_len]."""
    out = np.zeros((users.size, max_len), np.int64)
    starts = split.sequences.offsets[users - 1]
    for i, (start, n) in enumerate(zip(starts.tolist(), lengths.tolist())):
        keep = min(n, max_len)
        out[i, max_len - keep :] = split.sequences.item[start + n - keep : start + n]
    return out


def cut_padding(*arrays: np.ndarray) -> list[np.ndarray]:
    """Drop leading all-padding columns, keeping a multiple of LENGTH_STEP (fewer compiled shapes)."""
    used = max(int((arrays[0] != 0).sum(axis=1).max(initial=1)), 1)
    keep = min(arrays[0].shape[1], -(-used // LENGTH_STEP) * LENGTH_STEP)
    return [a[:, -keep:] for a in arrays]


def packed(batch: list[np.ndarray], history_len: int, row_multiple: int) -> tuple[np.ndarray, ...]:
    """A batch of left-padded per-user arrays [U, W] (inputs, positives, negatives: real tokens last, as
    many in each) laid end to end in rows of width W, longest user first into the first row with room:
    (inputs, positives, negatives, segments, positions) [R, W] each, R a multiple of `row_multiple`.
    segments numbers each row's users from 1 (0: padding); positions is each token's column had its
    user been left-padded to `history_len` alone."""
    width = batch[0].shape[1]
    lengths = (batch[1] != 0).sum(axis=1)  # [U]
    room: list[int] = []  # free columns of each row
    placed = []  # (user, row, first column)
    for user in np.argsort(-lengths, kind="stable").tolist():
        n = int(lengths[user])
        if n == 0:
            break
        row = next((r for r, free in enumerate(room) if free >= n), len(room))
        if row == len(room):
            room.append(width)
        placed.append((user, row, width - room[row]))
        room[row] -= n
    rows = max(-(-len(room) // row_multiple), 1) * row_multiple
    out = [np.zeros((rows, width), np.int64) for _ in range(5)]
    for segment, (user, row, start) in enumerate(placed, start=1):
        n = int(lengths[user])
        for source, target in zip(batch, out[:3]):  # inputs, positives, negatives
            target[row, start : start + n] = source[user, width - n :]
        out[3][row, start : start + n] = segment
        out[4][row, start : start + n] = np.arange(history_len - n, history_len)
    return tuple(out)


def sasrec_loss(model: SASRec, examples: tuple, shared: None, dropout_key: jax.Array) -> jnp.ndarray:  # scalar
    """Binary cross-entropy of each position's target against its negative, over real positions.
    examples: (inputs, positives, negatives) [B, L] left-padded, or with (segments, positions) packed."""
    inputs, positives, negatives = examples[:3]  # [B, L] each
    packing = examples[3:] or None  # (segments, positions) [B, L] each
    logits = model(inputs, jnp.stack([positives, negatives], axis=-1), packing)  # [B, L, 2]
    losses = optax.sigmoid_binary_cross_entropy(logits, jnp.array([1.0, 0.0])).sum(-1)  # [B, L]
    valid = (positives != 0).astype(jnp.float32)  # [B, L]
    return (losses * valid).sum() / jnp.maximum(valid.sum(), 1.0)


@nnx.jit
def _score_next(model: SASRec, sequence, candidates) -> jnp.ndarray:
    return model.score_next(sequence, candidates)


def sasrec_scores(model: SASRec, split: NextItemSplit, which: str) -> np.ndarray:  # [E, 1+n]
    """Candidate logits after each eval user's history (training items, plus the valid item for test)."""
    history = left_padded(split, split.eval_users, split.history_len(which), model.config.history_len)
    candidates = split.candidates(which)
    out = []
    with without_dropout(model):
        for lo in range(0, history.shape[0], EVAL_BATCH):
            seq, cand = history[lo : lo + EVAL_BATCH], candidates[lo : lo + EVAL_BATCH]
            pad = EVAL_BATCH - seq.shape[0]  # fixed batch shape: one compile per length
            seq, cand = np.pad(seq, ((0, pad), (0, 0))), np.pad(cand, ((0, pad), (0, 0)), constant_values=1)
            (seq,) = cut_padding(seq)
            out.append(np.asarray(_score_next(model, seq, cand))[: EVAL_BATCH - pad])
    return np.concatenate(out)


def train_sasrec(
    split: NextItemSplit, config: SASRecConfig, progress: bool = True, mesh_config: MeshConfig | None = None,
    validation: NextItemSplit | None = None,
) -> tuple[SASRec, FitResult]:
    """Train through the one loop; the model ends holding the best validated epoch's parameters
    (validated on `validation`, a sample of the split's users, or on all of them)."""
    schedule, mesh_config = config.train, mesh_config or MeshConfig()
    users = np.flatnonzero(split.train_len >= 2) + 1
    if users.size == 0:
        raise ValueError("sasrec: no user has two training interactions")
    lengths = split.train_len[users - 1]
    sequences = left_padded(split, users, lengths, config.history_len + 1)
    inputs, positives = sequences[:, :-1], sequences[:, 1:]  # [U, history_len] each
    sampler = split.training_negatives()
    owner = np.broadcast_to(users[:, None], positives.shape)
    steps_per_epoch = -(-users.size // schedule.batch_size)
    def build_model() -> SASRec:
        return SASRec(split.num_items, config, rngs=nnx.Rngs(params=schedule.seed, dropout=schedule.seed + 1))

    trainer = Trainer("sasrec", build_model, sasrec_loss, schedule, mesh_config, steps_per_epoch)
    # Packed batches vary in rows: a multiple of 8 (and of the data axis) keeps the compiled shapes few.
    row_multiple = math.lcm(ROW_STEP, trainer.mesh.shape[DATA_AXIS])

    def epoch(index: int):
        rng = np.random.default_rng([schedule.seed, index])
        negatives = np.where(positives != 0, sampler.draw(owner, rng), 0)
        order = rng.permutation(users.size)
        for lo in range(0, users.size, schedule.batch_size):
            rows = order[lo : lo + schedule.batch_size]
            rows = np.pad(rows, (0, schedule.batch_size - rows.size), constant_values=-1)  # -1: an empty row
            batch = [np.where(rows[:, None] >= 0, a[rows], 0) for a in (inputs, positives, negatives)]
            yield packed(cut_padding(*batch), config.history_len, row_multiple), None

    fit_result = fit(
        trainer, lambda start, end: epoch_steps(start, end, steps_per_epoch, epoch),
        lambda model: hit_and_ndcg(sasrec_scores(model, validation or split, "valid")), metric="valid_ndcg@10",
        progress=progress,
    )
    return trainer.model, fit_result

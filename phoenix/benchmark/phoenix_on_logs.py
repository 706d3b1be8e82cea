"""Training Phoenix on an interaction log and scoring the protocol's candidates.

The model is the ranker (`PhoenixRanker`, hashed ids, candidate isolation),
with the match term when `model.sequence_match` is on. Training runs the
prefix path (`score_cached`): the history is encoded once causally and each
candidate attends to its cutoff's prefix and itself, which equals the full
path but costs C·H instead of (H+C)^2. The loss is the ranker's per-action
sigmoid cross-entropy plus, on the `logs.interaction_action` head:

* a softmax cross-entropy of the true item against the k negatives that share
  its cutoff (`logs.listwise_weight`; each negative is a full candidate token
  through every layer);
* a softmax of the match term against a catalogue sample shared by the batch
  (`logs.catalogue_weight`): the whole catalogue when it has at most
  `logs.catalogue_negatives` items, less the user's own training items with
  `logs.catalogue_excludes_user_items`. One dot product per item, so
  thousands of negatives per position cost less than one more candidate token;
* a sigmoid cross-entropy on the same catalogue logits
  (`logs.catalogue_bce_weight`).

Each term is summed over a batch's positions against the epoch's mean
positions per step, so a target weighs the same in a batch of short windows as
in one of long windows.

The protocol ranks by that head's logit (did the user interact with this item
next). AdamW with warmup and cosine decay, early stopping on validation
NDCG@10 through the one training loop (`[logs.train]`); with `average_decay`
the validation, the kept best state and the test use an exponential moving
average of the parameters.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from einops import rearrange
from flax import nnx

from phoenix.benchmark.catalogue_loss import CrossEntropies, catalogue_cross_entropies
from phoenix.config import PhoenixConfig
from phoenix.data.batch import CandidateBatch, RankerBatch
from phoenix.data.log_examples import (
    HashTables,
    batch_sizes,
    epoch_batches,
    evaluation_batches,
    num_batches,
    ranker_batch,
    training_batch,
    training_windows,
)
from phoenix.data.protocol import NextItemSplit, hit_and_ndcg
from phoenix.model.dropout import without_dropout
from phoenix.model.ranker import PhoenixRanker, PrefixCache, build_ranker
from phoenix.training.loader import epoch_steps
from phoenix.training.loop import FitResult, fit
from phoenix.training.ranker_loss import action_loss
from phoenix.training.trainer import Trainer

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


def catalogue_loss(
    model: PhoenixRanker,
    cache: PrefixCache,
    positives: CandidateBatch,  # [B, P] the true items (group 0), with their cutoffs
    valid: jnp.ndarray,  # [B, P]
    catalogue: jnp.ndarray,  # [S, K] hashes of the catalogue sample shared by the batch
    action: int,
    user_items: jnp.ndarray | None = None,  # [B, S] sample items the row's user trains on: not negatives
    cross_entropies: CrossEntropies = catalogue_cross_entropies,
) -> tuple[jnp.ndarray, jnp.ndarray]:  # scalars: softmax and sigmoid cross-entropy
    """Cross-entropies of the match term: each true item against the whole catalogue sample.

    The match is one dot product per (state, item), so scoring thousands of
    items per position costs less than one more candidate token; a sample
    item that is the true item itself (same hashes) is masked out, and so is
    every item of `user_items`: the protocol ranks a target only against items
    the user never interacted with, so those are the negatives to learn from
    (SASRec's sampled negatives exclude the user's items for the same reason).

    Two losses share the logits: the softmax (the true item's log-probability
    among the sample) and a sigmoid cross-entropy (the true item scored 1, the
    mean over the unmasked sample items 0: SASRec's loss with every item as
    its negative, which calibrates each logit against uniform negatives,
    as the protocol's are, rather than only against the hardest ones).
    `cross_entropies` computes both per position: by default in cache-sized
    chunks with its own gradient (`phoenix.benchmark.catalogue_loss`).
    """
    queries = jnp.take_along_axis(cache.match[:, :, action], positives.cutoff[..., None], axis=1)  # [B, P, K·E]
    target = jnp.einsum("bpn,bpn->bp", queries, model.candidate_posts(positives))  # [B, P]
    if user_items is None:
        user_items = jnp.zeros((queries.shape[0], catalogue.shape[0]), bool)  # [B, S]
    softmax_nll, sigmoid_nll = cross_entropies(  # [B, P] each
        queries, target, model.encoder.post_embed(catalogue), positives.post_hashes, catalogue, user_items
    )
    weight = valid.astype(jnp.float32)
    denominator = jnp.maximum(weight.sum(), 1.0)
    return (softmax_nll * weight).sum() / denominator, (sigmoid_nll * weight).sum() / denominator


def log_loss_fn(
    model: PhoenixRanker,
    examples: tuple[RankerBatch, jnp.ndarray, jnp.ndarray | None],  # batch, labels [B, C, A], user items [B, S]
    catalogue: jnp.ndarray,  # [S, K] hashes of the catalogue sample shared by the batch
    dropout_key: jax.Array,
    *,
    groups: int,
    action: int,
    listwise_weight: float,
    catalogue_weight: float,
    mean_positions: float,
    catalogue_bce_weight: float = 0.0,
    cross_entropies: CrossEntropies = catalogue_cross_entropies,
) -> jnp.ndarray:  # scalar
    """The ranker's action loss plus the listwise and catalogue terms on the interaction head.

    Each term is a mean over the batch's true-item positions (and their candidates), scaled by
    positions / `mean_positions` (the epoch's target positions over its steps): a sum over the
    batch's positions against a fixed budget, so every position of the epoch weighs the same whether
    its batch holds 32 windows of 2 targets or 32 of 64. (`mean_positions` equal to the batch's own
    positions gives the plain mean per batch.)
    """
    batch, labels, user_items = examples
    p = batch.candidate_valid.shape[1] // groups
    valid = batch.candidate_valid[:, :p]  # [B, P] the true items (group 0)
    cache = model.encode_prefix(batch.prefix)
    logits = model.score_cached(cache, batch.candidates)  # [B, C, A]
    loss = action_loss(logits, labels, batch.candidate_valid)
    if listwise_weight:
        loss = loss + listwise_weight * listwise_loss(logits[..., action], batch.candidate_valid, groups)
    if catalogue_weight or catalogue_bce_weight:
        positives = jax.tree.map(lambda x: x[:, :p], batch.candidates)
        softmax, sigmoid = catalogue_loss(model, cache, positives, valid, catalogue, action, user_items,
                                          cross_entropies)
        loss = loss + catalogue_weight * softmax + catalogue_bce_weight * sigmoid
    return loss * valid.sum().astype(jnp.float32) / mean_positions


def catalogue_sample(num_items: int, size: int, rng: np.random.Generator) -> np.ndarray:  # [min(size, I)]
    """Item indices: the whole catalogue when it has at most `size` items, else `size` uniform distinct items."""
    if num_items <= size:
        return np.arange(1, num_items + 1)
    return 1 + rng.choice(num_items, size, replace=False)


@nnx.jit(static_argnames="action")
def _action_logits(model: PhoenixRanker, batch: RankerBatch, action: int) -> jnp.ndarray:  # [B, C]
    return model(batch)[..., action]


def phoenix_scores(
    model: PhoenixRanker, split: NextItemSplit, tables: HashTables, which: str, action: int
) -> np.ndarray:  # [E, 1+n]
    scores = np.zeros(split.candidates(which).shape, np.float32)
    with without_dropout(model):
        for rows, *inputs in evaluation_batches(split, which, model.config.history_len, EVAL_BATCH):
            batch = ranker_batch(split, tables, *inputs)
            scores[rows] = np.asarray(_action_logits(model, batch, action))[: rows.size]
    return scores


@dataclasses.dataclass
class LogTraining:
    """Everything one Phoenix training run on a log needs: the trainer, the hashed ids, the plan of
    each epoch's batches and the validation score (the benchmark and `bench/logs_scale.py` share it)."""

    trainer: Trainer
    tables: HashTables
    epoch: Callable[[int], Iterator[tuple[tuple, jnp.ndarray]]]  # epoch index -> (examples, catalogue) batches
    steps_per_epoch: int
    validate: Callable[[PhoenixRanker], dict[str, float]]


def log_training(
    split: NextItemSplit, config: PhoenixConfig, cross_entropies: CrossEntropies = catalogue_cross_entropies
) -> LogTraining:
    """`cross_entropies` is the catalogue losses' implementation (`bench/logs_scale.py` times both)."""
    config.check_logs()
    logs, schedule = config.logs, config.logs.train
    tables = HashTables.build(split, config.model)
    windows = training_windows(split, config.model.history_len, logs.recent_targets)
    if len(windows) == 0:
        raise ValueError("phoenix: the log has no training interactions")
    sampler = split.training_negatives()
    sizes = batch_sizes(windows, schedule.batch_size, config.model.history_len, logs.batch_by_tokens)  # [N]
    steps_per_epoch = num_batches(windows, sizes)
    action = config.model.actions.index(logs.interaction_action)
    loss = functools.partial(
        log_loss_fn, groups=1 + logs.train_negatives, action=action, listwise_weight=logs.listwise_weight,
        catalogue_weight=logs.catalogue_weight, catalogue_bce_weight=logs.catalogue_bce_weight,
        cross_entropies=cross_entropies, mean_positions=windows.num_targets / steps_per_epoch,
    )
    trainer = Trainer("phoenix", lambda: build_ranker(config.model, seed=schedule.seed), loss, schedule,
                      config.mesh, steps_per_epoch)

    def epoch(index: int):
        rng = np.random.default_rng([schedule.seed, index])
        for chosen in epoch_batches(windows, sizes, rng):
            size = int(sizes[chosen[0]])
            batch, labels = training_batch(split, tables, windows, chosen, size, logs.train_negatives, sampler, rng)
            items = catalogue_sample(split.num_items, logs.catalogue_negatives, rng)
            users = np.pad(windows.user[chosen], (0, size - chosen.size))  # [B] 0: padding, no items
            user_items = (  # [B, S]
                sampler.positives_among(users, items) if logs.catalogue_excludes_user_items else None
            )
            yield (batch, labels, user_items), tables.item[items]

    validation = split.eval_sample(logs.valid_users, logs.eval_seed)

    def validate(model: PhoenixRanker) -> dict[str, float]:
        return hit_and_ndcg(phoenix_scores(model, validation, tables, "valid", action))

    return LogTraining(trainer, tables, epoch, steps_per_epoch, validate)


def train_phoenix_on_log(
    split: NextItemSplit, config: PhoenixConfig, progress: bool = True
) -> tuple[PhoenixRanker, HashTables, FitResult]:
    """Train through the one loop; the model ends holding the best validated (averaged) parameters."""
    run = log_training(split, config)
    fit_result = fit(
        run.trainer, lambda start, end: epoch_steps(start, end, run.steps_per_epoch, run.epoch),
        run.validate, metric="valid_ndcg@10", progress=progress,
    )
    return run.trainer.model, run.tables, fit_result

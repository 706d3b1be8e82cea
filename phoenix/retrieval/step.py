"""The two-tower loss and train step: sampled softmax over in-batch negatives with logQ correction.

Every positive in the batch is a negative for every other user vector. Popular
posts are positives (hence in-batch negatives) more often, which would teach
the model to push them down; subtracting log q(post), the post's share of all
training positives, removes that sampling bias (Yi et al., RecSys 2019).
A column holding the row's own post again (a popular post twice in a batch)
is masked: it is not a negative.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from einops import rearrange

from phoenix.data.batch import PrefixBatch
from phoenix.retrieval.two_tower import TwoTowerModel


def in_batch_softmax_loss(
    users: jnp.ndarray,  # [N, D] unit user vectors
    items: jnp.ndarray,  # [N, D] unit vectors of each row's positive
    item_ids: jnp.ndarray,  # [N] post ids (accidental hits share an id)
    valid: jnp.ndarray,  # [N] bool, rows that are real positives
    logq: jnp.ndarray,  # [N] log sampling probability of each row's positive
    temperature: jnp.ndarray,  # scalar
    logq_correction: bool,
) -> jnp.ndarray:  # scalar mean cross-entropy over valid rows
    logits = users @ items.T / temperature  # [N, N]
    if logq_correction:
        logits = logits - logq[None, :]
    same_item = item_ids[:, None] == item_ids[None, :]  # [N, N]
    diagonal = jnp.eye(logits.shape[0], dtype=bool)
    negative_ok = valid[None, :] & ~(same_item & ~diagonal)  # [N, N]
    logits = jnp.where(negative_ok, logits, -1e9)
    per_row = jax.nn.logsumexp(logits, axis=1) - jnp.diagonal(logits)  # [N]
    weight = valid.astype(jnp.float32)
    return jnp.sum(per_row * weight) / jnp.maximum(jnp.sum(weight), 1.0)


def retrieval_loss(
    model: TwoTowerModel,
    examples: tuple[PrefixBatch, jnp.ndarray, jnp.ndarray, jnp.ndarray],  # prefix, target mask/ids/logq [B, H]
    shared: None,
    dropout_key: jax.Array,
    *,
    post_id_dropout: float,
    logq_correction: bool,
) -> jnp.ndarray:  # scalar
    """The sampled-softmax loss of B windows of H engaged items: history item c is the positive of cutoff c."""
    prefix, target_mask, target_post_ids, target_logq = examples
    h = target_mask.shape[1]
    keep = jax.random.bernoulli(dropout_key, 1.0 - post_id_dropout, target_mask.shape)  # [B, H]
    users = model.user_tower.user_vectors_at_cutoffs(prefix)[:, :h]  # [B, H, D]: before item c
    items = model.item_tower(prefix.history_post_hashes, prefix.history_author_hashes, keep)  # [B, H, D]
    flat = lambda x: rearrange(x, "b h ... -> (b h) ...")  # noqa: E731
    return in_batch_softmax_loss(
        flat(users), flat(items), flat(target_post_ids), flat(target_mask), flat(target_logq),
        model.temperature, logq_correction,
    )

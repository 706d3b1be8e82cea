"""The chunked catalogue cross-entropies equal their plain definition, values and gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from phoenix.benchmark import catalogue_loss
from phoenix.benchmark.catalogue_loss import catalogue_cross_entropies, materialised_cross_entropies


def inputs(seed: int, rows: int = 6, positions: int = 5, width: int = 8, items: int = 40, hashes: int = 2):
    rng = np.random.default_rng(seed)
    queries = jnp.asarray(rng.normal(size=(rows, positions, width)), jnp.float32)  # [B, P, N]
    target = jnp.asarray(rng.normal(size=(rows, positions)), jnp.float32)  # [B, P]
    embeddings = jnp.asarray(rng.normal(size=(items, width)), jnp.float32)  # [S, N]
    catalogue = jnp.asarray(rng.integers(1, 1000, (items, hashes)))  # [S, K]
    positive = jnp.asarray(rng.integers(1, 1000, (rows, positions, hashes)))  # [B, P, K]
    positive = positive.at[0, 0].set(catalogue[3]).at[2, 4].set(catalogue[0])  # true items inside the sample
    user_items = jnp.asarray(rng.random((rows, items)) < 0.3).at[1].set(True)  # row 1: no negatives at all
    return (queries, target, embeddings), (positive, catalogue, user_items)


def weighted(fn, fixed, weights):
    """A scalar of both per-position losses, each with its own weights (as the training loss weighs them)."""

    def loss(queries, target, embeddings):
        softmax, sigmoid = fn(queries, target, embeddings, *fixed)  # [B, P] each
        return (softmax * weights[0]).sum() + 0.5 * (sigmoid * weights[1]).sum()

    return loss


# One row a chunk, two rows, the whole batch; and logits far above SHIFTED_UP_TO (the plain softplus
# and sigmoid instead of those read off the softmax's exponentials).
@pytest.mark.parametrize("chunk_positions, logit_scale", [(5, 1.0), (10, 1.0), (512, 1.0), (10, 40.0)])
def test_chunked_cross_entropies_equal_the_materialised_definition(monkeypatch, chunk_positions, logit_scale):
    monkeypatch.setattr(catalogue_loss, "CHUNK_POSITIONS", chunk_positions)
    (queries, target, embeddings), fixed = inputs(0)
    differentiable = (queries * logit_scale, target * logit_scale, embeddings)
    assert (float(np.abs(np.asarray(differentiable[0] @ embeddings.T)).max()) > catalogue_loss.SHIFTED_UP_TO) == (
        logit_scale > 1)
    reference = materialised_cross_entropies(*differentiable, *fixed)
    chunked = jax.jit(catalogue_cross_entropies)(*differentiable, *fixed)
    for want, got in zip(reference, chunked):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
    # Row 1 allows no negative: its softmax is the true item alone (0) and its sigmoid term softplus(-t).
    np.testing.assert_allclose(np.asarray(chunked[0][1]), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(chunked[1][1]), np.logaddexp(0.0, -np.asarray(differentiable[1][1])),
                               rtol=1e-5, atol=1e-30)
    rng = np.random.default_rng(1)
    weights = [jnp.asarray(rng.random((6, 5)), jnp.float32) for _ in range(2)]
    want = jax.grad(weighted(materialised_cross_entropies, fixed, weights), argnums=(0, 1, 2))(*differentiable)
    got = jax.jit(jax.grad(weighted(catalogue_cross_entropies, fixed, weights), argnums=(0, 1, 2)))(*differentiable)
    for name, w, g in zip(("queries", "target", "items"), want, got):
        scale = float(np.abs(np.asarray(w)).max())
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=1e-5 * scale, err_msg=name)


def test_an_excluded_item_gets_no_gradient_from_a_position():
    (queries, target, embeddings), (positive, catalogue, user_items) = inputs(2, rows=1, positions=1)
    user_items = jnp.zeros_like(user_items).at[0, 7].set(True)  # item 7 is the user's own: not a negative

    def item_grad(excluded):
        fixed = (positive, catalogue, excluded)
        return jax.grad(weighted(catalogue_cross_entropies, fixed, [jnp.ones((1, 1))] * 2), argnums=2)(
            queries, target, embeddings)

    np.testing.assert_allclose(np.asarray(item_grad(user_items))[7], 0.0, atol=0)
    assert np.abs(np.asarray(item_grad(jnp.zeros_like(user_items)))[7]).max() > 1e-4

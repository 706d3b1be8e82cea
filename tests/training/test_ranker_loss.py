"""The ranker's loss: training on the prefix path trains the same model as the full sequence."""

import dataclasses

import jax
import numpy as np
from flax import nnx
from helpers import SMALL_MODEL, random_request

from phoenix.data.batch import featurize
from phoenix.model.ranker import build_ranker
from phoenix.training.ranker_loss import ranker_loss


def test_prefix_path_loss_and_gradients_equal_the_full_sequence():
    """Same loss and same gradient for every parameter, post-id dropout included (one key, one mask)."""
    config = dataclasses.replace(SMALL_MODEL, post_id_dropout=0.5)
    model = build_ranker(config, seed=2)
    rng = np.random.default_rng(3)
    batch = featurize(random_request(rng, config, batch=3, lengths=[12, 5, 0]), config)
    labels = (rng.random((3, config.num_candidates, config.num_actions)) < 0.3).astype(np.int8)
    key = jax.random.key(4)

    def loss_and_grads(full_sequence: bool):
        def loss(m):
            return ranker_loss(m, (batch, labels), None, key, full_sequence=full_sequence)

        @nnx.jit  # compiled: op-by-op gradients of the two paths take half a minute on 2 cores
        def value_and_grad(m):
            return nnx.value_and_grad(loss)(m)

        value, grads = value_and_grad(model)
        leaves = jax.tree_util.tree_leaves_with_path(grads)
        return float(value), {jax.tree_util.keystr(path): np.asarray(g) for path, g in leaves}

    prefix_loss, prefix = loss_and_grads(False)
    full_loss, full = loss_and_grads(True)
    assert abs(prefix_loss - full_loss) < 1e-6
    assert prefix.keys() == full.keys()
    for name, g in full.items():
        scale = max(float(np.abs(g).max()), 1e-6)
        np.testing.assert_allclose(prefix[name], g, atol=1e-4 * scale, err_msg=name)
    # The gradients are not trivially zero, and post-id dropout zeroed some candidates' post rows.
    assert sum(float(np.abs(g).sum()) for g in full.values()) > 1e-2
    keep = np.asarray(jax.random.bernoulli(key, 0.5, batch.candidates.cutoff.shape))
    assert 0 < keep.sum() < keep.size

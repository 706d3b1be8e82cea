import jax.numpy as jnp
import numpy as np

from phoenix.retrieval.step import in_batch_softmax_loss


def loss(users, items, ids, valid, logq, temperature=1.0, correction=True):
    return float(in_batch_softmax_loss(jnp.asarray(users), jnp.asarray(items), jnp.asarray(ids),
                                       jnp.asarray(valid), jnp.asarray(logq), jnp.asarray(temperature), correction))


def test_matches_hand_computed_softmax_with_logq():
    users = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    items = np.array([[0.6, 0.8], [1.0, 0.0]], np.float32)
    logq = np.log(np.array([0.25, 0.75], np.float32))
    logits = users @ items.T / 0.5 - logq[None, :]
    want = np.mean([np.log(np.exp(row).sum()) - row[i] for i, row in enumerate(logits)])
    np.testing.assert_allclose(loss(users, items, [1, 2], [True, True], logq, 0.5), want, rtol=1e-5)
    plain = users @ items.T / 0.5
    want_plain = np.mean([np.log(np.exp(row).sum()) - row[i] for i, row in enumerate(plain)])
    np.testing.assert_allclose(loss(users, items, [1, 2], [True, True], logq, 0.5, False), want_plain, rtol=1e-5)


def test_accidental_hits_and_padding_are_not_negatives():
    users = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    items = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    zero = np.zeros(3, np.float32)
    # Rows 0 and 1 share post 7: each must see only post 9 as a negative.
    got = loss(users, items, [7, 7, 9], [True, True, True], zero)
    row01 = np.log(np.exp(1.0) + np.exp(0.0)) - 1.0
    row2 = np.log(np.exp(1.0) + 2 * np.exp(0.0)) - 1.0
    np.testing.assert_allclose(got, (2 * row01 + row2) / 3, rtol=1e-5)
    # A padded row neither counts nor acts as a negative.
    got = loss(users, items, [7, 8, 9], [True, False, True], zero)
    np.testing.assert_allclose(got, np.log(np.exp(1.0) + np.exp(0.0)) - 1.0, rtol=1e-5)

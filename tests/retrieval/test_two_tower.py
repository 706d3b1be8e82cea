import dataclasses

import jax.numpy as jnp
import numpy as np
from helpers import SMALL_MODEL, random_request

from phoenix.config import RetrievalConfig
from phoenix.data.batch import featurize
from phoenix.retrieval.two_tower import build_two_tower, l2_normalize


def model():
    return build_two_tower(SMALL_MODEL, RetrievalConfig(), seed=3)


def test_user_and_item_vectors_are_unit_length_even_without_history():
    m = model()
    request = random_request(np.random.default_rng(0), batch=4, lengths=[0, 1, 5, 12])
    batch = featurize(request, SMALL_MODEL)
    users = np.asarray(m.user_tower(batch.prefix))  # [B, D]
    items = np.asarray(m.item_tower(batch.candidates.post_hashes, batch.candidates.author_hashes))  # [B, C, D]
    assert users.shape == (4, SMALL_MODEL.model_dim)
    np.testing.assert_allclose(np.linalg.norm(users, axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(items, axis=-1), 1.0, atol=1e-5)
    assert np.all(np.isfinite(np.asarray(l2_normalize(jnp.zeros((2, 8))))))  # zero stays finite


def test_vector_at_cutoff_c_equals_the_request_with_only_c_items():
    """Packed training is exact: row c of one pass is what a request of c items gets at serving."""
    m = model()
    request = random_request(np.random.default_rng(1), batch=2, lengths=[12, 9])
    every_cutoff = np.asarray(m.user_tower.user_vectors_at_cutoffs(featurize(request, SMALL_MODEL).prefix))
    for c in (0, 3, 9):
        fields = dict(vars(request))
        for name in ("history_post_id", "history_author_id", "history_surface"):
            fields[name] = np.where(np.arange(12) < c, fields[name], 0)
        fields["history_actions"] = fields["history_actions"] * (np.arange(12) < c)[None, :, None]
        fields["candidate_cutoff"] = np.minimum(fields["candidate_cutoff"], c)
        truncated = type(request)(**fields)
        alone = np.asarray(m.user_tower(featurize(truncated, SMALL_MODEL).prefix))
        np.testing.assert_allclose(every_cutoff[:, c], alone, atol=1e-5)


def test_history_padding_length_does_not_move_the_user_vector():
    m = model()
    config = dataclasses.replace(SMALL_MODEL, history_len=12)
    request = random_request(np.random.default_rng(2), batch=1, lengths=[5])
    short = {k: (v[:, :6] if k.startswith("history") else v) for k, v in vars(request).items()}
    a = np.asarray(m.user_tower(featurize(request, config).prefix))
    b = np.asarray(m.user_tower(featurize(type(request)(**short), config).prefix))
    np.testing.assert_allclose(a, b, atol=1e-5)

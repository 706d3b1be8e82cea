"""The prefix path (training, evaluation, serving) equals the full-sequence reference."""

import dataclasses

import numpy as np
import pytest
from helpers import SMALL_MODEL, random_request

from phoenix.data.batch import featurize
from phoenix.model.ranker import build_ranker


@pytest.fixture(scope="module", params=[False, True], ids=["grok", "sequence_match"])
def model(request):
    return build_ranker(dataclasses.replace(SMALL_MODEL, sequence_match=request.param), seed=11)


@pytest.mark.parametrize(
    "history, candidates, lengths",
    [(12, 6, [12, 0]), (12, 1, [5, 3]), (4, 40, [4, 2]), (12, 17, [0, 12])],
)
def test_prefix_path_matches_full_path(model, history, candidates, lengths):
    request = random_request(np.random.default_rng(history + candidates), batch=2, history=history,
                             candidates=candidates, lengths=lengths)
    request.candidate_post_id[1, -1] = 0  # a padding candidate too
    batch = featurize(request, model.config)
    full = np.asarray(model.full_sequence(batch))
    prefix = np.asarray(model(batch))
    assert prefix.shape == full.shape
    np.testing.assert_allclose(prefix, full, atol=2e-5, rtol=1e-5)


def test_prefix_path_in_bfloat16_stays_close():
    config = dataclasses.replace(SMALL_MODEL, compute_dtype="bfloat16")
    model = build_ranker(config, seed=11)
    batch = featurize(random_request(np.random.default_rng(0), candidates=9), config)
    np.testing.assert_allclose(np.asarray(model(batch)), np.asarray(model.full_sequence(batch)), atol=0.1)

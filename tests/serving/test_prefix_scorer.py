"""The compiled cached-prefix scorer equals the full-sequence path, whatever the chunking."""

import dataclasses

import jax
import numpy as np
import pytest
from helpers import SMALL_MODEL, random_request

from phoenix.data.batch import featurize
from phoenix.model.ranker import build_ranker
from phoenix.serving.prefix_scorer import PrefixScorer, chunk_plan, history_buckets


def full_path_probs(model, batch) -> np.ndarray:
    return np.asarray(jax.nn.sigmoid(model(batch)))


@pytest.fixture(scope="module")
def model():
    return build_ranker(SMALL_MODEL, seed=5)


@pytest.mark.parametrize(
    "candidates, lengths, buckets",
    [(1, [0, 12], (4, 16)), (17, [3, 12], (4, 16)), (70, [12, 1], (4, 16)), (37, [6, 2], (8, 32, 64))],
)
def test_prefix_scorer_matches_full_path(model, candidates, lengths, buckets):
    rng = np.random.default_rng(candidates)
    request = random_request(rng, batch=2, candidates=candidates, lengths=lengths)
    # Per-candidate cutoffs anywhere in [0, length]: evaluation scores each impression at its own time.
    request.candidate_cutoff = rng.integers(0, np.array(lengths)[:, None] + 1, (2, candidates))
    batch = featurize(request, SMALL_MODEL)
    scorer = PrefixScorer(model, chunk_buckets=buckets)
    np.testing.assert_allclose(scorer.probabilities(batch), full_path_probs(model, batch), atol=2e-6)


def test_prefix_scorer_without_the_max_free_softmax_matches_full_path():
    config = dataclasses.replace(SMALL_MODEL, attn_logit_cap=500.0)  # exp could overflow: max pass kept
    model = build_ranker(config, seed=2)
    batch = featurize(random_request(np.random.default_rng(1), config, candidates=9), config)
    np.testing.assert_allclose(PrefixScorer(model).probabilities(batch), full_path_probs(model, batch), atol=2e-6)


def test_a_candidate_score_does_not_depend_on_its_chunk_or_neighbours(model):
    request = random_request(np.random.default_rng(3), batch=1, candidates=40, lengths=[9])
    batch = featurize(request, SMALL_MODEL)
    whole = PrefixScorer(model, chunk_buckets=(64,)).probabilities(batch)
    chunked = PrefixScorer(model, chunk_buckets=(3, 7)).probabilities(batch)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)
    reversed_request = dataclasses.replace(
        request, **{f: getattr(request, f)[:, ::-1] for f in ("candidate_post_id", "candidate_author_id",
                                                              "candidate_surface", "candidate_cutoff")}
    )
    flipped = PrefixScorer(model).probabilities(featurize(reversed_request, SMALL_MODEL))
    np.testing.assert_allclose(flipped[:, ::-1], whole, atol=1e-6)


def test_chunk_plan_covers_every_candidate_once_with_bucketed_sizes():
    buckets = (16, 64, 256, 512)
    for n in (1, 16, 17, 511, 512, 513, 1500, 5000):
        plan = chunk_plan(n, buckets)
        covered = np.concatenate([np.arange(start, stop) for start, stop, _ in plan])
        np.testing.assert_array_equal(covered, np.arange(n))
        assert all(size in buckets and size >= stop - start for start, stop, size in plan)
    assert [size for *_, size in chunk_plan(1500, buckets)] == [512, 512, 512]
    assert [size for *_, size in chunk_plan(530, buckets)] == [512, 64]


def test_history_buckets_end_at_the_model_history():
    assert history_buckets(128) == (16, 32, 64, 128)
    assert history_buckets(12) == (1, 3, 6, 12)
    assert history_buckets(1) == (1,)

"""Candidate isolation and history cutoffs: the ranker's core invariances."""

import dataclasses

import numpy as np
import pytest
from helpers import SMALL_MODEL, random_request, select_candidates

from phoenix.data.batch import RequestBatch, featurize
from phoenix.model.ranker import build_ranker


@pytest.fixture(scope="module")
def model():
    """The ranker on the path training and serving run (`test_prefix_path` ties it to the full sequence)."""
    return build_ranker(SMALL_MODEL, seed=3)


def logits(model, request: RequestBatch) -> np.ndarray:
    return np.asarray(model(featurize(request, SMALL_MODEL)))


def test_logits_do_not_depend_on_other_candidates_their_number_or_order(model):
    rng = np.random.default_rng(0)
    request = random_request(rng, candidates=6, lengths=[9, 4])
    full = logits(model, request)  # [2, 6, A]
    assert np.abs(full).max() > 0.05  # not a degenerate constant model

    reversed_order = logits(model, select_candidates(request, np.arange(6)[::-1]))
    np.testing.assert_allclose(reversed_order[:, ::-1], full, atol=1e-5)

    subset = logits(model, select_candidates(request, np.array([4, 1])))
    np.testing.assert_allclose(subset, full[:, [4, 1]], atol=1e-5)

    single = logits(model, select_candidates(request, np.array([2])))
    np.testing.assert_allclose(single[:, 0], full[:, 2], atol=1e-5)

    # Replace all other candidates by different posts: candidate 3 is unmoved.
    other = dataclasses.replace(request, candidate_post_id=rng.integers(1, 9999, (2, 6)))
    other.candidate_post_id[:, 3] = request.candidate_post_id[:, 3]
    np.testing.assert_allclose(logits(model, other)[:, 3], full[:, 3], atol=1e-5)


def test_candidate_with_cutoff_equals_request_with_truncated_history(model):
    rng = np.random.default_rng(1)
    h = SMALL_MODEL.history_len
    request = random_request(rng, batch=1, candidates=5, lengths=[h])
    cutoffs = np.array([[0, 3, 7, h, 5]])
    packed = logits(model, dataclasses.replace(request, candidate_cutoff=cutoffs))
    for j, t in enumerate(cutoffs[0]):
        truncated = dataclasses.replace(
            request,
            history_post_id=np.where(np.arange(h) < t, request.history_post_id, 0),
            history_author_id=np.where(np.arange(h) < t, request.history_author_id, 0),
            history_actions=request.history_actions * (np.arange(h) < t)[None, :, None],
            history_surface=np.where(np.arange(h) < t, request.history_surface, 0),
            candidate_cutoff=np.full((1, 5), t),
        )
        np.testing.assert_allclose(logits(model, truncated)[0, j], packed[0, j], atol=1e-5)
        shorter = dataclasses.replace(
            truncated,
            history_post_id=truncated.history_post_id[:, :t],
            history_author_id=truncated.history_author_id[:, :t],
            history_actions=truncated.history_actions[:, :t],
            history_surface=truncated.history_surface[:, :t],
        )
        np.testing.assert_allclose(logits(model, shorter)[0, j], packed[0, j], atol=1e-5)


def test_history_after_the_cutoff_is_invisible(model):
    rng = np.random.default_rng(2)
    request = random_request(rng, batch=1, candidates=3, lengths=[10])
    request.candidate_cutoff[:] = [[4, 4, 10]]
    changed = dataclasses.replace(request, history_post_id=request.history_post_id.copy())
    changed.history_post_id[0, 4:10] = rng.integers(1, 9999, 6)
    a, b = logits(model, request), logits(model, changed)
    np.testing.assert_allclose(a[0, :2], b[0, :2], atol=1e-5)
    assert np.abs(a[0, 2] - b[0, 2]).max() > 1e-4  # the full-history candidate does see it


def test_padding_candidates_and_history_change_nothing(model):
    rng = np.random.default_rng(3)
    request = random_request(rng, batch=2, history=8, candidates=4, lengths=[8, 5])
    base = logits(model, request)
    pad_h = lambda x, fill=0: np.concatenate([x, np.full(x.shape[:1] + (4,) + x.shape[2:], fill, x.dtype)], 1)  # noqa: E731
    padded = RequestBatch(
        user_id=request.user_id,
        history_post_id=pad_h(request.history_post_id),
        history_author_id=pad_h(request.history_author_id),
        history_actions=pad_h(request.history_actions),
        history_surface=pad_h(request.history_surface),
        candidate_post_id=np.concatenate([request.candidate_post_id, np.zeros((2, 3), np.int64)], 1),
        candidate_author_id=np.concatenate([request.candidate_author_id, np.zeros((2, 3), np.int64)], 1),
        candidate_surface=np.concatenate([request.candidate_surface, np.zeros((2, 3), np.int64)], 1),
        candidate_cutoff=np.concatenate([request.candidate_cutoff, np.zeros((2, 3), np.int64)], 1),
    )
    np.testing.assert_allclose(logits(model, padded)[:, :4], base, atol=1e-5)


def test_bfloat16_compute_keeps_float32_params_and_close_logits():
    config = dataclasses.replace(SMALL_MODEL, compute_dtype="bfloat16")
    fp32, bf16 = build_ranker(SMALL_MODEL, seed=5), build_ranker(config, seed=5)
    assert bf16.encoder.post_embed.table.embedding.value.dtype == np.float32
    request = random_request(np.random.default_rng(4))
    a = np.asarray(fp32(featurize(request, SMALL_MODEL)))
    b = np.asarray(bf16(featurize(request, config)))
    assert b.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=0.1)


@pytest.mark.parametrize("path", ["full", "prefix"])
def test_the_match_term_never_reads_history_after_a_candidates_cutoff(path):
    """With `sequence_match` on, a candidate's logits read the user state at its cutoff: change every
    history item at or after the cutoff (in log training, the cutoff's item is the target itself)
    and its score must not move, on the full-sequence reference and on the prefix path training and serving use."""
    config = dataclasses.replace(SMALL_MODEL, sequence_match=True)
    model = build_ranker(config, seed=5)
    rng = np.random.default_rng(7)
    h = config.history_len
    request = random_request(rng, batch=1, candidates=4, lengths=[h])
    request = dataclasses.replace(request, candidate_cutoff=np.array([[0, 2, 5, h - 1]]))

    def score(r):
        batch = featurize(r, config)
        return np.asarray(model.full_sequence(batch) if path == "full" else model(batch))[0]  # [C, A]

    base = score(request)
    for j, cutoff in enumerate(request.candidate_cutoff[0]):
        later = np.arange(h) >= cutoff  # the history this candidate must not see
        changed = dataclasses.replace(
            request,
            history_post_id=np.where(later, rng.integers(1, 99_999, h), request.history_post_id),
            history_author_id=np.where(later, rng.integers(1, 9_999, h), request.history_author_id),
            history_actions=np.where(later[None, :, None], 1 - request.history_actions, request.history_actions),
        )
        np.testing.assert_allclose(score(changed)[j], base[j], atol=1e-5)
    assert np.abs(base - score(dataclasses.replace(request, candidate_cutoff=np.full((1, 4), h)))).max() > 1e-3

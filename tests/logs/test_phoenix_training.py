"""Phoenix's training pieces on logs: the listwise and catalogue losses by hand, the catalogue
sample, and dropout only while training."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import SMALL_MODEL, random_request

from phoenix.logs.phoenix_examples import HashTables
from phoenix.logs.phoenix_training import catalogue_loss, catalogue_sample, listwise_loss, seen_before_cutoff
from phoenix.model.batch import PrefixBatch, featurize
from phoenix.model.dropout import without_dropout
from phoenix.model.ranker import build_ranker


def test_listwise_loss_matches_a_hand_computed_softmax():
    # Two positions (P=2), two groups (true item, one negative): layout [true_0, true_1, neg_0, neg_1].
    logits = jnp.array([[2.0, 0.0, 1.0, 3.0]])
    valid = jnp.array([[True, True, True, True]])
    expected = -(np.log(np.exp(2) / (np.exp(2) + np.exp(1))) + np.log(1 / (1 + np.exp(3)))) / 2
    assert float(listwise_loss(logits, valid, groups=2)) == pytest.approx(expected, rel=1e-6)
    # A padded position (invalid true item and negative) does not count; an invalid negative is ignored.
    valid = jnp.array([[True, False, False, False]])
    assert float(listwise_loss(logits, valid, groups=2)) == pytest.approx(0.0, abs=1e-6)


def test_dropout_acts_in_training_mode_only():
    config = SMALL_MODEL.__class__(**{**SMALL_MODEL.__dict__, "dropout_rate": 0.3})
    model = build_ranker(config, seed=0)
    batch = featurize(random_request(np.random.default_rng(0), config, batch=2, lengths=[5, 9]), config)
    first, second = np.asarray(model.score_candidates(batch)), np.asarray(model.score_candidates(batch))
    assert np.abs(first - second).max() > 1e-4  # a fresh dropout mask per call
    with without_dropout(model):
        cached, full = np.asarray(model.score_candidates(batch)), np.asarray(model(batch))
        np.testing.assert_allclose(cached, np.asarray(model.score_candidates(batch)), atol=0)
    np.testing.assert_allclose(cached, full, atol=1e-4)  # both paths agree without dropout
    after = np.asarray(model.score_candidates(batch))
    assert np.abs(after - cached).max() > 1e-4  # dropout is back on after the block


def test_catalogue_loss_is_the_softmax_of_the_match_term_with_the_true_item_masked():
    config = dataclasses.replace(SMALL_MODEL, sequence_match=True)
    model = build_ranker(config, seed=3)
    batch = featurize(random_request(np.random.default_rng(4), config, batch=2, candidates=3, lengths=[6, 2]), config)
    cache = model.encode_prefix(batch.prefix)
    positives, valid = batch.candidates, jnp.array([[True, True, False], [True, True, True]])
    others = featurize(random_request(np.random.default_rng(5), config, batch=1, candidates=5), config)
    catalogue = jnp.asarray(others.candidate_post_hashes[0])  # [5, K]
    action = 1
    # By hand: the match logit of the true item against each catalogue item's.
    queries = np.asarray(cache.match)[np.arange(2)[:, None], np.asarray(positives.cutoff), action]  # [B, P, K·E]
    target = np.einsum("bpn,bpn->bp", queries, np.asarray(model.post_embed(positives.post_hashes)))
    rest = np.einsum("bpn,sn->bps", queries, np.asarray(model.post_embed(catalogue)))
    nll = np.log(np.exp(target) + np.exp(rest).sum(-1)) - target  # [B, P]
    expected = nll[np.asarray(valid)].mean()
    loss = float(catalogue_loss(model, cache, positives, valid, catalogue, action))
    assert loss == pytest.approx(expected, rel=1e-5)
    # A catalogue holding a true item scores it once, as the target: the duplicate is masked.
    with_duplicate = jnp.concatenate([catalogue, positives.post_hashes[1, :1]], axis=0)
    duplicate_free = float(catalogue_loss(model, cache, positives, jnp.array([[False] * 3, [True, False, False]]),
                                          catalogue, action))
    duplicated = float(catalogue_loss(model, cache, positives, jnp.array([[False] * 3, [True, False, False]]),
                                      with_duplicate, action))
    assert duplicated == pytest.approx(duplicate_free, rel=1e-6)


def test_seen_before_cutoff_marks_exactly_the_history_items_a_position_sees():
    # One request, history items [3, 5, 3, padding]; catalogue items 1..6 (K = 1 hash each).
    history = PrefixBatch(
        user_hashes=jnp.zeros((1, 1), jnp.int32),
        history_post_hashes=jnp.array([[[3], [5], [3], [0]]]),
        history_author_hashes=jnp.zeros((1, 4, 1), jnp.int32),
        history_actions=jnp.zeros((1, 4, 2), jnp.int8),
        history_surface=jnp.zeros((1, 4), jnp.int32),
    )
    catalogue = jnp.arange(1, 7)[:, None]
    seen = np.asarray(seen_before_cutoff(history, catalogue, jnp.array([[0, 1, 2, 4]])))  # [1, 4, 6]
    assert seen[0].tolist() == [
        [False] * 6,  # cutoff 0 sees nothing
        [False, False, True, False, False, False],  # sees item 3
        [False, False, True, False, True, False],  # sees 3 and 5
        [False, False, True, False, True, False],  # 3, 5, 3 and padding: padding (0) is never an item
    ]


def test_catalogue_sample_is_the_whole_catalogue_or_distinct_uniform_items():
    hashes = np.arange(11 * 2).reshape(11, 2)  # row 0 is padding, items 1..10
    tables = HashTables(user=hashes[:1], item=hashes, author=hashes[:1], item_author=np.zeros(11, np.int64))
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(catalogue_sample(tables, 10, 16, rng), hashes[1:])
    drawn = np.concatenate([catalogue_sample(tables, 10, 4, rng) for _ in range(200)])
    rows = drawn[:, 0] // 2
    assert rows.min() >= 1 and rows.max() <= 10  # never the padding row
    assert all(np.unique(catalogue_sample(tables, 10, 4, rng)[:, 0]).size == 4 for _ in range(20))
    counts = np.bincount(rows, minlength=11)[1:]
    assert counts.min() > 40 and counts.max() < 120  # 800 draws over 10 items: about 80 each

"""The next-item split, the negative samplers and HR/NDCG with the tie rule."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import log_from_sequences
from hypothesis import given, settings
from hypothesis import strategies as st

from phoenix.data.negatives import TrainingNegatives, sample_negatives
from phoenix.data.protocol import hit_and_ndcg, split_next_item, target_ranks

SEQUENCES = {1: [5, 6, 7, 8, 9], 2: [1, 2], 3: [3, 4, 10]}


def test_split_targets_are_the_last_two_and_never_training_data():
    split = split_next_item(log_from_sequences(SEQUENCES, 40), negatives=5)
    assert split.eval_users.tolist() == [1, 3]  # user 2 has fewer than 3 interactions: it only trains
    assert split.candidates("valid")[:, 0].tolist() == [8, 4]
    assert split.candidates("test")[:, 0].tolist() == [9, 10]
    train_items = {u: split.sequences.item[split.sequences.rows(u)][split.train_mask()[split.sequences.rows(u)]]
                   for u in (1, 2, 3)}
    assert {u: v.tolist() for u, v in train_items.items()} == {1: [5, 6, 7], 2: [1, 2], 3: [3]}
    # Validation sees the training items only; test sees them plus the validation item.
    assert split.history_len("valid").tolist() == [3, 1] and split.history_len("test").tolist() == [4, 2]
    # Training negatives are drawn outside training items, so valid/test items are never marked positive.
    sampler = split.training_negatives()
    assert not sampler.is_positive(np.array([1, 1, 3, 3]), np.array([8, 9, 4, 10])).any()
    assert sampler.is_positive(np.array([1, 2, 3]), np.array([5, 2, 3])).all()


def test_eval_negatives_are_never_positive_and_deterministic_by_seed():
    sequences = {u: list(range(u, u + 30)) for u in range(1, 21)}
    log = log_from_sequences(sequences, 200)
    a, b = split_next_item(log, seed=3), split_next_item(log, seed=3)
    other = split_next_item(log, seed=4)
    for which in ("valid", "test"):
        assert np.array_equal(a.negatives[which], b.negatives[which])
        assert not np.array_equal(a.negatives[which], other.negatives[which])
        for row, user in enumerate(a.eval_users.tolist()):
            negs = a.negatives[which][row]
            assert negs.size == 100 and np.unique(negs).size == 100
            assert not set(negs.tolist()) & set(sequences[user]) and negs.min() >= 1 and negs.max() <= 200
    assert not np.array_equal(a.negatives["valid"], a.negatives["test"])
    # A user's negatives do not depend on which other users the file holds.
    alone = split_next_item(log_from_sequences({7: sequences[7]}, 200), seed=3)
    assert np.array_equal(alone.negatives["test"][0], a.negatives["test"][6])


def test_sample_negatives_covers_the_complement_uniformly_and_refuses_when_too_few():
    rng = np.random.default_rng(0)
    excluded = np.arange(1, 51)
    counts = np.zeros(101)
    for _ in range(400):
        counts[sample_negatives(excluded, 100, 10, rng, user=1)] += 1
    assert counts[:51].sum() == 0 and counts[51:].min() > 40  # 80 expected per free item
    with pytest.raises(ValueError, match="user 9: only 50 items"):
        sample_negatives(excluded, 100, 60, rng, user=9)


def test_training_negatives_avoid_each_users_training_items():
    users = np.repeat(np.arange(1, 4), 5)
    items = np.concatenate([np.arange(1, 6), np.arange(3, 8), np.arange(6, 11)])
    sampler = TrainingNegatives(users, items, num_items=12)
    owners = np.repeat(np.arange(1, 4), 2000).reshape(3, -1)
    drawn = sampler.draw(owners, np.random.default_rng(0))
    assert drawn.shape == owners.shape and not sampler.is_positive(owners, drawn).any()
    assert set(np.unique(drawn[0]).tolist()) == set(range(6, 13))
    # Repeats count once: two of three items, clicked many times, leave a negative; all three do not.
    TrainingNegatives(np.ones(9, np.int64), np.array([1, 2] * 4 + [1]), num_items=3)
    with pytest.raises(ValueError, match="user 2: interacted with every item"):
        TrainingNegatives(np.array([1, 2, 2, 2]), np.array([1, 1, 2, 3]), num_items=3)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), num_users=st.integers(1, 12), num_items=st.integers(3, 40))
def test_a_batchs_positives_among_a_sample_are_the_pairwise_lookup(seed, num_users, num_items):
    # Users with repeated and shared items, the batch with padding (0), a user above the largest and
    # repeats; the sample distinct, as the catalogue draws it.
    rng = np.random.default_rng(seed)
    users = rng.integers(1, num_users + 1, size=rng.integers(1, 4 * num_items))
    items = rng.integers(1, num_items, size=users.size)  # never every item: a negative exists
    sampler = TrainingNegatives(users, items, num_items)
    batch = np.concatenate([[0, num_users + 1], rng.integers(1, num_users + 1, size=rng.integers(0, 6))])
    sample = 1 + rng.choice(num_items, size=rng.integers(1, num_items + 1), replace=False)
    mask = sampler.positives_among(batch, sample)
    assert mask.shape == (batch.size, sample.size)
    np.testing.assert_array_equal(mask, sampler.is_positive(batch[:, None], sample[None, :]))
    assert mask.sum() == sum(len(set(items[users == u]) & set(sample)) for u in batch)


def test_hit_and_ndcg_by_hand_and_ties_count_against_the_target():
    scores = np.array([
        [5.0, 1.0, 2.0, 3.0],  # rank 0: hit, ndcg 1
        [2.0, 3.0, 1.0, 0.0],  # rank 1: hit, ndcg 1/log2(3)
        [1.0, 1.0, 1.0, 0.0],  # two ties above: rank 2, ndcg 1/log2(4) = 0.5
        [0.0, 1.0, 2.0, 3.0],  # rank 3
    ])
    assert target_ranks(scores).tolist() == [0, 1, 2, 3]
    metrics = hit_and_ndcg(scores, k=3)
    assert metrics["hr@3"] == pytest.approx(3 / 4)
    assert metrics["ndcg@3"] == pytest.approx((1 + 1 / np.log2(3) + 0.5) / 4)
    constant = np.ones((3, 101))  # a constant scorer ranks every target last
    assert hit_and_ndcg(constant) == {"hr@10": 0.0, "ndcg@10": 0.0}


def test_scores_with_nan_or_wrong_shape_are_refused():
    with pytest.raises(ValueError, match="row 1 holds NaN"):
        target_ranks(np.array([[1.0, 0.0], [np.nan, 0.0]]))
    with pytest.raises(ValueError, match="expected \\[users, 1 \\+ negatives\\]"):
        target_ranks(np.ones(5))


def test_eval_sample_keeps_each_users_targets_and_negatives_and_is_fixed_by_the_seed():
    sequences = {u: [10 * u + i for i in range(5)] for u in range(1, 41)}
    split = split_next_item(log_from_sequences(sequences, 500), negatives=20)
    sample = split.eval_sample(10, seed=0)
    assert sample.eval_users.size == 10 and set(sample.eval_users) <= set(split.eval_users)
    rows = np.searchsorted(split.eval_users, sample.eval_users)
    for which in ("valid", "test"):
        np.testing.assert_array_equal(sample.candidates(which), split.candidates(which)[rows])
        np.testing.assert_array_equal(sample.history_len(which), split.history_len(which)[rows])
    np.testing.assert_array_equal(split.eval_sample(10, seed=0).eval_users, sample.eval_users)
    assert not np.array_equal(split.eval_sample(10, seed=1).eval_users, sample.eval_users)
    assert split.eval_sample(0, seed=0) is split and split.eval_sample(40, seed=0) is split

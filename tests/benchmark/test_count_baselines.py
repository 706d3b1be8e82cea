"""Most-popular and co-occurrence count training data only."""

from __future__ import annotations

import numpy as np
from helpers import log_from_sequences

from phoenix.benchmark.count_baselines import cooccurrence_scores, popular_scores, popularity
from phoenix.data.protocol import hit_and_ndcg, split_next_item

SEQUENCES = {1: [1, 2, 3, 4, 5], 2: [1, 2, 3, 6, 7], 3: [2, 3, 1, 2, 3]}


def test_popularity_counts_training_interactions_only():
    split = split_next_item(log_from_sequences(SEQUENCES, 30), negatives=10)
    counts = popularity(split)
    # Training: user 1 [1,2,3], user 2 [1,2,3], user 3 [2,3,1]; targets 4,5,6,7,2,3 are not counted.
    assert counts[1:8].tolist() == [3, 3, 3, 0, 0, 0, 0]
    scores = popular_scores(split, "test")
    assert np.array_equal(scores, counts[split.candidates("test")])


def test_cooccurrence_follows_the_last_history_item():
    split = split_next_item(log_from_sequences(SEQUENCES, 30), negatives=10)
    valid = cooccurrence_scores(split, "valid")  # last training item: 3, 3, 1
    # Training transitions: 1->2 (x2), 2->3 (x3), 3->1 (x1). Integer part = count, fraction = popularity.
    cands = split.candidates("valid")
    expected_counts = np.select([cands == 1, True], [1.0, 0.0])
    expected_counts[2] = np.where(cands[2] == 2, 2.0, 0.0)  # user 3's last item is 1: 1->2 twice
    assert np.array_equal(np.floor(valid), expected_counts)
    assert (valid - np.floor(valid) < 1).all()


def test_cooccurrence_solves_a_deterministic_chain():
    chain = {u: [(u + t) % 40 + 1 for t in range(12)] for u in range(1, 41)}
    split = split_next_item(log_from_sequences(chain, 40), negatives=20)
    assert hit_and_ndcg(cooccurrence_scores(split, "test"))["hr@10"] == 1.0

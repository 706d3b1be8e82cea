import numpy as np
import pytest

from phoenix.retrieval.evaluation import evaluate_retrieval, recall_at_k
from phoenix.retrieval.retriever import Retriever
from phoenix.workdir import load_workdir_config


def test_recall_at_k_hand_computed():
    retrieved = np.array([[5, 6, 7, 8], [1, 2, 3, 4]])
    relevant = [np.array([6, 9]), np.array([4])]
    assert recall_at_k(retrieved, relevant, 2) == pytest.approx((0.5 + 0.0) / 2)
    assert recall_at_k(retrieved, relevant, 4) == pytest.approx((0.5 + 1.0) / 2)
    with pytest.raises(ValueError, match="fewer than k=5"):
        recall_at_k(retrieved, relevant, 5)


def test_trained_two_tower_beats_popularity_twice_and_stays_below_oracle(retrieval_workdir, micro_world):
    config = load_workdir_config(retrieval_workdir)
    report = evaluate_retrieval(Retriever.load(retrieval_workdir), config, micro_world, "test", ks=(100, 300))
    recall = report["recall"]
    assert report["users"] > 100 and report["corpus"] == 2000
    assert recall["model"]["@100"] >= 2.0 * recall["popularity"]["@100"]
    assert recall["model"]["@300"] >= 2.0 * recall["popularity"]["@300"]
    assert recall["popularity"]["@300"] > recall["popularity_all_time"]["@300"]
    for name in recall:
        assert recall[name]["@100"] <= recall[name]["@300"] <= 1.0

import numpy as np
import pytest

from phoenix.evaluation.group_metrics import group_auc, group_ndcg
from phoenix.evaluation.metrics import roc_auc


def test_gauc_by_hand():
    # user 1: 4 impressions, scores put its positive 2nd of 4 -> AUC 2/3; user 2: 2 impressions, AUC 1;
    # user 3: only negatives (no AUC, left out). Weighted by impressions: (4·2/3 + 2·1) / 6.
    groups = np.array([1, 1, 1, 1, 2, 2, 3, 3])
    labels = np.array([0, 1, 0, 0, 1, 0, 0, 0])
    scores = np.array([0.9, 0.5, 0.1, 0.2, 0.7, 0.3, 0.5, 0.4])
    value, users = group_auc(labels, scores, groups)
    assert users == 2 and value == pytest.approx((4 * 2 / 3 + 2 * 1) / 6)


def test_gauc_ties_count_half_and_matches_per_user_auc():
    assert group_auc(np.array([1, 0]), np.array([0.5, 0.5]), np.array([7, 7]))[0] == 0.5
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 30, 3000)
    labels = rng.random(3000) < 0.2
    scores = np.round(rng.random(3000) + 0.3 * labels, 1)  # many ties
    expected = [(roc_auc(labels[groups == g], scores[groups == g]), (groups == g).sum()) for g in range(30)]
    expected = [(a, n) for a, n in expected if not np.isnan(a)]
    value, users = group_auc(labels, scores, groups)
    assert users == len(expected)
    assert value == pytest.approx(np.average([a for a, _ in expected], weights=[n for _, n in expected]))


def test_a_model_that_only_knows_which_users_engage_has_gauc_one_half():
    groups = np.repeat(np.arange(50), 20)
    rng = np.random.default_rng(1)
    labels = rng.random(1000) < np.repeat(rng.random(50), 20)  # users differ in how much they engage
    user_rate = np.repeat([labels[groups == g].mean() for g in range(50)], 20)
    assert roc_auc(labels, user_rate) > 0.7  # pooled AUC rewards knowing the user
    assert group_auc(labels, user_rate, groups)[0] == pytest.approx(0.5)  # GAUC does not


def test_ndcg_by_hand():
    # One request of four: scores order the items (gain) 0, 1, 0, 3; the ideal is 3, 1.
    gains, scores = np.array([3.0, 0.0, 1.0, 0.0]), np.array([0.1, 0.9, 0.5, 0.2])
    got = (1 / np.log2(3) + 3 / np.log2(5)) / (3 + 1 / np.log2(3))
    assert group_ndcg(gains, scores, np.zeros(4, int))[0] == pytest.approx(got)
    # k cuts the list: at k=1 only the first item counts, and it has no gain.
    assert group_ndcg(gains, scores, np.zeros(4, int), k=1)[0] == 0.0


def test_ndcg_averages_requests_and_skips_those_without_gain_or_with_one_item():
    groups = np.array([0, 0, 1, 1, 2, 3, 3])
    gains = np.array([1.0, 0.0, 0.0, 2.0, 5.0, 0.0, 0.0])
    scores = np.array([0.9, 0.1, 0.9, 0.1, 0.5, 0.3, 0.2])
    value, used = group_ndcg(gains, scores, groups)
    assert used == 2 and value == pytest.approx((1.0 + 1 / np.log2(3)) / 2)
    with pytest.raises(ValueError, match="gains"):
        group_ndcg(-gains, scores, groups)

import numpy as np
import pytest

from phoenix.config import CONFIG_DIR, DEFAULT_ACTIONS, ScoringConfig, load_scoring_config
from phoenix.model.weighted_score import WeightedScorer

ACTIONS = ("like", "reply", "block", "report")


def scorer(weights, eps=0.001):
    return WeightedScorer(ScoringConfig(source="test", weights=weights, epsilon=eps), ACTIONS)


def test_weighted_sum_and_offset_by_hand():
    s = scorer({"like": 1.0, "reply": 3.0, "block": -2.0, "report": -6.0})
    # N = 8, T = 4 + 8 = 12
    probs = np.array([[0.5, 0.1, 0.0, 0.0], [0.1, 0.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]])
    combined = s.combined(probs)
    np.testing.assert_allclose(combined, [0.8, -0.9, 0.0])
    np.testing.assert_allclose(s(probs), [0.8 + 0.001, (-0.9 + 8) / 12 * 0.001, 0.001])


def test_negatives_rank_below_all_positives_and_keep_their_order():
    s = scorer({"like": 1.0, "reply": 3.0, "block": -2.0, "report": -6.0})
    rng = np.random.default_rng(0)
    probs = rng.random((500, 4)) * np.array([1, 0.3, 0.5, 0.2])
    combined, final = s.combined(probs), s(probs)
    neg, pos = combined < 0, combined >= 0
    assert neg.any() and pos.any()
    assert final[neg].max() < final[pos].min()
    assert np.all(np.diff(final[np.argsort(combined)]) >= 0)  # order preserved


def test_all_positive_weights_use_max_zero_rule():
    s = WeightedScorer(ScoringConfig("t", {"like": 0.0, "reply": 0.0, "block": 0.0, "report": 0.0}), ACTIONS)
    assert s(np.array([[0.9, 0.1, 0.0, 0.0]]))[0] == 0.0


def test_every_head_needs_a_weight_and_extra_entries_are_unused():
    with pytest.raises(ValueError, match="no weight for head[(]s[)] reply, report in test"):
        scorer({"like": 1.0, "block": -1.0, "favourite": 1.0})
    table = scorer({"like": 1.0, "reply": 2.0, "block": -1.0, "report": -3.0, "repost": 9.0})
    np.testing.assert_array_equal(table.weights, [1.0, 2.0, -1.0, -3.0])  # "repost" is not a head here


def test_shipped_august_weights_penalise_a_likely_report():
    august = WeightedScorer(load_scoring_config(CONFIG_DIR / "weights" / "x-2026-08.toml"), DEFAULT_ACTIONS)
    liked = np.zeros(15)
    liked[0] = 0.5
    reported = liked.copy()
    reported[DEFAULT_ACTIONS.index("report")] = 0.01  # -2.34 outweighs +0.25
    assert august(reported[None])[0] < 0.001 <= august(liked[None])[0]

import math

import numpy as np
import pytest

from phoenix.evaluation.metrics import calibration, log_loss, relative_cross_entropy, roc_auc


def test_auc_by_hand_with_ties():
    # Pairs (pos, neg): (0.8,0.1) win, (0.8,0.4) win, (0.4,0.1) win, (0.4,0.4) tie -> 3.5 / 4
    assert roc_auc(np.array([1, 0, 1, 0]), np.array([0.8, 0.1, 0.4, 0.4])) == pytest.approx(0.875)
    assert roc_auc(np.array([1, 1, 0]), np.array([0.9, 0.8, 0.1])) == 1.0
    assert roc_auc(np.array([1, 1, 0]), np.array([0.1, 0.2, 0.9])) == 0.0
    assert roc_auc(np.array([1, 0, 1, 0]), np.full(4, 0.3)) == 0.5
    assert math.isnan(roc_auc(np.zeros(5), np.arange(5.0)))


def test_auc_matches_pairwise_definition_on_random_data():
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.3
    s = np.round(rng.random(300), 1)  # many ties
    pos, neg = s[y], s[~y]
    pairwise = ((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None])).mean()
    assert roc_auc(y, s) == pytest.approx(pairwise)


def test_log_loss_rce_and_calibration():
    y = np.array([1, 0, 0, 0])
    assert log_loss(y, np.full(4, 0.25)) == pytest.approx(-(np.log(0.25) + 3 * np.log(0.75)) / 4)
    assert relative_cross_entropy(y, np.full(4, 0.25)) == pytest.approx(0.0)  # the base rate itself
    assert relative_cross_entropy(y, np.array([0.9, 0.1, 0.1, 0.1])) > 50
    assert relative_cross_entropy(y, np.array([0.1, 0.9, 0.9, 0.9])) < 0
    assert calibration(y, np.full(4, 0.5)) == pytest.approx(2.0)

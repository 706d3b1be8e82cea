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


def test_paired_bootstrap_interval():
    from phoenix.evaluation.metrics import paired_bootstrap

    same_gap = paired_bootstrap(np.full(50, 0.7), np.full(50, 0.5))  # every user 0.2 better: no doubt
    assert same_gap == pytest.approx({"difference": 0.2, "ci95_low": 0.2, "ci95_high": 0.2})
    rng = np.random.default_rng(0)
    b = rng.random(2000)
    a = b + 0.05 + rng.normal(0, 0.5, 2000)  # a noisy gain: the interval is about ±1.96·0.5/√2000
    got = paired_bootstrap(a, b)
    assert got["ci95_low"] < got["difference"] < got["ci95_high"]
    assert got["ci95_high"] - got["ci95_low"] == pytest.approx(2 * 1.96 * 0.5 / np.sqrt(2000), rel=0.15)
    assert got["ci95_low"] > 0  # 0.05 is about 4.5 standard errors
    with pytest.raises(ValueError, match="per-user"):
        paired_bootstrap(np.zeros(3), np.zeros(0))

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


def _users_world(rng: np.random.Generator, users: int = 150, per_user: int = 20):
    """Impressions [N] of users whose tastes differ (so one user's actions are correlated), two heads."""
    group = np.repeat(np.arange(users), per_user)  # [N]
    taste = rng.lognormal(0.0, 0.8, users)[group]  # [N]
    truth = np.stack([np.clip(0.02 * taste, 0, 1), np.clip(0.2 * taste, 0, 1)], 1)  # [N, 2]: rare, common
    return group, truth, (rng.random(truth.shape) < truth).astype(np.int8)


def test_calibration_interval_covers_the_truth_about_95_percent():
    from phoenix.evaluation.metrics import calibration_interval

    rng = np.random.default_rng(0)
    covered, above, widths = np.zeros(2), np.zeros(2), []
    trials = 120
    for t in range(trials):
        group, truth, labels = _users_world(rng)
        low, high = calibration_interval(labels, truth, group, samples=400, seed=t)
        covered += (low <= 1.0) & (1.0 <= high)  # the truth is calibrated by definition
        low, high = calibration_interval(labels, 1.3 * truth, group, samples=400, seed=t)
        above += low > 1.0
        widths.append(high - low)
    assert np.all(covered / trials >= 0.88) and np.all(covered / trials <= 0.995)
    assert above[1] / trials > 0.95  # 30% over-prediction of the common head: seen nearly always
    rare, common = np.mean(widths, axis=0)
    assert rare > 2 * common  # about 60 positives against about 600: a wider interval


def test_calibration_interval_resamples_users_not_impressions():
    from phoenix.evaluation.metrics import calibration_interval

    group, truth, labels = _users_world(np.random.default_rng(1), users=100, per_user=60)
    blind = np.broadcast_to(truth.mean(axis=0), truth.shape)  # [N, 2] calibrated overall, blind to taste
    by_user = np.subtract(*calibration_interval(labels, blind, group)[::-1])  # [2] widths
    by_impression = np.subtract(*calibration_interval(labels, blind, np.arange(group.size))[::-1])
    assert np.all(by_user > 1.25 * by_impression)  # its errors repeat within a user: which users are drawn matters
    no_positive = np.zeros((40, 1), np.int8)
    assert np.all(np.isnan(calibration_interval(no_positive, np.full((40, 1), 0.1), np.arange(40))))

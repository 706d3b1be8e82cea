"""Ranking and calibration metrics X reports: ROC-AUC, log-loss, RCE, calibration.

All take flat numpy arrays of 0/1 labels and probabilities. AUC uses average
ranks, so tied scores count half (a constant predictor scores exactly 0.5).
"""

from __future__ import annotations

import warnings

import numpy as np

_EPS = 1e-7


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties: half).

    NaN when the labels hold a single class, since AUC is then undefined.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} differ in shape")
    pos = int(labels.sum())
    neg = labels.size - pos
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(scores.size, np.float64)
    # Average rank over each run of equal scores.
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], scores.size]
    average = (starts + ends + 1) / 2.0  # 1-based ranks
    ranks[order] = np.repeat(average, ends - starts)
    return float((ranks[labels].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def paired_bootstrap(a: np.ndarray, b: np.ndarray, samples: int = 2000, seed: int = 0) -> dict[str, float]:
    """Mean of a - b over paired units (users) and its 95% percentile-bootstrap interval.

    Users are resampled with replacement `samples` times, the same users for both
    models, so the interval reflects which users happen to be in the test sample.
    """
    if np.ndim(a) != 1 or np.shape(a) != np.shape(b) or np.size(a) == 0:
        raise ValueError(f"a, b: expected two equal non-empty per-user vectors, got {np.shape(a)} and {np.shape(b)}")
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)  # [U]
    rng = np.random.default_rng(seed)
    means = np.concatenate([diff[rng.integers(0, diff.size, (min(200, samples - done), diff.size))].mean(axis=1)
                            for done in range(0, samples, 200)])  # [samples], in chunks to bound memory
    low, high = np.percentile(means, [2.5, 97.5])
    return {"difference": float(diff.mean()), "ci95_low": float(low), "ci95_high": float(high)}


def log_loss(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean binary cross-entropy (natural log), probabilities clipped to [1e-7, 1-1e-7]."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.clip(np.asarray(probs, dtype=np.float64), _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def relative_cross_entropy(labels: np.ndarray, probs: np.ndarray) -> float:
    """RCE = 100·(CE_base − CE)/CE_base, CE_base from predicting the observed base rate."""
    y = np.asarray(labels, dtype=np.float64)
    if y.size == 0 or y.min() == y.max():  # one class: the base rate predicts it perfectly, RCE is undefined
        return float("nan")
    base = log_loss(y, np.full(y.shape, y.mean()))
    return float(100.0 * (base - log_loss(y, probs)) / base)


def calibration(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean predicted probability over observed rate (1.0 is perfectly calibrated)."""
    observed = float(np.mean(labels))
    return float(np.mean(probs) / observed) if observed > 0 else float("nan")


def calibration_interval(
    labels: np.ndarray,  # [N, A] 0/1
    probs: np.ndarray,  # [N, A]
    groups: np.ndarray,  # [N] the unit resampled (users: their actions are correlated)
    samples: int = 1000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile-bootstrap interval [A] of each head's calibration over resampled groups.

    A rare head's observed rate is itself a small sample: on a split with 200
    reports it moves by about ±14%, so a calibration of 1.2 may be noise.
    Resampling whole users (Poisson weights) keeps what one user's taste adds to that noise.
    Resamples without a positive are left out; a head without positives gets NaN.
    """
    _, group = np.unique(groups, return_inverse=True)  # [N] in 0..U-1
    per_label = np.stack([np.bincount(group, labels[:, a].astype(np.float64)) for a in range(labels.shape[1])], 1)
    per_prob = np.stack([np.bincount(group, probs[:, a].astype(np.float64)) for a in range(probs.shape[1])], 1)
    rng = np.random.default_rng(seed)
    ratios, chunk = [], max(1, 10_000_000 // per_label.shape[0])  # resamples at a time: about 80 MB of weights
    for done in range(0, samples, chunk):
        weights = rng.poisson(1.0, (min(chunk, samples - done), per_label.shape[0])).astype(np.float64)  # [s, U]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios.append((weights @ per_prob) / (weights @ per_label))  # [s, A]
    ratios = np.concatenate(ratios)  # [samples, A]
    ratios[~np.isfinite(ratios)] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a head without positives: NaN
        low, high = np.nanpercentile(ratios, [2.5, 97.5], axis=0)  # [A] each
    return low, high

"""Metrics feed teams report per user or per request, not over one pooled list.

GAUC: the AUC within each user, averaged over users who have both a positive
and a negative, weighted by their impressions (a model cannot score well by
knowing which users engage more, only by ordering each user's own items).

NDCG@k of a request: the request's impressions ordered by a score, gains from
what the user did. Without request ids a "request" is a user-day.
Both are vectorised over groups: one sort, no Python loop per user.
"""

from __future__ import annotations

import numpy as np


def _group_order(groups: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by (group, score) ascending, the group index of each sorted row, and group starts."""
    order = np.lexsort((scores, groups))
    g = groups[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    group_of = np.cumsum(np.r_[True, g[1:] != g[:-1]]) - 1  # [N] 0..G-1
    return order, group_of, starts


def group_auc(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> tuple[float, int]:
    """(impression-weighted mean of per-group AUC over groups with both classes, such groups)."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, np.float64)
    order, group_of, starts = _group_order(groups, scores)
    y, s = labels[order], scores[order]
    # Average 1-based ranks within each group, ties (same group and score) sharing their mean rank.
    run_start = np.flatnonzero(np.r_[True, (s[1:] != s[:-1]) | (group_of[1:] != group_of[:-1])])
    run_end = np.r_[run_start[1:], s.size]
    position = np.arange(s.size) - starts[group_of]  # 0-based within the group
    mean_pos = (position[run_start] + position[run_end - 1]) / 2.0 + 1.0
    ranks = np.repeat(mean_pos, run_end - run_start)  # [N]
    size = np.bincount(group_of).astype(np.float64)  # [G]
    pos = np.bincount(group_of, y).astype(np.float64)
    neg = size - pos
    rank_sum = np.bincount(group_of, ranks * y)
    both = (pos > 0) & (neg > 0)
    if not both.any():
        return float("nan"), 0
    auc = (rank_sum[both] - pos[both] * (pos[both] + 1) / 2.0) / (pos[both] * neg[both])
    return float(np.average(auc, weights=size[both])), int(both.sum())


def group_ndcg(gains: np.ndarray, scores: np.ndarray, groups: np.ndarray, k: int = 10) -> tuple[float, int]:
    """(mean NDCG@k over groups of at least two items with some gain, such groups).

    Items are ordered by `scores` descending (ties by row order); the ideal
    orders them by gain. Gains must be >= 0.
    """
    gains = np.asarray(gains, np.float64)
    if (gains < 0).any():
        raise ValueError("gains: NDCG needs gains >= 0")
    rows = np.arange(gains.size)

    def dcg(key: np.ndarray) -> np.ndarray:  # [G] DCG@k with items in `key` descending
        order = np.lexsort((rows, -key, groups))
        g = groups[order]
        new = np.r_[True, g[1:] != g[:-1]]
        group_of = np.cumsum(new) - 1
        position = np.arange(g.size) - np.flatnonzero(new)[group_of]  # 0-based rank within the group
        top = position < k
        return np.bincount(group_of[top], gains[order][top] / np.log2(position[top] + 2.0), minlength=group_of[-1] + 1)

    if gains.size == 0:
        return float("nan"), 0
    ideal, got = dcg(gains), dcg(np.asarray(scores, np.float64))
    size = np.bincount(np.unique(groups, return_inverse=True)[1])
    use = (ideal > 0) & (size >= 2)
    if not use.any():
        return float("nan"), 0
    return float(np.mean(got[use] / ideal[use])), int(use.sum())

"""Popularity baseline: how often each post (else its author, else anyone) got each action.

Fitted on training impressions only. It knows every post's and author's
track record but nothing about the viewer, which is exactly what a
personalised ranker must beat.
"""

from __future__ import annotations

import numpy as np

from phoenix.data.dataset import ImpressionLog

PRIOR_STRENGTH = 20.0


def _smoothed_rates(keys: np.ndarray, labels: np.ndarray, prior: np.ndarray, size: int) -> np.ndarray:
    """Per-key action rates [size, A], shrunk toward `prior` ([A] or [size, A])."""
    counts = np.bincount(keys, minlength=size).astype(np.float64)[:, None]  # [size, 1]
    sums = np.stack([np.bincount(keys, labels[:, a], minlength=size) for a in range(labels.shape[1])], 1)
    return (sums + PRIOR_STRENGTH * prior) / (counts + PRIOR_STRENGTH)  # [size, A]


def popularity_probs(log: ImpressionLog, fit_rows: np.ndarray, score_rows: np.ndarray) -> np.ndarray:
    """P(action) [len(score_rows), A] from post -> author -> global rates on `fit_rows`."""
    labels = log.labels[fit_rows].astype(np.float64)  # [F, A]
    global_rate = labels.mean(axis=0)  # [A]
    num_authors = int(log.author_id.max()) + 1
    num_posts = int(log.post_id.max()) + 1
    author_rate = _smoothed_rates(log.author_id[fit_rows], labels, global_rate, num_authors)
    # Each post's prior is its author's rate.
    post_author = np.zeros(num_posts, np.int64)
    post_author[log.post_id] = log.author_id
    post_rate = _smoothed_rates(log.post_id[fit_rows], labels, author_rate[post_author], num_posts)
    return post_rate[log.post_id[score_rows]].astype(np.float32)

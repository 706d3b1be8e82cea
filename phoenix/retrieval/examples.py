"""Packed next-engagement examples for the two-tower model, and per-user queries for its evaluation.

A training example is a window of H consecutive engaged impressions of one
user (oldest first). One pass of the causal user tower yields the user vector
after every cutoff c, and history item c is the target of cutoff c when the
user took a positive action on it (config: `retrieval.positive_actions`). So
one example trains up to H positives, each against the vector of what the user
had engaged with before it, never after.

Windows advance by H/2: every window after the first trains only its second
half, so each target sees at least H/2 items of context (except a user's first
ones) and no impression is a target twice.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from phoenix.data.batch import RequestBatch
from phoenix.data.dataset import SPLITS, ImpressionLog
from phoenix.data.packing import half_overlapping_windows, user_event_groups


@dataclasses.dataclass
class RetrievalExamples:
    """N packed windows; target c of row n is history item c when `target_mask[n, c]`."""

    history: RequestBatch  # user + H history items per row (no candidates: C = 1 padding slot)
    target_mask: np.ndarray  # [N, H] bool
    target_logq: np.ndarray  # [N, H] float32, log of the target's share of all training targets

    def __len__(self) -> int:
        return int(self.target_mask.shape[0])

    def take(self, rows: np.ndarray) -> RetrievalExamples:
        return RetrievalExamples(self.history.take(rows), self.target_mask[rows], self.target_logq[rows])


def positive_mask(log: ImpressionLog, positive_actions: tuple[str, ...]) -> np.ndarray:  # [N] bool
    missing = [a for a in positive_actions if a not in log.actions]
    if missing:
        raise ValueError(f"retrieval.positive_actions: {missing} are not actions of this log {log.actions}")
    return log.labels[:, [log.actions.index(a) for a in positive_actions]].any(axis=1)


def _history_arrays(n: int, h: int, a: int) -> dict[str, np.ndarray]:
    """Zeroed request arrays of n users with H history slots and one unused candidate slot."""
    return {
        "user_id": np.zeros(n, np.int64),
        "history_post_id": np.zeros((n, h), np.int64),
        "history_author_id": np.zeros((n, h), np.int64),
        "history_actions": np.zeros((n, h, a), np.int8),
        "history_surface": np.zeros((n, h), np.int32),
        "candidate_post_id": np.zeros((n, 1), np.int64),
        "candidate_author_id": np.zeros((n, 1), np.int64),
        "candidate_surface": np.zeros((n, 1), np.int32),
        "candidate_cutoff": np.zeros((n, 1), np.int32),
    }


def _fill_history(arrays: dict[str, np.ndarray], i: int, log: ImpressionLog, rows: np.ndarray) -> None:
    k = rows.size
    arrays["history_post_id"][i, :k] = log.post_id[rows]
    arrays["history_author_id"][i, :k] = log.author_id[rows]
    arrays["history_actions"][i, :k] = log.labels[rows]
    arrays["history_surface"][i, :k] = log.surface[rows]


def pack_retrieval_examples(
    log: ImpressionLog, split: str, history_len: int, positive_actions: tuple[str, ...]
) -> RetrievalExamples:
    """Windows over every user's engaged impressions up to and including `split`."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    h = history_len
    engaged = log.labels.any(axis=1) & (log.split <= SPLITS.index(split))
    positive = positive_mask(log, positive_actions)
    windows = []  # (user, rows, first target position)
    for user, rows in user_event_groups(log, np.flatnonzero(engaged)):
        for start, first in half_overlapping_windows(rows.size, h):
            windows.append((user, rows[start : start + h], first))
    n, a = len(windows), len(log.actions)
    if n == 0:
        raise ValueError(f"split {split!r}: no engaged impressions to train retrieval on")
    arrays = _history_arrays(n, h, a)
    target_mask = np.zeros((n, h), bool)
    for i, (user, rows, first) in enumerate(windows):
        arrays["user_id"][i] = user
        _fill_history(arrays, i, log, rows)
        target_mask[i, first : rows.size] = positive[rows[first:]]
    if not target_mask.any():
        raise ValueError(f"split {split!r}: no impression has a positive action {positive_actions}")
    targets = arrays["history_post_id"][target_mask]
    ids, counts = np.unique(targets, return_counts=True)
    logq = np.zeros((n, h), np.float32)
    logq[target_mask] = np.log(counts[np.searchsorted(ids, targets)] / targets.size)
    return RetrievalExamples(RequestBatch(**arrays), target_mask, logq)


@dataclasses.dataclass
class RetrievalQueries:
    """One query per user at time `at_s`: their history before it and what they engaged with after."""

    history: RequestBatch  # [U] users, last H engaged items before `at_s`
    seen: list[np.ndarray]  # per user: post ids shown before `at_s` (excluded from results)
    relevant: list[np.ndarray]  # per user: unseen post ids with a positive action in the split


def retrieval_queries(
    log: ImpressionLog, split: str, history_len: int, positive_actions: tuple[str, ...],
    max_users: int | None = None, seed: int = 0,
) -> RetrievalQueries:
    """Users with at least one positive in `split` that they had not been shown before it."""
    index = SPLITS.index(split)
    positive = positive_mask(log, positive_actions)
    before = log.split < index
    users, seen, relevant, histories = [], [], [], []
    for user, rows in user_event_groups(log, np.flatnonzero(log.split <= index)):
        past, now = rows[before[rows]], rows[log.split[rows] == index]
        shown = np.unique(log.post_id[past])
        hits = np.setdiff1d(np.unique(log.post_id[now[positive[now]]]), shown)
        if hits.size:
            users.append(user)
            seen.append(shown)
            relevant.append(hits)
            histories.append(past[log.labels[past].any(axis=1)][-history_len:])
    if max_users is not None and len(users) > max_users:
        keep = np.sort(np.random.default_rng(seed).choice(len(users), max_users, replace=False))
        users, seen, relevant, histories = ([x[i] for i in keep] for x in (users, seen, relevant, histories))
    n, h, a = len(users), history_len, len(log.actions)
    arrays = _history_arrays(n, h, a)
    arrays["user_id"][:] = users
    for i, rows in enumerate(histories):
        _fill_history(arrays, i, log, rows)
    return RetrievalQueries(RequestBatch(**arrays), seen, relevant)
